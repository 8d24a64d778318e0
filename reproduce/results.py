"""Run metadata recorded in every result file: versions, git commit, device, dtype, batch size, seed."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from typing import Any

import torch

from reproduce import __version__
from reproduce.paths import PROJECT_ROOT


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def run_metadata(**run: Any) -> dict[str, Any]:
    """Versions and git state, plus the run's own facts (device, dtype, batch size, seed, ...)."""
    status = _git("status", "--porcelain", "--untracked-files=no")
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
        **run,
    }
