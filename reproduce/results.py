"""The results files of a run: their names, run metadata, and the record of which config produced them.

``results/<run>/`` holds what each step wrote as soon as it finished: ``data.json`` (prepare), ``contamination.json``,
``train.json`` and ``curves.json`` (train, after every stage), ``summary.json`` and ``lm_eval_*.json`` (eval, after
every benchmark), and ``config.yaml``, the values each of those steps read. ``runs/<run>/`` keeps the same record for
its artifacts (prepared.json naming the prepared set, models). A run whose config differs from the record stops
before any work unless ``overwrite=true``; then the results of the changed step and of every step that reads them
are removed first.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import platform
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from reproduce import __version__
from reproduce.config import NOT_RESULT_KEYS, STEPS, RecipeConfig, downstream, step_keys
from reproduce.errors import UserError
from reproduce.io import write_text
from reproduce.paths import SOURCE_ROOT

CONFIG_FILE = "config.yaml"
# What each step writes under results/<run>/ and runs/<run>/ (globs).
STEP_RESULTS = {"prepare": ("data.json",), "train": ("train.json", "curves.json"),
                "eval": ("summary.json", "loss_by_position.json", "lm_eval_*.json", "samples.json"),
                "contamination": ("contamination.json",)}
# The prepared set itself lives in <paths.prepared>/<hash>/, shared by runs; runs/<run>/prepared.json names it.
STEP_ARTIFACTS = {"prepare": ("prepared.json",), "train": ("models", "checkpoints"), "eval": ("lm_eval_tasks",),
                  "contamination": ()}

# ------------------------------------------------------------------------------------------ run metadata


def _git(*args: str) -> str | None:
    if SOURCE_ROOT is None:
        return None
    try:
        out = subprocess.run(["git", *args], cwd=SOURCE_ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def package_metadata() -> dict[str, Any]:
    """Versions of the package and its engines, the git state, the machine."""
    import torch

    # the source's state: what runs write into the checkout (results/, paper/) does not make it dirty
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results", ":(exclude)paper")
    return {
        "package": "reproduce",
        "package_version": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "pytorch_lightning": _version("pytorch-lightning"),
        "lm_eval": _version("lm_eval"),
        "tokenizers": _version("tokenizers"),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def run_metadata(cfg: RecipeConfig) -> dict[str, Any]:
    """``package_metadata`` plus the run's own facts: device, dtype, batch sizes, seed."""
    return {
        **package_metadata(),
        "run": cfg.run_name,
        "seed": cfg.seed,
        "device": cfg.trainer.accelerator,
        "dtype": cfg.trainer.precision,
        "batch_size": {name: stage.batch_size for name, stage in cfg.stages.items()},
        "eval_batch_size": {"perplexity": cfg.eval.perplexity.batch_size, "suite": cfg.eval.batch_size},
        "eval_dtype": cfg.eval.dtype,
    }


# ------------------------------------------------------------------------------- the record of the config


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict) and tree:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: tree}


def _counts(key: str) -> bool:
    return not any(fnmatch.fnmatchcase(key, pattern) for pattern in NOT_RESULT_KEYS)


def step_values(cfg: RecipeConfig, steps: tuple[str, ...]) -> dict[str, Any]:
    """The config values the given steps read, as plain data."""
    plain = dataclasses.asdict(cfg)
    return {key: plain[key] for step in steps for key in step_keys(cfg, step)}


def read_record(folder: Path) -> dict[str, Any]:
    path = folder / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        record = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserError(f"{path}: unreadable config record ({exc}); delete it or pass overwrite=true") from None
    return record if isinstance(record, dict) else {}


def changed_steps(record: dict[str, Any], cfg: RecipeConfig, steps: tuple[str, ...]) -> dict[str, list[str]]:
    """For each step whose recorded values differ from ``cfg``'s: the differing keys as 'key: old -> new'."""
    changed = {}
    for step in steps:
        if not all(key in record for key in step_keys(cfg, step)):
            continue
        old = _flatten({key: record[key] for key in step_keys(cfg, step)})
        new = _flatten(step_values(cfg, (step,)))
        diffs = [f"{key}: {old.get(key, '(absent)')} -> {new.get(key, '(absent)')}"
                 for key in sorted(set(old) | set(new)) if _counts(key) and old.get(key) != new.get(key)]
        if diffs:
            changed[step] = diffs
    return changed


def check_record(cfg: RecipeConfig, steps: tuple[str, ...]) -> None:
    """Stop (one line) if results/<run>/ or runs/<run>/ hold outputs of another config, unless overwrite=true."""
    if cfg.overwrite:
        return
    for folder in (cfg.results_dir, cfg.work_dir):
        changed = changed_steps(read_record(folder), cfg, steps)
        if changed:
            diffs = [d for step in changed.values() for d in step]
            more = f" (and {len(diffs) - 1} more)" if len(diffs) > 1 else ""
            raise UserError(f"{folder} holds results of another config ({diffs[0]}{more}); choose another "
                            f"run_name=..., or pass overwrite=true to replace them")


def missing_output(cfg: RecipeConfig, step: str) -> Path | None:
    """The first file that a finished ``step`` would have written for ``cfg`` and that is not there."""
    needed = [cfg.results_dir / name for name in STEP_RESULTS[step] if "*" not in name]
    needed += [cfg.work_dir / name for name in STEP_ARTIFACTS[step] if name != "checkpoints"]
    if step == "train":
        needed += [cfg.work_dir / "models" / name / "model.safetensors" for name in cfg.stages]
    return next((path for path in needed if not path.exists()), None)


def require_step(cfg: RecipeConfig, step: str, command: str) -> None:
    """What an earlier ``step`` wrote exists for this config (checked when a later command runs on its own)."""
    record = read_record(cfg.work_dir)
    missing = missing_output(cfg, step)
    if missing or not all(key in record for key in step_keys(cfg, step)) or changed_steps(record, cfg, (step,)):
        found = f" ({missing} is missing)" if missing else ""
        raise UserError(f"{cfg.work_dir}: no {step} output for this config{found}; run `reproduce {step}` with the "
                        f"same overrides before `reproduce {command}`")


def start_steps(cfg: RecipeConfig, steps: tuple[str, ...]) -> None:
    """Before a command's work: remove outputs that no record vouches for, or that a changed step (or
    ``resume=never``) makes stale, from the first such step on; then record the config. What is left is reusable."""
    for folder, outputs in ((cfg.results_dir, STEP_RESULTS), (cfg.work_dir, STEP_ARTIFACTS)):
        record = read_record(folder)
        unvouched = [step for step in STEPS if not all(key in record for key in step_keys(cfg, step))]
        redo = [*changed_steps(record, cfg, steps), *unvouched, *(steps if cfg.resume == "never" else ())]
        stale = downstream(redo)
        for step in stale:
            for pattern in outputs[step]:
                for path in folder.glob(pattern):
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
            for key in step_keys(cfg, step):
                record.pop(key, None)
        record.update(step_values(cfg, steps))
        record = {"run_name": cfg.run_name, **{k: record[k] for s in STEPS for k in step_keys(cfg, s) if k in record}}
        write_text(folder / CONFIG_FILE, yaml.safe_dump(record, sort_keys=False, allow_unicode=True))


def remove_stale_temporaries(*folders: Path) -> None:
    """Temporary files and folders (``.*.tmp``) that a killed write left behind (call on rank zero only: in a
    multi-process run the others start while it works)."""
    for folder in folders:
        for path in sorted(folder.rglob(".*.tmp"), reverse=True) if folder.is_dir() else ():
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
