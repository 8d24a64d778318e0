"""Released checkpoints a stage starts from (``init_from``) and their tokenizers: a Hugging Face model directory
or hub id. Checked before any work: found, GPT-2-style, and matching the run's model config."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from reproduce.config import ModelConfig, TokenizerConfig
from reproduce.data.shards import MAX_VOCAB
from reproduce.errors import UserError

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
# Architecture keys the model config must share with the checkpoint (dropout and attention kernel may differ).
MATCHED_KEYS = ("n_layer", "n_embd", "n_head", "n_positions", "vocab_size", "activation_function",
                "layer_norm_epsilon")
WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def locate(key: str, name_or_path: str, filename: str) -> Path:
    """``filename`` of a model directory, or of a hub repository (through the local hub cache when offline)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / filename).is_file():
            raise UserError(f"{key}={name_or_path!r}: {path} has no {filename}; give a directory written by "
                            "save_pretrained")
        return path / filename
    if not HUB_ID.fullmatch(name_or_path) or path.exists():
        raise UserError(f"{key}={name_or_path!r}: no such directory; give a Hugging Face model directory or hub id")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(name_or_path, filename))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
        where = "not in the local hub cache (HF_HUB_OFFLINE is set)" if offline else type(exc).__name__
        raise UserError(f"{key}={name_or_path!r}: not a local directory, and its {filename} cannot be fetched from "
                        f"the Hugging Face hub: {where}; check the id, or download the model and give its "
                        "directory") from None


def _read_json(key: str, name_or_path: str, path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{key}={name_or_path!r}: {path} is not readable JSON ({exc})") from None


def check_init_checkpoint(key: str, init_from: str, model: ModelConfig) -> None:
    """A GPT-2 checkpoint with weights whose architecture is the model config's (one line lists the overrides)."""
    config = _read_json(key, init_from, locate(key, init_from, "config.json"))
    if config.get("model_type") != "gpt2":
        raise UserError(f"{key}={init_from!r}: model_type is {config.get('model_type')!r}; only GPT-2 checkpoints "
                        "(GPT2LMHeadModel) can start a stage")
    directory = Path(init_from).expanduser()
    if directory.is_dir() and not any((directory / name).is_file() for name in WEIGHTS):
        raise UserError(f"{key}={init_from!r}: {directory} has no weights ({', '.join(WEIGHTS)})")
    differ = [f"model.{k}={config[k]}" for k in MATCHED_KEYS if k in config and config[k] != getattr(model, k)]
    if differ:
        raise UserError(f"{key}={init_from!r}: the model config differs from the checkpoint's; set {' '.join(differ)} "
                        "(or the model group of that checkpoint)")


def load_pretrained_tokenizer(tok: TokenizerConfig):
    """The fast tokenizer of ``tokenizer.name_or_path`` (no remote code), checked against the config."""
    from transformers import AutoTokenizer

    key = "tokenizer.name_or_path"
    locate(key, tok.name_or_path, "tokenizer_config.json")
    try:
        tokenizer = AutoTokenizer.from_pretrained(tok.name_or_path, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{key}={tok.name_or_path!r}: cannot load its tokenizer ({exc})") from None
    if not tokenizer.is_fast:
        raise UserError(f"{key}={tok.name_or_path!r}: has no fast tokenizer (tokenizer.json or vocab.json + "
                        "merges.txt); the data step needs one")
    if tokenizer.eos_token_id is None:
        raise UserError(f"{key}={tok.name_or_path!r}: its tokenizer has no eos_token to end documents with")
    if len(tokenizer) > MAX_VOCAB:
        raise UserError(f"{key}={tok.name_or_path!r}: {len(tokenizer)} ids do not fit the uint16 token shards")
    if len(tokenizer) != tok.vocab_size:
        raise UserError(f"tokenizer.vocab_size={tok.vocab_size}: the tokenizer of {tok.name_or_path!r} has "
                        f"{len(tokenizer)} ids; set it to that")
    return tokenizer
