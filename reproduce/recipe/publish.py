"""`reproduce publish model=<export dir> repo_id=<user/name>`: an exported model, verified, with its model card, to
the Hugging Face Hub (huggingface_hub's ``upload_folder``); offline or without a token it stops at once."""

from __future__ import annotations

import logging
from pathlib import Path

from reproduce.config.schema import RecipeConfig
from reproduce.core.checksums import SUMS, sums_problem
from reproduce.core.errors import UserError
from reproduce.core.layout import MODEL_CARD
from reproduce.evaluate.suites import hub_unreachable
from reproduce.model.pretrained import HUB_ID

log = logging.getLogger("reproduce")


def check_publish(cfg: RecipeConfig) -> Path:
    """The export (its SHA256SUMS verified, its model card present), the repository id, the Hub and a token."""
    publish = cfg.publish
    if not publish.model or not publish.repo_id:
        raise UserError("reproduce publish needs model=<exported model folder> and repo_id=<user/name>")
    folder = Path(publish.model).expanduser()
    if not folder.is_dir():
        raise UserError(f"publish.model={publish.model!r}: no such folder; give an exported model folder "
                        "(runs/<run>/models/<stage>)")
    if problem := sums_problem(folder):
        raise UserError(f"publish.model={publish.model!r}: {problem}; only an export of this package, verified by its "
                        f"{SUMS}, is published (`reproduce train` exports it again)")
    if not (folder / MODEL_CARD).is_file():
        raise UserError(f"publish.model={publish.model!r}: has no model card ({MODEL_CARD}); run `reproduce eval` of "
                        "its run, which writes it")
    if not HUB_ID.fullmatch(publish.repo_id):
        raise UserError(f"publish.repo_id={publish.repo_id!r}: not a Hub repository id (user/name)")
    if why := hub_unreachable():
        raise UserError(f"reproduce publish uploads to the Hugging Face Hub, which is offline here ({why}); go "
                        "online (unset HF_HUB_OFFLINE) and try again")
    from huggingface_hub import get_token

    if get_token() is None:
        raise UserError("reproduce publish needs a Hugging Face token: `huggingface-cli login`, or set HF_TOKEN")
    return folder


def publish(cfg: RecipeConfig) -> str:
    """Create the repository (if new) and upload the export; returns its URL."""
    from huggingface_hub import HfApi

    folder = Path(cfg.publish.model).expanduser()
    api = HfApi()
    api.create_repo(cfg.publish.repo_id, private=cfg.publish.private, exist_ok=True)
    info = api.upload_folder(folder_path=folder, repo_id=cfg.publish.repo_id,
                             commit_message=f"Upload {folder.name} (reproduce publish)")
    log.info(f"[publish] {folder} -> https://huggingface.co/{cfg.publish.repo_id} ({info})")
    return f"https://huggingface.co/{cfg.publish.repo_id}"
