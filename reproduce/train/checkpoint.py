"""Checkpoints of a stage: written atomically at optimizer-step boundaries, the last K kept, found again to resume.

A checkpoint is Lightning's (model, optimizer, scheduler, loops, callbacks' state), plus the RNG states taken at
that step boundary. The data cursor needs no field of its own: a stage's samples come in a fixed (seed, epoch)
order, and after ``global_step`` optimizer steps exactly ``global_step * batch_size`` of them are consumed.
SIGTERM, SIGUSR1 and SIGUSR2 (the preemption and requeue signals of SLURM and submitit) and SIGINT (Ctrl-C) make the
stage save one at the next step boundary and stop; a second Ctrl-C stops at once, keeping the checkpoints saved before.
Each checkpoint has its sha256 beside it (``step-<n>.ckpt.sha256``), written before the checkpoint gets its name; a
resume takes the newest one that matches it.
"""

from __future__ import annotations

import logging
import random
import re
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO

from reproduce.core.checksums import sidecar, sidecar_problem, write_sidecar
from reproduce.core.errors import STOP_SIGNALS, Stopped, UserError
from reproduce.core.io import atomic_path, remove_all

log = logging.getLogger("reproduce")
_NAME = re.compile(r"step-(\d{9})\.ckpt")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO, writing to a temporary name, then its sha256 beside it, then renaming; loading with
    weights_only."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)
            write_sidecar(tmp, Path(path))

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = True) -> dict:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated or foreign file: torch raises several types
            raise UserError(f"{path}: not a readable checkpoint ({type(exc).__name__}); delete it to resume from "
                            "the one before, or pass resume=never") from None


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"step-{step:09d}.ckpt"


def checkpoint_step(path: Path) -> int:
    return int(_NAME.fullmatch(path.name).group(1))


def checkpoints(folder: Path) -> list[Path]:
    """The stage's checkpoints, oldest first."""
    found = [p for p in folder.glob("step-*.ckpt") if _NAME.fullmatch(p.name)] if folder.is_dir() else []
    return sorted(found, key=checkpoint_step)


def last_good_checkpoint(folder: Path, stage: str) -> Path | None:
    """The newest checkpoint whose bytes match its sha256 (None when there is none yet). A damaged one is passed over
    with a warning line; when every one is damaged, one error line."""
    found = checkpoints(folder)
    for path in reversed(found):
        problem = sidecar_problem(path)
        if problem is None:
            return path
        log.warning(f"[{stage}] warning: {path} is damaged ({problem}); resuming from the checkpoint before it")
    if found:
        raise UserError(f"stages.{stage}: every checkpoint in {folder} is damaged; delete the folder to train the "
                        "stage from its start")
    return None


def _rng_state() -> dict[str, Any]:
    """Torch, numpy and Python RNG states as tensors and plain types (what ``weights_only`` loading accepts)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss,
                                                      gauss], "python": random.getstate()}


def _set_rng_state(state: dict[str, Any]) -> None:
    name, keys, pos, has_gauss, gauss = state["numpy"]
    torch.set_rng_state(state["torch"])
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])


class StageCheckpoints(pl.Callback):
    """Saves every ``every_steps`` optimizer steps and at the stage's end, keeps the last ``keep``, and stops at the
    next step boundary after a stop signal (with a checkpoint). At a step that validates (every
    ``validate_every``), the checkpoint waits for the validation, so a resumed run neither repeats nor loses it."""

    def __init__(self, folder: Path, every_steps: int | None, keep: int, validate_every: int):
        self.folder, self.every_steps, self.keep, self.validate_every = folder, every_steps, keep, validate_every
        self.stopped_by: int | None = None  # the signal that stopped the stage
        self._boundary_rng: dict[str, Any] | None = None
        self._resumed_rng: dict[str, Any] | None = None
        self._last_step = -1
        self._pending = False  # a checkpoint due after this step's validation

    # -- signals: flag now, act at the next step boundary
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Replace Lightning's SIGTERM handler (it would stop mid-accumulation) and take SIGUSR1, SIGUSR2 and SIGINT
        (the stage's caller puts the handlers before back)."""
        self._last_step = trainer.global_step
        for signum in (*STOP_SIGNALS, signal.SIGINT):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and self.stopped_by is not None:  # Ctrl-C twice: now, not at the step boundary
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            raise Stopped(signum)
        self.stopped_by = signum

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, batch_idx: int) -> None:
        """After a resume, the RNG continues from the checkpoint's step boundary (after the loader is built)."""
        if self._resumed_rng is not None:
            _set_rng_state(self._resumed_rng)
            self._resumed_rng = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step == self._last_step:  # still accumulating gradients
            return
        self._last_step = step
        # one rank's signal stops every rank at the same boundary (SLURM and torchrun signal them all, a user may not);
        # one process needs no collective, nor the host-device round trip it costs on a GPU
        if trainer.world_size > 1:
            flag = torch.tensor(self.stopped_by or 0, device=pl_module.device)  # NCCL reduces only GPU tensors
            self.stopped_by = int(trainer.strategy.reduce(flag, reduce_op="max")) or None
        due = self.stopped_by is not None or bool(self.every_steps and step % self.every_steps == 0)
        if due and step % self.validate_every == 0:
            self._pending = True
        elif due:
            self._save_at_boundary(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pending and not trainer.sanity_checking:
            self._pending = False
            self._save_at_boundary(trainer)

    def _save_at_boundary(self, trainer: pl.Trainer) -> None:
        self._boundary_rng = _rng_state()  # after this step's validation, which draws from the RNG too
        self.save(trainer)
        if self.stopped_by is not None:
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.stopped_by is None and not checkpoint_path(self.folder, trainer.global_step).exists():
            self._boundary_rng = _rng_state()
            self.save(trainer)

    def save(self, trainer: pl.Trainer) -> None:
        trainer.save_checkpoint(checkpoint_path(self.folder, trainer.global_step))
        if trainer.is_global_zero:
            remove_all([path for old in checkpoints(self.folder)[: -self.keep] for path in (old, sidecar(old))])

    # -- what a checkpoint carries besides Lightning's own state
    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        checkpoint["rng_at_step_boundary"] = self._boundary_rng

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        self._resumed_rng = checkpoint.get("rng_at_step_boundary")
