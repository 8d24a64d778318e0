"""Our progress lines go to stdout and to the run's log file; third-party bars and info logs stay quiet."""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import IO

from reproduce.core.io import open_log

log = logging.getLogger("reproduce")
# Libraries whose info logs are hidden unless verbose=true.
_QUIET = ("lm_eval", "datasets", "transformers", "pytorch_lightning", "lightning", "lightning_fabric",
          "lightning.pytorch", "lightning.fabric", "torch.distributed")


def silence_progress_bars() -> None:
    """Turn the libraries' progress bars off; they read these switches when imported, so call this first."""
    os.environ["TQDM_DISABLE"] = "1"  # tqdm's default: lm-eval's task-building bars
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # transformers' loading and saving bars
    os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] = "1"


class _LogFile(logging.FileHandler):
    """logging's file handler opening its file through the writer (``O_NOFOLLOW``: a link planted there is
    refused, never appended to)."""

    def _open(self) -> IO[str]:
        return open_log(self.baseFilename)


def setup_logging(log_file: Path | None, verbose: bool, rank_zero: bool = True) -> None:
    """Send the ``reproduce`` logger to stdout and (appending) to ``log_file``; unless verbose, keep the libraries'
    info logs and deprecation notices out (call after importing them: Lightning sets its level on import).
    Other ranks of a multi-process run print only warnings and errors, and write no log file."""
    log.setLevel(logging.INFO)
    log.propagate = False
    for handler in list(log.handlers):
        log.removeHandler(handler)
        handler.close()
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter("%(message)s"))
    console.setLevel(logging.INFO if rank_zero else logging.WARNING)
    log.addHandler(console)
    if log_file is not None and rank_zero:
        to_file = _LogFile(log_file, encoding="utf-8")
        to_file.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(to_file)
        to_file.stream.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} == {' '.join(sys.argv)}\n")
    if not verbose:
        for name in _QUIET:
            logging.getLogger(name).setLevel(logging.WARNING)
        for category in (DeprecationWarning, FutureWarning):
            warnings.filterwarnings("ignore", category=category)
