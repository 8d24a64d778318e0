"""One stage of the recipe: build or load the model, fit it with Lightning, export a Hugging Face directory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from torch.utils.data import DataLoader, Subset
from transformers import GPT2LMHeadModel, PreTrainedTokenizerFast

from reproduce.data.sequences import PackedSequences, StageOrder
from reproduce.errors import UserError
from reproduce.io import atomic_dir
from reproduce.model import CausalLM, gpt2_config
from reproduce.progress import ProgressAndCurves

# Trainer arguments that a stage derives from its own config; setting them under `trainer` is an error.
_DERIVED = ("max_steps", "max_epochs", "accumulate_grad_batches", "gradient_clip_val", "use_distributed_sampler",
            "callbacks", "val_check_interval", "check_val_every_n_epoch", "num_sanity_val_steps")


@dataclass
class StageResult:
    name: str
    export_dir: Path
    context: int
    steps: int
    tokens: int
    seconds: float
    train_curve: list[dict[str, Any]] = field(default_factory=list)
    validation_curve: list[dict[str, Any]] = field(default_factory=list)


class StageData(pl.LightningDataModule):
    """Training windows in the stage's fixed global order (sharded by rank) and a fixed validation subset."""

    def __init__(self, train: PackedSequences, validation: Subset, total: int, seed: int, micro_batch: int):
        super().__init__()
        self.train, self.validation = train, validation
        self.total, self.seed, self.micro_batch = total, seed, micro_batch

    def train_dataloader(self) -> DataLoader:
        order = StageOrder(len(self.train), self.total, self.seed, self.micro_batch,
                           rank=self.trainer.global_rank, world=self.trainer.world_size)
        return DataLoader(self.train, batch_size=self.micro_batch, sampler=order)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.validation, batch_size=self.micro_batch)


def _world_size(trainer_cfg: dict[str, Any]) -> int:
    devices = trainer_cfg.get("devices", 1)
    if isinstance(devices, (list, tuple)):
        devices = len(devices)
    if not isinstance(devices, int) or devices < 1:
        raise UserError(f"trainer.devices={devices!r}: give a device count (an integer) so the batch can be split")
    return devices * int(trainer_cfg.get("num_nodes", 1))


def check_stage(name: str, stage: dict[str, Any], model_cfg: dict[str, Any], trainer_cfg: dict[str, Any],
                earlier: list[str]) -> None:
    """Fail before any work on a stage setting that cannot run; ``earlier`` are the stages before it."""
    bad = sorted(set(trainer_cfg) & set(_DERIVED))
    if bad:
        raise UserError(f"trainer.{bad[0]} is set by each stage (stages.{name}); remove it from the trainer config")
    batch, micro, world = stage["batch_size"], stage["micro_batch_size"], _world_size(trainer_cfg)
    if batch % (micro * world):
        raise UserError(f"stages.{name}.batch_size={batch} is not a multiple of micro_batch_size x devices "
                        f"= {micro} x {world}")
    if stage["context"] > model_cfg["n_positions"]:
        raise UserError(f"stages.{name}.context={stage['context']} exceeds "
                        f"model.n_positions={model_cfg['n_positions']}")
    if stage.get("init_from") is not None and stage["init_from"] not in earlier:
        raise UserError(f"stages.{name}.init_from={stage['init_from']!r}: not an earlier stage ({earlier or 'none'})")
    if not stage["epochs"] > 0:
        raise UserError(f"stages.{name}.epochs={stage['epochs']}: give a positive share of the train split")


def _evenly_spaced(n: int, k: int) -> list[int]:
    return sorted(set(np.linspace(0, n - 1, num=min(n, k)).astype(int).tolist()))


def run_stage(
    name: str,
    stage: dict[str, Any],
    model_cfg: dict[str, Any],
    trainer_cfg: dict[str, Any],
    tokenizer: PreTrainedTokenizerFast,
    train_tokens: np.ndarray,
    validation_tokens: np.ndarray,
    export_dir: Path,
    seed: int,
    init_dir: Path | None = None,
) -> StageResult:
    """Train one stage and export it (safetensors + tokenizer) to ``export_dir``."""
    context, batch, micro = stage["context"], stage["batch_size"], stage["micro_batch_size"]
    world = _world_size(trainer_cfg)
    pl.seed_everything(seed, workers=True, verbose=False)
    if init_dir is None:
        config = gpt2_config(model_cfg, len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id)
        model = GPT2LMHeadModel(config)
    else:
        model = GPT2LMHeadModel.from_pretrained(  # from_pretrained returns eval mode
            init_dir, attn_implementation=model_cfg.get("attn_implementation")).train()

    train = PackedSequences(train_tokens, context)
    steps = int(stage["epochs"] * len(train)) // batch
    if steps < 1:
        raise UserError(f"stages.{name}.epochs={stage['epochs']} gives no optimizer step "
                        f"({len(train)} windows, batch {batch}); raise epochs or lower batch_size")
    validation = PackedSequences(validation_tokens, context)
    validation = Subset(validation, _evenly_spaced(len(validation), stage["validation_windows"]))
    data = StageData(train, validation, steps * batch, stage.get("data_seed", seed), micro)

    accumulate = batch // (micro * world)
    tokens_per_step = batch * context
    progress = ProgressAndCurves(name, tokens_per_step, steps, stage["record_every_steps"], stage["print_every_s"])
    trainer = pl.Trainer(
        **{"logger": False, "enable_checkpointing": False, "enable_model_summary": False, **trainer_cfg},
        max_steps=steps,
        max_epochs=1,
        accumulate_grad_batches=accumulate,
        gradient_clip_val=stage["optim"]["grad_clip"],
        use_distributed_sampler=False,
        callbacks=[progress],
        val_check_interval=min(stage["validate_every_steps"], steps) * accumulate,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
    )
    module = CausalLM(model, dict(stage["optim"]), steps)
    started = time.perf_counter()
    trainer.fit(module, datamodule=data)
    seconds = time.perf_counter() - started

    if trainer.is_global_zero:
        with atomic_dir(export_dir) as tmp:
            module.model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    return StageResult(name, export_dir, context, steps, steps * tokens_per_step, seconds,
                       progress.train, progress.validation)
