"""Experiment trackers (conf/logger/): Lightning's own loggers (CSV, TensorBoard, W&B, MLflow), built so that a run's
stages and every resumed launch write one continuous tracker run.

- One x-axis over the whole run: a stage's optimizer steps continue the earlier stages' (the tracker's step), and
  every record carries ``tokens_seen``, the training tokens of the run so far.
- One tracker run per run: W&B's run id and MLflow's run id are kept in ``runs/<run>/trackers.json`` and reused by
  every later stage, launch and the eval step; TensorBoard writes every launch into ``runs/<run>/tensorboard/``.
- No step twice: ``trackers.json`` also holds, per tracker and metric, the last step logged (written after the
  tracker has it); a launch resumed from an earlier checkpoint does not log those steps again (training is
  deterministic: they would be the same values). The CSV log keeps a file per launch, as before.
- Offline first: W&B offline and MLflow's file store under ``runs/<run>/``; no credential is ever written.
- Only rank zero logs (Lightning's loggers, and this module's state file).
"""

from __future__ import annotations

import dataclasses
import os
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import CSVLogger, Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_only

from reproduce.config.schema import RecipeConfig, TrackerConfig
from reproduce.core.io import make_dirs, read_json, write_json
from reproduce.core.layout import TRACKER_STATE
from reproduce.core.meta import git
from reproduce.train.watch import tracker_dir

# stage 2 (and the eval step) continue stage 1's W&B run on purpose
warnings.filterwarnings("ignore", message="There is a wandb run already in progress")

@dataclass(frozen=True)
class Axis:
    """A stage on the run's axis: the optimizer steps and tokens of the stages before it, and its tokens per step."""

    steps_before: int = 0
    tokens_before: int = 0
    tokens_per_step: int = 0

    def run_step(self, step: int) -> int:
        return self.steps_before + step

    def tokens_seen(self, step: int) -> int:
        return self.tokens_before + step * self.tokens_per_step


class TrackerState:
    """runs/<run>/trackers.json: the tracker runs' ids, whether the hyperparameters were logged, and the last step
    each tracker logged of each metric (``earlier``: as this launch found it)."""

    def __init__(self, path: Path):
        self.path = path
        found = read_json(path) if path.is_file() else {}
        self.ids: dict[str, str] = dict(found.get("ids", {}))
        self.logged: dict[str, dict[str, int]] = {k: dict(v) for k, v in found.get("logged", {}).items()}
        self.hparams: list[str] = list(found.get("hparams", []))
        self.earlier = {k: dict(v) for k, v in self.logged.items()}

    def fresh(self, kind: str, metric: str, step: int) -> bool:
        return step > self.earlier.get(kind, {}).get(metric, -1)

    @rank_zero_only
    def save(self) -> None:
        write_json(self.path, {"ids": self.ids, "logged": self.logged, "hparams": self.hparams})


class RunAxis:
    """Mixed into a Lightning logger class: logs at the run's step with ``tokens_seen``, and skips what an earlier
    launch logged."""

    kind: str
    axis: Axis
    state: TrackerState | None

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        run_step = self.axis.run_step(step or 0)
        if self.state is not None:
            metrics = {k: v for k, v in metrics.items() if self.state.fresh(self.kind, k, run_step)}
        if not metrics:
            return
        super().log_metrics({**metrics, "tokens_seen": self.axis.tokens_seen(step or 0)}, run_step)
        if self.state is not None:
            if isinstance(self, TensorBoardLogger):
                self.experiment.flush()  # on disk before the state says so
            logged = self.state.logged.setdefault(self.kind, {})
            logged.update({k: max(run_step, logged.get(k, -1)) for k in metrics})
            self.state.save()


def _on_axis(cls: type[Logger], kind: str, axis: Axis, state: TrackerState | None, **kwargs: Any) -> Logger:
    logger = type(f"Run{cls.__name__}", (RunAxis, cls), {})(**kwargs)
    logger.kind, logger.axis, logger.state = kind, axis, state
    return logger


def hyperparameters(cfg: RecipeConfig) -> dict[str, Any]:
    """The composed config (without the trackers' own settings) and the run's tags."""
    plain = dataclasses.asdict(cfg)
    plain.pop("logger", None)
    return {**plain, "git_commit": git("rev-parse", "HEAD")}


def tags(cfg: RecipeConfig) -> dict[str, str]:
    return {"run_name": cfg.run_name, "seed": str(cfg.seed), "git_commit": git("rev-parse", "HEAD") or "unknown"}


def build_loggers(cfg: RecipeConfig, axis: Axis, csv_name: str | None = None, csv_version: str | None = None,
                  ) -> list[Logger]:
    """Lightning loggers for the configured trackers on ``axis``; the CSV log only with a ``csv_name`` (a stage)."""
    state = TrackerState(cfg.layout.work / TRACKER_STATE)
    loggers: list[Logger] = []
    for kind, tracker in cfg.logger.items():
        folder = tracker_dir(cfg, kind)
        if kind == "csv":
            if csv_name is not None:  # a file per launch: it keeps what it flushed when killed
                loggers.append(_on_axis(CSVLogger, kind, axis, None, save_dir=folder, name=csv_name,
                                        version=csv_version, flush_logs_every_n_steps=10))
            continue
        loggers.append(_tracker(kind, tracker, folder, cfg, axis, state))
    fresh = [lg for lg in loggers if lg.kind == "csv" or lg.kind not in state.hparams]
    for logger in fresh:
        logger.log_hyperparams(hyperparameters(cfg))
        if logger.kind != "csv":
            state.hparams.append(logger.kind)
    if fresh:
        state.save()
    return loggers


def _tracker(kind: str, tracker: TrackerConfig, folder: Path, cfg: RecipeConfig, axis: Axis,
             state: TrackerState) -> Logger:
    if kind == "tensorboard":
        return _on_axis(TensorBoardLogger, kind, axis, state, save_dir=folder, name="", version="",
                        default_hp_metric=False)
    if kind == "wandb":
        if not cfg.verbose:
            os.environ.setdefault("WANDB_SILENT", "true")  # its banner and sync hints; the run's folder is logged
        run_id = state.ids.setdefault("wandb", uuid.uuid4().hex[:8])
        state.save()
        make_dirs(folder)
        return _on_axis(WandbLogger, kind, axis, state, name=cfg.run_name, save_dir=str(folder), id=run_id,
                        project=tracker.project, entity=tracker.entity, offline=tracker.offline, resume="allow",
                        tags=[f"{k}={v}" for k, v in tags(cfg).items()])
    uri = tracker.tracking_uri or folder.resolve().as_uri()
    if tracker.tracking_uri is None:  # MLflow 3 keeps its file store (maintenance mode) behind this switch
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    logger = _on_axis(MLFlowLogger, kind, axis, state, experiment_name=tracker.project, run_name=cfg.run_name,
                      tracking_uri=uri, tags=tags(cfg), run_id=state.ids.get("mlflow"))
    if "mlflow" not in state.ids and rank_zero_only.rank == 0:
        state.ids["mlflow"] = logger.run_id  # creates the run
        state.save()
    return logger


def log_final(cfg: RecipeConfig, steps: int, tokens: int, metrics: dict[str, float]) -> None:
    """The eval step's metrics on the trackers (not the CSV log), at the run's last step."""
    if not any(kind != "csv" for kind in cfg.logger):
        return
    for logger in build_loggers(cfg, Axis(steps, tokens, 0)):
        logger.log_metrics(metrics, 0)
        logger.finalize("success")
