"""What evaluation reads: the models ``model=`` names (run dir, Hugging Face dir, hub id), their tokenizers, the
device, and text files."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from reproduce.errors import UserError
from reproduce.pretrained import HUB_ID, locate


@dataclass(frozen=True)
class ModelRef:
    name: str  # results/eval/<name>/
    source: str  # a Hugging Face directory or hub id


def run_models(run_dir: Path) -> list[ModelRef]:
    """The exported stages of a run directory (runs/<run>/models/<stage>/), named <run>-<stage>."""
    models = run_dir / "models"
    found = sorted(p.name for p in models.iterdir() if (p / "model.safetensors").is_file())
    if not found:
        raise UserError(f"model={run_dir}: a run directory with no exported stage under models/; train it first")
    return [ModelRef(f"{run_dir.name}-{stage}", (models / stage).as_posix()) for stage in found]


def find_models(spec: str) -> list[ModelRef]:
    """What ``model=`` names: a run directory (each exported stage), a Hugging Face directory, or a hub id."""
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "models").is_dir():
        return run_models(path)
    if path.is_dir() or HUB_ID.fullmatch(spec) and not path.exists():
        locate("model", spec, "config.json")
        return [ModelRef(path.name if path.is_dir() else spec.replace("/", "--"), spec)]
    raise UserError(f"model={spec!r}: no such directory, and not a hub id (owner/name); give a run directory "
                    "(runs/<run>), a Hugging Face model directory or a hub id")


TOKENIZER_FILES = (("tokenizer.json",), ("vocab.json", "merges.txt"), ("tokenizer.model",))


def check_tokenizer(ref: ModelRef) -> None:
    """A model directory holds its tokenizer (a checkpoint saved without one cannot be scored)."""
    folder = Path(ref.source).expanduser()
    if folder.is_dir() and not any(all((folder / name).is_file() for name in files) for files in TOKENIZER_FILES):
        raise UserError(f"model={ref.source!r}: {folder} has no tokenizer (tokenizer.json, or vocab.json and "
                        "merges.txt); save it beside the model with tokenizer.save_pretrained")


def eval_device(device: str | None, accelerator: str) -> str:
    """The device evaluation runs on: the configured one, else the trainer's (cuda for a GPU trainer)."""
    if device is not None:
        return device
    return "cuda" if accelerator in ("gpu", "cuda") else "cpu"


def text_files(pattern: str) -> list[Path]:
    """The files a path or glob names, sorted."""
    return sorted(Path(p) for p in glob.glob(str(Path(pattern).expanduser()), recursive=True) if Path(p).is_file())
