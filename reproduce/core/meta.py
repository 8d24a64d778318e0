"""What every results file records beside its numbers: the package's and its engines' versions, the git state, the
machine (CPU capability included: float digits depend on it), and a run's device, dtype, batch sizes and seed."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reproduce import __version__
from reproduce.core.environment import LOCK, lock_differences, read_lock
from reproduce.core.errors import UserError
from reproduce.core.io import read_input_text
from reproduce.core.paths import SOURCE_ROOT

if TYPE_CHECKING:
    from reproduce.config.schema import RecipeConfig


def git(*args: str) -> str | None:
    """The output of a git command in the source checkout (stripped), or None outside one or where it fails."""
    if SOURCE_ROOT is None:
        return None
    try:
        out = subprocess.run(["git", *args], cwd=SOURCE_ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def cpu_model() -> str:
    """The CPU's model name (Linux), else the platform's processor string."""
    cpuinfo = Path("/proc/cpuinfo")
    for line in read_input_text(cpuinfo).splitlines() if cpuinfo.is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, Any]:
    """Versions of the package and its engines and the git state, without importing any of them (no torch: fast)."""
    # the source's state: what runs write into the checkout (results/, paper/) does not make it dirty
    status = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results", ":(exclude)paper")
    return {
        "package": "reproduce",
        "package_version": __version__,
        "python": platform.python_version(),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "pytorch_lightning": _version("pytorch-lightning"),
        "lm_eval": _version("lm_eval"),
        "tokenizers": _version("tokenizers"),
        "numpy": _version("numpy"),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
    }


def package_metadata() -> dict[str, Any]:
    """``versions`` and the machine: its CPU (model and the instruction set the last digits of a float computation
    depend on), GPU and threads, and every installed version that is not the lock's."""
    import torch

    return {
        **versions(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the kernels' instruction set: AVX2, AVX512, ...
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "lock_differs": lock_differences(),  # name -> {lock, installed}; None outside a checkout
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


# What the digits of a run depend on, as the verdict and `reproduce env` show it: meta key -> its label.
ENVIRONMENT = {"python": "Python", "torch": "torch", "transformers": "transformers", "tokenizers": "tokenizers",
               "lm_eval": "lm-eval", "pytorch_lightning": "Lightning", "numpy": "numpy", "cpu_model": "CPU",
               "cpu_capability": "cpu_capability", "gpu": "GPU", "torch_threads": "threads", "dtype": "precision"}


def environment(meta: dict[str, Any]) -> dict[str, Any]:
    """The environment fields of a results file's ``meta`` (None where it records none)."""
    return {key: meta.get(key) for key in ENVIRONMENT}


def environment_rows(cfg: RecipeConfig) -> list[tuple[str, str]]:
    """(what, value) of `reproduce env`: the environment, the package and its commit, and every installed version
    that differs from the lock."""
    meta = {**package_metadata(), "dtype": cfg.trainer.precision}
    dirty = " (uncommitted changes)" if meta["git_dirty"] else ""
    rows = [("package", f"reproduce {meta['package_version']}"), ("git commit", f"{meta['git_commit']}{dirty}")]
    rows += [(label, "—" if meta[key] is None else str(meta[key])) for key, label in ENVIRONMENT.items()]
    if LOCK is None or not LOCK.is_file():
        return [*rows, ("lock", "none: an installed package has no requirements/constraints.txt")]
    try:
        pins = len(read_lock(LOCK))
    except UserError as exc:
        return [*rows, ("lock", str(exc))]
    differs = meta["lock_differs"] or {}
    rows.append(("lock", f"requirements/constraints.txt: {pins} pins for this Python, {len(differs)} installed "
                         "version(s) differ"))
    rows += [(f"differs from the lock: {name}", f"{d['installed']} (lock: {d['lock']})") for name, d in differs.items()]
    return rows


def show_environment(cfg: RecipeConfig) -> None:
    """`reproduce env`: the table of ``environment_rows``."""
    rows = environment_rows(cfg)
    print("\n".join(["| what | value |", "|---|---|", *(f"| {what} | {value} |" for what, value in rows)]))
