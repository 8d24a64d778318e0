"""A Lightning callback that prints progress lines (tokens/s, MFU, ETA) and records loss curves."""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any

import pytorch_lightning as pl
import torch

from reproduce.core.perf import mfu, peak_flops

log = logging.getLogger("reproduce")


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def device_name(trainer: pl.Trainer) -> str:
    """The accelerator's name as torch reports it (``cpu`` for CPUs)."""
    device = trainer.strategy.root_device
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


class ProgressAndCurves(pl.Callback):
    """Every ``record_every`` optimizer steps, records the mean train loss and logs tokens/s and MFU over the steps
    since the last record (MFU where the device's peak is known, reproduce/core/perf.py); prints a line every
    ``print_every_s``."""

    def __init__(self, stage: str, tokens_per_step: int, total_steps: int, record_every: int, print_every_s: float,
                 flops_per_token: int):
        self.stage, self.tokens_per_step, self.total_steps = stage, tokens_per_step, total_steps
        self.record_every, self.print_every_s, self.flops_per_token = record_every, print_every_s, flops_per_token
        self.train: list[dict[str, Any]] = []
        self.validation: list[dict[str, Any]] = []
        self._start = self._last_print = self._last_record = 0.0
        self._last_step = self._start_step = self._last_record_step = 0
        self.seconds_before = 0.0  # training time of the runs this one resumed
        self.device, self.peak, self.world_size = "cpu", None, 1
        self.window_rates: list[float] = []  # tokens/s between consecutive records of this launch
        self.grad_norm: float | None = None  # the global gradient norm (before clipping) of the last recorded step

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start = self._last_print = self._last_record = time.perf_counter()
        self._last_step = self._start_step = self._last_record_step = trainer.global_step
        self.device, self.world_size = device_name(trainer), trainer.world_size
        tf32 = torch.get_float32_matmul_precision() != "highest"  # fp32 products on tensor cores
        self.peak = peak_flops(self.device, str(trainer.precision), tf32)
        resumed = f", resumed at step {trainer.global_step}" if trainer.global_step else ""
        log.info(f"[{self.stage}] {self.total_steps} steps, {_human(self.total_steps * self.tokens_per_step)} tokens"
                 + resumed)

    def mfu(self, tokens_per_second: float) -> float | None:
        return mfu(tokens_per_second, self.flops_per_token, self.peak, self.world_size)

    def speed(self) -> dict[str, Any]:
        """Throughput facts for results/<run>/train.json: the device, its peak, FLOPs per token, and the median
        tokens/s and MFU over the record windows (the stage's whole-time mean includes compilation and validation)."""
        median = statistics.median(self.window_rates[1:] or self.window_rates) if self.window_rates else None
        return {"device": self.device, "devices": self.world_size, "peak_flops": self.peak,
                "flops_per_token": self.flops_per_token, "median_window_tokens_per_second": median,
                "median_window_mfu": None if median is None else self.mfu(median)}

    # -- the curves so far and the losses since the last point travel in checkpoints
    def state_dict(self) -> dict[str, Any]:
        seconds = self.seconds_before + time.perf_counter() - self._start
        return {"train": self.train, "validation": self.validation, "seconds": seconds}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train, self.validation = list(state_dict["train"]), list(state_dict["validation"])
        self.seconds_before = state_dict["seconds"]

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        checkpoint["loss_window"] = list(pl_module.read_losses())  # a non-finite loss stops before the save

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        pl_module.loss_window[:] = checkpoint["loss_window"]

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: Any, optimizer: Any) -> None:
        """The global gradient norm before clipping, at the steps that record a point only (a read of the gradients:
        training computes the same). Under FSDP it is this rank's shards' norm."""
        step = trainer.global_step + 1  # the step this update makes
        if trainer.loggers and (step % self.record_every == 0 or step == self.total_steps):
            grads = [p.grad.detach().float().norm() for p in pl_module.parameters() if p.grad is not None]
            self.grad_norm = float(torch.stack(grads).norm()) if grads else None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step == self._last_step:  # still accumulating gradients
            return
        self._last_step = step
        if step % self.record_every == 0 or step == self.total_steps:
            self._record(trainer, pl_module, step)
        now = time.perf_counter()
        if now - self._last_print >= self.print_every_s or step == self.total_steps:
            self._last_print = now
            rate = (step - self._start_step) * self.tokens_per_step / (now - self._start)
            eta = (self.total_steps - step) * self.tokens_per_step / rate
            # the last curve point, or before the first one the mean of this rank's losses so far
            losses = pl_module.peek_losses()
            loss = self.train[-1]["loss"] if self.train else sum(losses) / len(losses)
            utilisation = self.mfu(rate)
            mfu_text = "" if utilisation is None else f" | MFU {100 * utilisation:.1f}%"
            log.info(f"[{self.stage}] step {step}/{self.total_steps} | tokens {_human(step * self.tokens_per_step)}"
                     f" | loss {loss:.3f} | {_human(rate)} tok/s{mfu_text} | ETA {_duration(eta)}")

    def _record(self, trainer: pl.Trainer, pl_module: Any, step: int) -> None:
        """A curve point (the mean train loss since the last one) and the window's tokens/s and MFU in the log."""
        losses = pl_module.read_losses()  # waits for the device: the window's time below is its real time
        now = time.perf_counter()
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        loss = sum(losses) / len(losses)
        self.train.append({"stage": self.stage, "step": step, "tokens": step * self.tokens_per_step, "loss": loss,
                           "lr": lr})
        losses.clear()
        rate = (step - self._last_record_step) * self.tokens_per_step / (now - self._last_record)
        self._last_record, self._last_record_step = now, step
        self.window_rates.append(rate)
        metrics = {"train_loss": loss, "lr": lr, "tokens": step * self.tokens_per_step, "tokens_per_second": rate}
        if self.grad_norm is not None:
            metrics["grad_norm"] = self.grad_norm
        if self.peak is not None:
            metrics["mfu"] = self.mfu(rate)
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or "val_loss" not in trainer.callback_metrics:
            return
        step = trainer.global_step
        loss = float(trainer.callback_metrics["val_loss"])
        self.validation.append({"stage": self.stage, "step": step, "tokens": step * self.tokens_per_step, "loss": loss})
        log.info(f"[{self.stage}] validation loss {loss:.3f} at step {step}")
