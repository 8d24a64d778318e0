"""Benchmarks during training (``eval.during_training``): a Lightning callback that, at fixed steps of a stage, exports
the model as the stage's export is written and scores it with the final evaluation's runner (reproduce/evaluate/
runner.py ``score_point``): validation loss and bits per byte, and a few items of each offline task. Points go to
results/<run>/eval_curve.json and to the trackers.

Training is untouched: the scoring runs between two optimizer steps, on a copy written to disk, with the RNG states
saved before and restored after (lm-eval seeds the global generators), so the run's numbers are those of a run without
it. Its steps are fixed by the config (every ``every_tokens``, each scheduled checkpoint, the stage's end), never by a
signal, so a killed and resumed run gives the same curve; a point already in eval_curve.json is not computed again.
Only rank zero scores; the other ranks wait at a barrier.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from reproduce.config.schema import RecipeConfig
from reproduce.core import layout
from reproduce.core.errors import UserError
from reproduce.core.io import scratch_dir
from reproduce.core.meta import run_metadata
from reproduce.data.prepared_set import PreparedData
from reproduce.evaluate.inputs import eval_device
from reproduce.evaluate.perplexity import eval_blocks, token_byte_lengths
from reproduce.evaluate.runner import add_points, curve_points, drop_stage_points, has_point, score_point, suite_inputs
from reproduce.evaluate.suites import ResolvedSuite
from reproduce.model.gpt2 import save_export
from reproduce.train.checkpoint import _rng_state, _set_rng_state, checkpoint_step
from reproduce.train.trackers import Axis
from reproduce.train.watch import during_training_eval, resolve_during, selected_checkpoints

log = logging.getLogger("reproduce")
VALIDATION = "validation"  # the task name of the validation loss and bits per byte


class InTrainingEval(pl.Callback):
    """Scores the model at ``steps`` of stage ``stage`` (see the module's docstring)."""

    def __init__(self, cfg: RecipeConfig, stage: str, context: int, axis: Axis, steps: set[int], data: PreparedData,
                 source: str = "in_training"):
        self.cfg, self.stage, self.context, self.axis, self.steps, self.data = cfg, stage, context, axis, steps, data
        self.source = source  # in_training, or checkpoint (scored after the run)
        self.evaluation = during_training_eval(cfg)
        self.device = eval_device(cfg.eval.device, cfg.trainer.accelerator)
        self._last_step = -1
        self._suite: tuple[ResolvedSuite, Path | None] | None = None
        self._validation: tuple[Any, int, Any] | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        """A stage trained from its first step drops the stage's points another training left in eval_curve.json (a
        fresh clone's committed curve is computed again, not trusted); a run resumed from a checkpoint keeps them, and
        one resumed at a point's step (killed while scoring it) scores that point now: the weights are those of that
        step."""
        self._last_step = trainer.global_step
        if trainer.global_step == 0 and trainer.is_global_zero:
            if dropped := drop_stage_points(self.cfg.layout.result(layout.EVAL_CURVE), self.stage):
                log.info(f"[{self.stage}] trained from its start: {dropped} points of another training dropped from "
                         "eval_curve.json")
        if trainer.global_step in self.steps:
            self._due(trainer, pl_module, trainer.global_step)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step == self._last_step:  # still accumulating gradients
            return
        self._last_step = step
        if step in self.steps:
            self._due(trainer, pl_module, step)

    def _due(self, trainer: pl.Trainer, pl_module: Any, step: int) -> None:
        if trainer.is_global_zero:
            self.point(pl_module.model, step, trainer.loggers)
        trainer.strategy.barrier("in-training evaluation")

    def _inputs(self) -> tuple[ResolvedSuite, Path | None, tuple[Any, int, Any] | None]:
        if self._suite is None:
            suite = resolve_during(self.cfg)
            self._suite = (suite, suite_inputs(suite, self.cfg.layout.curve_task_folders))
            tokens = self.cfg.eval.during_training.validation_tokens
            if tokens is not None:
                blocks = eval_blocks(self.data.shards[VALIDATION], self.context, tokens)
                self._validation = (blocks, self.context, token_byte_lengths(self.data.tokenizer))
        return (*self._suite, self._validation)

    def point(self, model: torch.nn.Module, step: int, loggers: list) -> list[dict[str, Any]]:
        """Score the model as it is now at ``step``, unless eval_curve.json has this point; RNG states restored. The
        points added."""
        run = self.cfg.layout
        path = run.result(layout.EVAL_CURVE)
        suite, tasks, validation = self._inputs()
        wanted = [*suite.tasks, *([VALIDATION] if validation is not None else [])]
        if has_point(curve_points(path), self.stage, step, wanted):
            log.info(f"[{self.stage}] step {step}: in eval_curve.json already")
            return []
        rng = _rng_state()
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        name = run.curve_point(self.stage, step).with_suffix(".model.tmp")
        try:
            with scratch_dir(name.with_name("." + name.name)) as folder:  # removed however scoring ends
                save_export(model, folder, self.cfg.model.vocab_size)
                self.data.tokenizer.save_pretrained(folder)
                rows = score_point(folder, run.model_name(self.stage), suite, tasks, self.evaluation, self.device,
                                   self.cfg.seed, run.curve_point(self.stage, step), validation)
        finally:
            _set_rng_state(rng)
            if cuda is not None:
                torch.cuda.set_rng_state_all(cuda)
        points = [{"stage": self.stage, "step": step, "tokens": step * self.axis.tokens_per_step,
                   "tokens_seen": self.axis.tokens_seen(step), **row, "source": self.source} for row in rows]
        add_points(path, run_metadata(self.cfg), points)
        for logger in loggers:
            logger.log_metrics({f"eval/{r['task']}/{r['metric']}": r["value"] for r in rows}, step)
        shown = ", ".join(f"{r['task']} {r['metric']} {r['value']:.4f}" for r in rows
                          if r["metric"] in ("acc", "loss", "bits_per_byte"))
        log.info(f"[{self.stage}] {self.source.replace('_', '-')} evaluation at step {step}: {shown}")
        return points


# ------------------------------------------------------------ the same points from kept checkpoints, after the run


def score_checkpoints(cfg: RecipeConfig, data: PreparedData) -> list[dict[str, Any]]:
    """`reproduce eval eval.checkpoints=[...]`: each selected checkpoint, verified, exported as the stage's export is
    and scored as in the loop (eval.during_training's suite, tasks, items and validation tokens); its points added to
    eval_curve.json, those already there skipped."""
    from transformers import AutoConfig, GPT2LMHeadModel

    from reproduce.core.arithmetic import stage_counts
    from reproduce.core.checksums import sidecar_problem
    from reproduce.model.gpt2 import pad_vocabulary

    added: list[dict[str, Any]] = []
    axes, before = {}, (0, 0)
    for name, stage in cfg.stages.items():
        counts = stage_counts(stage, len(data.shards["train"]), cfg.world_size)
        axes[name] = Axis(*before, counts.batch_tokens)
        before = (before[0] + counts.steps, before[1] + counts.tokens)
    for stage, path in selected_checkpoints(cfg):
        if problem := sidecar_problem(path):
            raise UserError(f"{path}: {problem}; it cannot be trusted, leave it out of eval.checkpoints")
        scorer = InTrainingEval(cfg, stage, cfg.stages[stage].context, axes[stage], set(), data, "checkpoint")
        model = GPT2LMHeadModel(AutoConfig.from_pretrained(cfg.layout.model(stage)))
        pad_vocabulary(model, cfg.model.pad_vocab_multiple)
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        model.load_state_dict({key.removeprefix("model."): value for key, value in state.items()})
        added += scorer.point(model, checkpoint_step(path), [])
    return added
