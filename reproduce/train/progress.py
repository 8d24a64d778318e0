"""A Lightning callback that prints progress lines (tokens/s, ETA) and records loss curves."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytorch_lightning as pl

log = logging.getLogger("reproduce")


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class ProgressAndCurves(pl.Callback):
    """Every ``record_every`` optimizer steps, records the mean train loss; prints a line every ``print_every_s``."""

    def __init__(self, stage: str, tokens_per_step: int, total_steps: int, record_every: int, print_every_s: float):
        self.stage, self.tokens_per_step, self.total_steps = stage, tokens_per_step, total_steps
        self.record_every, self.print_every_s = record_every, print_every_s
        self.train: list[dict[str, Any]] = []
        self.validation: list[dict[str, Any]] = []
        self._start = self._last_print = 0.0
        self._last_step = self._start_step = 0
        self.seconds_before = 0.0  # training time of the runs this one resumed

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = self._last_print = time.perf_counter()
        self._last_step = self._start_step = trainer.global_step
        resumed = f", resumed at step {trainer.global_step}" if trainer.global_step else ""
        log.info(f"[{self.stage}] {self.total_steps} steps, {_human(self.total_steps * self.tokens_per_step)} tokens"
                 + resumed)

    # -- the curves so far and the losses since the last point travel in checkpoints
    def state_dict(self) -> dict[str, Any]:
        seconds = self.seconds_before + time.perf_counter() - self._start
        return {"train": self.train, "validation": self.validation, "seconds": seconds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train, self.validation = list(state_dict["train"]), list(state_dict["validation"])
        self.seconds_before = state_dict["seconds"]

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        checkpoint["loss_window"] = list(pl_module.loss_window)

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        pl_module.loss_window[:] = checkpoint["loss_window"]

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step == self._last_step:  # still accumulating gradients
            return
        self._last_step = step
        now = time.perf_counter()
        if step % self.record_every == 0 or step == self.total_steps:
            losses = pl_module.loss_window
            lr = trainer.optimizers[0].param_groups[0]["lr"]
            self.train.append({"stage": self.stage, "step": step, "tokens": step * self.tokens_per_step,
                               "loss": sum(losses) / len(losses), "lr": lr})
            losses.clear()
            if trainer.logger is not None:
                rate = (step - self._start_step) * self.tokens_per_step / (now - self._start)
                trainer.logger.log_metrics({"tokens": step * self.tokens_per_step, "tokens_per_second": rate}, step)
        if now - self._last_print >= self.print_every_s or step == self.total_steps:
            self._last_print = now
            rate = (step - self._start_step) * self.tokens_per_step / (now - self._start)
            eta = (self.total_steps - step) * self.tokens_per_step / rate
            # the last curve point, or before the first one the mean of the losses so far
            losses = pl_module.loss_window
            loss = self.train[-1]["loss"] if self.train else sum(losses) / len(losses)
            log.info(f"[{self.stage}] step {step}/{self.total_steps} | tokens {_human(step * self.tokens_per_step)}"
                     f" | loss {loss:.3f} | {_human(rate)} tok/s | ETA {_duration(eta)}")

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or "val_loss" not in trainer.callback_metrics:
            return
        step = trainer.global_step
        loss = float(trainer.callback_metrics["val_loss"])
        self.validation.append({"stage": self.stage, "step": step, "tokens": step * self.tokens_per_step, "loss": loss})
        log.info(f"[{self.stage}] validation loss {loss:.3f} at step {step}")
