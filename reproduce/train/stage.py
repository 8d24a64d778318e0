"""One stage of the recipe: build or load the model, fit it with Lightning, export a Hugging Face directory."""

from __future__ import annotations

import logging
import signal
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.loggers import Logger
from pytorch_lightning.strategies import FSDPStrategy
from torch.utils.data import DataLoader, Subset
from transformers import GPT2LMHeadModel
from transformers.models.gpt2.modeling_gpt2 import GPT2Block

from reproduce.config.schema import RecipeConfig, StageConfig, TrainerConfig
from reproduce.core import layout
from reproduce.core.arithmetic import accumulation, flops_per_token, stage_counts
from reproduce.core.checksums import write_sums
from reproduce.core.errors import STOP_SIGNALS, Interrupted, UserError
from reproduce.core.io import atomic_dir
from reproduce.core.perf import mfu, native_bf16_cpu
from reproduce.data.prepared_set import PreparedData
from reproduce.data.sequences import PackedSequences, StageOrder
from reproduce.model.gpt2 import (
    CausalLM,
    NonFiniteLoss,
    copy_learned_positions,
    exact_parameters,
    gpt2_config,
    pad_vocabulary,
    save_export,
)
from reproduce.train.checkpoint import (
    AtomicCheckpointIO,
    StageCheckpoints,
    checkpoint_step,
    checkpoints,
    last_good_checkpoint,
)
from reproduce.train.in_training_eval import InTrainingEval
from reproduce.train.progress import ProgressAndCurves
from reproduce.train.trackers import Axis, build_loggers
from reproduce.train.watch import point_steps

log = logging.getLogger("reproduce")


@dataclass(frozen=True)
class InitFrom:
    """What a stage starts from: a model directory or hub id, and the context it was trained at when it is an earlier
    stage of the run (None for a released checkpoint)."""

    source: Path | str
    context: int | None


@dataclass
class StageResult:
    name: str
    export_dir: Path
    context: int
    steps: int
    tokens: int
    seconds: float
    parameters: int
    speed: dict[str, Any]  # ProgressAndCurves.speed: device, peak, FLOPs per token, median window tokens/s and MFU
    train_curve: list[dict[str, Any]] = field(default_factory=list)
    validation_curve: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        """The stage's facts for results/<run>/train.json."""
        rate = self.tokens / self.seconds
        return {"context": self.context, "steps": self.steps, "tokens": self.tokens, "seconds": self.seconds,
                "tokens_per_second": rate, "parameters": self.parameters,
                "mfu": mfu(rate, self.speed["flops_per_token"], self.speed["peak_flops"], self.speed["devices"]),
                **self.speed}


class StageData(pl.LightningDataModule):
    """Training windows in the stage's fixed global order (sharded by rank), from the data cursor on, and a fixed
    validation subset. The cursor is the samples consumed: ``global_step * batch`` (restored on resume)."""

    def __init__(self, train: PackedSequences, validation: Subset, total: int, seed: int, micro_batch: int,
                 batch: int):
        super().__init__()
        self.train, self.validation = train, validation
        self.total, self.seed, self.micro_batch, self.batch = total, seed, micro_batch, batch

    def _pin(self) -> bool:
        """Page-locked batches on GPUs: the copy to the device runs asynchronously."""
        return self.trainer.strategy.root_device.type == "cuda"

    def train_dataloader(self) -> DataLoader:
        order = StageOrder(len(self.train), self.total, self.seed, self.micro_batch,
                           rank=self.trainer.global_rank, world=self.trainer.world_size,
                           start=self.trainer.global_step * self.batch)
        return DataLoader(self.train, batch_size=self.micro_batch, sampler=order, pin_memory=self._pin())

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.validation, batch_size=self.micro_batch, pin_memory=self._pin())


def warn_if_bf16_is_emulated(trainer: TrainerConfig) -> None:
    """bf16 autocast on a CPU without native bf16 is emulated: it runs, but about 40x slower than fp32."""
    on_cpu = trainer.accelerator == "cpu" or (trainer.accelerator == "auto" and not torch.cuda.is_available())
    if on_cpu and trainer.precision.startswith("bf16") and native_bf16_cpu() is False:
        log.warning(f"warning: trainer.precision={trainer.precision} on a CPU without native bf16 (AVX512-BF16 or "
                    f"AMX; this one: {torch.backends.cpu.get_cpu_capability()}): autocast is emulated, about 40x "
                    "slower than fp32 (a 2-core AVX2 EPYC: 107 against 4.4k tokens/s on the mini model); "
                    "trainer.precision=32-true runs at full speed, with other digits than a bf16 run")


def build_strategy(trainer: TrainerConfig) -> str | FSDPStrategy:
    """Lightning's strategy by name; for fsdp, one FSDP unit (and optional activation checkpoint) per GPT2Block and
    full-state checkpoints, so that checkpoints and exports look the same as under any other strategy."""
    if trainer.strategy != "fsdp":
        return trainer.strategy
    fsdp = trainer.fsdp
    return FSDPStrategy(auto_wrap_policy={GPT2Block}, sharding_strategy=fsdp.sharding_strategy, state_dict_type="full",
                        activation_checkpointing_policy={GPT2Block} if fsdp.activation_checkpointing else None,
                        cpu_offload=fsdp.cpu_offload)


def _evenly_spaced(n: int, k: int) -> list[int]:
    return sorted(set(np.linspace(0, n - 1, num=min(n, k)).astype(int).tolist()))


def _build_model(name: str, cfg: RecipeConfig, data: PreparedData, init_from: InitFrom | None) -> GPT2LMHeadModel:
    """A fresh model, an earlier stage's export, or a released checkpoint (with the config's dropout and kernel)."""
    tokenizer = data.tokenizer
    if len(tokenizer) > cfg.model.vocab_size:
        raise UserError(f"model.vocab_size={cfg.model.vocab_size}: the prepared tokenizer has {len(tokenizer)} ids; "
                        "raise it")
    if init_from is None:
        return GPT2LMHeadModel(gpt2_config(cfg.model, tokenizer.bos_token_id, tokenizer.eos_token_id))
    model_config = cfg.model
    try:
        model = GPT2LMHeadModel.from_pretrained(
            init_from.source, attn_implementation=model_config.attn_implementation,
            resid_pdrop=model_config.resid_pdrop, embd_pdrop=model_config.embd_pdrop,
            attn_pdrop=model_config.attn_pdrop, trust_remote_code=False)
    except (OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"stages.{name}.init_from={str(init_from.source)!r}: cannot load its model ({exc})") from None
    return model.train()  # from_pretrained returns eval mode


# Lightning cannot know that the stage's sampler starts at the data cursor (StageData), and says so on resume.
warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")


def stage_trainer(stage: StageConfig, trainer: TrainerConfig, steps: int, validate_every: int,
                  callbacks: list[pl.Callback], logger: list[Logger] | None) -> pl.Trainer:
    """The stage's Lightning Trainer: accumulation, clipping and validation cadence from the stage, the engine from
    ``trainer`` (also built by bench/gpu_mfu.py, so that the benchmark times this very Trainer)."""
    accumulate = accumulation(stage.batch_size, stage.micro_batch_size, trainer.devices * trainer.num_nodes)
    return pl.Trainer(
        logger=logger or False, log_every_n_steps=stage.record_every_steps,
        enable_checkpointing=False, enable_model_summary=False,
        accelerator=trainer.accelerator, devices=trainer.devices, num_nodes=trainer.num_nodes,
        strategy=build_strategy(trainer), precision=trainer.precision,
        enable_progress_bar=trainer.enable_progress_bar, **trainer.args,
        plugins=[AtomicCheckpointIO()],
        max_steps=steps,
        max_epochs=1,
        accumulate_grad_batches=accumulate,
        gradient_clip_val=stage.optim.grad_clip,
        use_distributed_sampler=False,
        callbacks=callbacks,
        val_check_interval=validate_every * accumulate,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
    )


def run_stage(name: str, stage: StageConfig, cfg: RecipeConfig, data: PreparedData,
              init_from: InitFrom | None = None, steps_before: int = 0, tokens_before: int = 0) -> StageResult:
    """Train one stage (continuing from its last checkpoint if there is one) and export it (safetensors +
    tokenizer) to ``runs/<run>/models/<name>``. ``init_from``: what the stage starts from (None: a fresh model);
    ``steps_before``, ``tokens_before``: the earlier stages' optimizer steps and tokens (the trackers' x-axes)."""
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    model = _build_model(name, cfg, data, init_from)
    if stage.new_positions == "copy":  # the checks allow it only after an earlier, shorter stage
        copy_learned_positions(model, init_from.context, stage.context)

    train = PackedSequences(data.shards["train"], stage.context)
    counts = stage_counts(stage, len(data.shards["train"]), cfg.world_size)
    steps = counts.steps
    if steps < 1:
        raise UserError(f"stages.{name}.epochs={stage.epochs} gives no optimizer step "
                        f"({counts.windows} windows, batch {stage.batch_size}); raise epochs or lower batch_size")
    validation = PackedSequences(data.shards["validation"], stage.context)
    validation = Subset(validation, _evenly_spaced(len(validation), stage.validation_windows))
    seed = cfg.seed if stage.data_seed is None else stage.data_seed
    datamodule = StageData(train, validation, steps * stage.batch_size, seed, stage.micro_batch_size,
                           stage.batch_size)

    tokens_per_step = counts.batch_tokens
    parameters = exact_parameters(model.config)  # the model as configured and exported, without vocabulary padding
    pad_vocabulary(model, cfg.model.pad_vocab_multiple)
    progress = ProgressAndCurves(name, tokens_per_step, steps, stage.record_every_steps, stage.print_every_s,
                                 flops_per_token(parameters, model.config.n_layer, model.config.n_embd, stage.context))
    every = None if stage.checkpoint_every_tokens is None else max(1, stage.checkpoint_every_tokens // tokens_per_step)
    run = cfg.layout
    folder = run.checkpoints(name)
    validate_every = min(stage.validate_every_steps, steps)
    saver = StageCheckpoints(folder, every, stage.keep_checkpoints, validate_every)
    # resume=never removed them before the command started (record.start_steps)
    resume_from = last_good_checkpoint(folder, name) if cfg.resume == "auto" else None
    first_step = 0 if resume_from is None else checkpoint_step(resume_from)
    # the trackers (conf/logger/): train loss, validation loss, lr, gradient norm, tokens/s, MFU on the run's axis;
    # metrics.csv of each launch (a resumed one writes its own)
    axis = Axis(steps_before, tokens_before, tokens_per_step)
    loggers = build_loggers(cfg, axis, name, f"from-step-{first_step:09d}")
    callbacks = [progress, saver] + ([LearningRateMonitor(logging_interval="step")] if loggers else [])
    during = cfg.eval.during_training
    if during.enabled:  # benchmarks in the loop: eval_curve.json; the training's numbers stay the same
        at = point_steps(steps, tokens_per_step, during.every_tokens, every if during.at_checkpoints else None)
        callbacks.append(InTrainingEval(cfg, name, stage.context, axis, at, data))
    trainer = stage_trainer(stage, cfg.trainer, steps, validate_every, callbacks, loggers)
    module = CausalLM(model, stage.optim, steps, cfg.trainer, cfg.model.vocab_size)
    started = time.perf_counter()
    handlers = {signum: signal.getsignal(signum) for signum in (*STOP_SIGNALS, signal.SIGINT)}  # the saver takes them
    try:
        # AtomicCheckpointIO loads with weights_only=True whatever fit is given (fit's own weights_only argument
        # arrived in pytorch-lightning 2.6; the declared 2.4 has none)
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)
    except NonFiniteLoss as exc:
        last = checkpoints(folder)
        kept = f"the last good checkpoint {last[-1]} is kept" if last else "no checkpoint was saved before it"
        raise UserError(f"stages.{name}: loss is {exc.value} at step {exc.step + 1}; {kept}; lower "
                        f"stages.{name}.optim.lr or raise its warmup_fraction (overwrite=true starts the stage over)"
                        ) from None
    finally:
        for signum, handler in handlers.items():  # after the stage, a signal stops the command where it stands
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    if saver.stopped_by is not None:
        raise Interrupted(f"stages.{name} stopped by {signal.Signals(saver.stopped_by).name} at step "
                          f"{trainer.global_step}/{steps}; checkpoint in {folder}; run the same command again to "
                          "continue from it", saver.stopped_by)
    seconds = progress.seconds_before + time.perf_counter() - started

    export_dir = run.model(name)
    weights = None  # FSDP: the full weights, gathered on every rank; otherwise the model holds them
    if isinstance(trainer.strategy, FSDPStrategy):
        weights = {k.removeprefix("model."): v for k, v in trainer.strategy.lightning_module_state_dict().items()}
    if trainer.is_global_zero:
        with atomic_dir(export_dir) as tmp:
            save_export(module.model, tmp, cfg.model.vocab_size, weights)
            data.tokenizer.save_pretrained(tmp)
            write_sums(tmp, skip=(layout.MODEL_CARD,))  # what "trained before" and every reader of the export verify
    trainer.strategy.barrier("export")  # the next stage starts from this export on every rank
    return StageResult(name, export_dir, stage.context, steps, counts.tokens, seconds, parameters,
                       progress.speed(), progress.train, progress.validation)
