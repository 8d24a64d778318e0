"""What evaluation reads: the models ``model=`` names (run dir, Hugging Face dir, hub id), their tokenizers, the
device, and text files (decoded as ``reproduce prepare`` decodes documents)."""

from __future__ import annotations

import glob
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reproduce.core import records
from reproduce.core.checksums import sums_problem
from reproduce.core.errors import UserError
from reproduce.core.io import MAX_INPUT, read_input, read_input_text, read_json
from reproduce.core.layout import MAX_NAME, EvalLayout
from reproduce.data.corpus import decode
from reproduce.model.pretrained import HUB_ID, locate

_NOT_PLAIN = re.compile(r"[^\w.+=,@-]+")
BINARY, BINARY_PROBE = b"\x00", 1 << 16  # a NUL byte in the first 64 KiB marks a binary file, as in prepare


@dataclass(frozen=True)
class ModelRef:
    name: str  # results/eval/<name>/
    source: str  # a Hugging Face directory or hub id


def plain_name(text: str) -> str:
    """A folder name made from a model's folder or hub id: other characters become "_", at most MAX_NAME long."""
    name = _NOT_PLAIN.sub("_", text).lstrip(".-_")[:MAX_NAME]
    return name or "model"


def run_models(run_dir: Path) -> list[ModelRef]:
    """The exported stages of a run directory (runs/<run>/models/<stage>/), named <run>-<stage>."""
    models = run_dir / "models"
    found = sorted(p.name for p in models.iterdir() if (p / "model.safetensors").is_file())
    if not found:
        raise UserError(f"model={run_dir}: a run directory with no exported stage under models/; train it first")
    for stage in found:
        if problem := sums_problem(models / stage):
            raise UserError(f"model={run_dir}: the export {models / stage} is not intact ({problem}); run "
                            "`reproduce train` with the run's overrides to export it again")
    run = plain_name(run_dir.resolve().name)
    return [ModelRef(plain_name(f"{run}-{stage}"), (models / stage).as_posix()) for stage in found]


def find_models(spec: str) -> list[ModelRef]:
    """What ``model=`` names: a run directory (each exported stage), a Hugging Face directory, or a hub id; each named
    by a plain folder name of results/eval/ (a path's last part, resolved: ``runs/mini/..`` is ``runs``)."""
    path = Path(spec).expanduser()
    if path.is_dir() and (path / "models").is_dir():
        return run_models(path)
    if path.is_dir() or HUB_ID.fullmatch(spec) and not path.exists():
        locate("model", spec, "config.json")
        return [ModelRef(plain_name(path.resolve().name if path.is_dir() else spec.replace("/", "--")), spec)]
    raise UserError(f"model={spec!r}: no such directory, and not a hub id (owner/name); give a run directory "
                    "(runs/<run>), a Hugging Face model directory or a hub id")


def named_models(spec: str, name: str | None) -> list[ModelRef]:
    """The models ``model=`` names, with ``eval.name`` in place of their own names (a run's stages keep their
    -<stage> suffix)."""
    refs = find_models(spec)
    if name is None:
        return refs
    if len(refs) == 1:
        return [ModelRef(name, refs[0].source)]
    return [ModelRef(f"{name}-{plain_name(Path(ref.source).name)}", ref.source) for ref in refs]


def source_of(ref: ModelRef) -> str:
    """What a results folder records as its model: a folder's resolved path, or the hub id."""
    path = Path(ref.source).expanduser()
    return path.resolve().as_posix() if path.is_dir() else ref.source


def check_results_name(folders: EvalLayout, ref: ModelRef, overwrite: bool) -> None:
    """Two models never share a results folder: results/eval/<name>/ records the model it scored (source.json), and
    another model whose name maps to the same folder (``m v1`` and ``m_v1``) is one line naming both."""
    recorded_file = folders.source_file(ref.name)
    if overwrite or not recorded_file.is_file():
        return
    recorded = records.eval_source.read(recorded_file)["source"]
    if recorded != source_of(ref):
        raise UserError(f"model={ref.source!r}: its results folder {folders.model(ref.name)} holds the results of "
                        f"{recorded!r}, another model named {ref.name!r} too; give eval.name=<another name>, or "
                        "overwrite=true to replace them")


def record_source(folders: EvalLayout, ref: ModelRef) -> None:
    records.eval_source.write(folders.source_file(ref.name), {"source": source_of(ref)})


def token_counter(ref: ModelRef) -> Callable[[str], int] | None:
    """Tokens of a text under a local model folder's tokenizer (without special tokens), read by the tokenizers library
    alone (no transformers import, which takes seconds): its tokenizer.json, or a GPT-2 folder's vocab.json and
    merges.txt (the released ruGPT-3 tokenizers: byte-level BPE, as GPT2Tokenizer splits); None otherwise."""
    folder = Path(ref.source).expanduser()
    from tokenizers import ByteLevelBPETokenizer, Tokenizer

    if (folder / "tokenizer.json").is_file():
        tokenizer = Tokenizer.from_str(read_input_text(folder / "tokenizer.json"))
    elif all((folder / n).is_file() for n in ("vocab.json", "merges.txt", "config.json")) and \
            read_json(folder / "config.json").get("model_type") == "gpt2":
        try:
            tokenizer = ByteLevelBPETokenizer.from_file(str(folder / "vocab.json"), str(folder / "merges.txt"))
        except Exception:  # noqa: BLE001 - unreadable files: transformers' loader says what is wrong
            return None
    else:
        return None
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False).ids)


TOKENIZER_FILES = (("tokenizer.json",), ("vocab.json", "merges.txt"), ("tokenizer.model",))


def check_tokenizer(ref: ModelRef) -> None:
    """A model directory holds its tokenizer (a checkpoint saved without one cannot be scored)."""
    folder = Path(ref.source).expanduser()
    if folder.is_dir() and not any(all((folder / name).is_file() for name in files) for files in TOKENIZER_FILES):
        raise UserError(f"model={ref.source!r}: {folder} has no tokenizer (tokenizer.json, or vocab.json and "
                        "merges.txt); save it beside the model with tokenizer.save_pretrained")
    if (folder / "tokenizer.json").is_file():  # parsed by the tokenizers library alone: no transformers import
        from tokenizers import Tokenizer

        try:
            Tokenizer.from_str(read_input_text(folder / "tokenizer.json"))
        except Exception as exc:  # the Rust parser raises a bare Exception
            raise UserError(f"model={ref.source!r}: {folder / 'tokenizer.json'} does not load ("
                            f"{str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__}); restore it or "
                            "save the tokenizer again") from None


def eval_device(device: str | None, accelerator: str) -> str:
    """The device evaluation runs on: the configured one, else the trainer's (cuda for a GPU trainer)."""
    if device is not None:
        return device
    return "cuda" if accelerator in ("gpu", "cuda") else "cpu"


def text_files(pattern: str) -> list[Path]:
    """The files a path or glob names, sorted."""
    return sorted(Path(p) for p in glob.glob(str(Path(pattern).expanduser()), recursive=True) if Path(p).is_file())


@dataclass
class Texts:
    """The texts of ``eval.perplexity.texts``, decoded as ``reproduce prepare`` decodes documents (UTF-8, else cp1251
    Russian); the files that are not text, or empty, are skipped and recorded."""

    texts: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


def read_texts(patterns: list[str]) -> Texts:
    found = Texts()
    for pattern in patterns:
        for path in text_files(pattern):
            raw = read_input(path, MAX_INPUT)
            decoded = None if BINARY in raw[:BINARY_PROBE] else decode(raw)
            reason = ("binary (NUL bytes)" if BINARY in raw[:BINARY_PROBE] else "neither UTF-8 nor cp1251 Russian text"
                      if decoded is None else "empty" if not decoded[0].strip() else None)
            if reason:
                found.skipped.append({"file": path.as_posix(), "reason": reason})
            else:
                found.texts.append(decoded[0])
                found.files.append(path.as_posix())
    return found
