"""What watching a run needs checked before any work, without the training libraries (the pre-flight imports it):
the trackers of conf/logger/ (reproduce/train/trackers.py builds them) and the benchmarks during training and over
kept checkpoints (reproduce/train/in_training_eval.py scores them)."""

from __future__ import annotations

import dataclasses
import importlib.util
import netrc
import os
from pathlib import Path

from reproduce.config.schema import EvalConfig, RecipeConfig
from reproduce.core.arithmetic import stage_counts
from reproduce.core.errors import UserError
from reproduce.data.manifest import make_resolver
from reproduce.evaluate.suites import ResolvedSuite, hub_unreachable, load_suite, resolve_suite

KINDS = ("csv", "tensorboard", "wandb", "mlflow")  # the files of conf/logger/
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}  # tracker -> its module and extra
DEFAULT_DIRS = {"csv": "logs", "tensorboard": "tensorboard", "wandb": ".", "mlflow": "mlruns"}


def tracker_dir(cfg: RecipeConfig, kind: str) -> Path:
    """Where a tracker writes: its ``save_dir``, else its folder under runs/<run>/."""
    tracker = cfg.logger[kind]
    return Path(tracker.save_dir) if tracker.save_dir else cfg.layout.work / DEFAULT_DIRS[kind]


def wandb_credentials() -> bool:
    """Whether W&B online finds credentials of its own (WANDB_API_KEY, or `wandb login`'s netrc entry)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def check_trackers(cfg: RecipeConfig) -> None:
    """Before any work: each tracker is known, its package installed, W&B online has credentials, MLflow's tracking
    URI is given where the file store is not used. (The folders are checked writable by the pre-flight.)"""
    for kind, tracker in cfg.logger.items():
        if kind not in KINDS:
            raise UserError(f"logger.{kind}: no such tracker; choose from {', '.join(KINDS)} (conf/logger/), e.g. "
                            "logger=[csv,tensorboard]")
        package = PACKAGES.get(kind)
        if package and importlib.util.find_spec(package) is None:
            raise UserError(f"logger={kind}: the {package} package is not installed; install the extra with "
                            f"pip install 'reproduce[{kind}]', or leave {kind} out of logger")
        if kind == "wandb" and not tracker.offline and not wandb_credentials():
            raise UserError("logger.wandb.offline=false: no W&B credentials (WANDB_API_KEY or `wandb login`); log in "
                            "first, or keep logger.wandb.offline=true and `wandb sync` the run later")


def during_training_eval(cfg: RecipeConfig) -> EvalConfig:
    """The evaluation settings of the in-training points: the final evaluation's, with its suite, tasks and items."""
    during = cfg.eval.during_training
    return dataclasses.replace(cfg.eval, suite=during.suite, tasks=list(during.tasks), limit=during.limit)


def resolve_during(cfg: RecipeConfig) -> ResolvedSuite:
    """The in-training suite resolved (its tasks exist, it reads no network, its data is found and verified); one
    line naming the eval.during_training key otherwise."""
    during = cfg.eval.during_training
    try:
        suite = load_suite(during.suite)
    except UserError as exc:
        raise UserError(str(exc).replace("eval.suite=", "eval.during_training.suite=", 1)) from None
    unknown = [task for task in during.tasks if task not in suite.tasks]
    if unknown or not during.tasks:
        raise UserError(f"eval.during_training.tasks={list(during.tasks)}: {', '.join(unknown) or 'none'} not in suite "
                        f"{suite.name}; choose from {', '.join(suite.tasks)}")
    if suite.network and (why := hub_unreachable()):
        raise UserError(f"eval.during_training.suite={suite.name} reads its data from the Hugging Face Hub, which is "
                        f"offline here ({why}); choose an offline suite (ru_local)")
    return resolve_suite(during_training_eval(cfg), make_resolver(cfg.data))


def check_interval(cfg: RecipeConfig, train_tokens: int) -> None:
    """eval.during_training.every_tokens fits the run (the train split's ``train_tokens`` give its stages' tokens)."""
    every = cfg.eval.during_training.every_tokens
    if not cfg.eval.during_training.enabled or every is None:
        return
    total = sum(stage_counts(stage, train_tokens, cfg.world_size).tokens for stage in cfg.stages.values())
    if every > total:
        raise UserError(f"eval.during_training.every_tokens={every}: longer than the run ({total} training tokens); "
                        "lower it, or set it to null for points at checkpoints and stage ends only")


def point_steps(total: int, tokens_per_step: int, every_tokens: int | None, checkpoint_every: int | None) -> set[int]:
    """A stage's steps that get a point: every ``every_tokens`` tokens, each scheduled checkpoint, and its end."""
    steps = {total}
    for every in (None if every_tokens is None else max(1, every_tokens // tokens_per_step), checkpoint_every):
        if every:
            steps |= set(range(every, total + 1, every))
    return steps


def selected_checkpoints(cfg: RecipeConfig) -> list[tuple[str, Path]]:
    """The kept checkpoints ``eval.checkpoints`` selects: ``all``, a stage's name (each of its kept ones), or
    ``<stage>:<step>``; one line for a selection that matches none."""
    from reproduce.train.checkpoint import checkpoint_step, checkpoints  # torch: only when checkpoints are scored

    found = [(stage, path) for stage in cfg.stages for path in checkpoints(cfg.layout.checkpoints(stage))]
    chosen = []
    for item in cfg.eval.checkpoints or []:
        match = [(s, p) for s, p in found
                 if item in ("all", s) or item == f"{s}:{checkpoint_step(p)}"]
        if not match:
            kept = ", ".join(f"{s}:{checkpoint_step(p)}" for s, p in found) or "none"
            raise UserError(f"eval.checkpoints: {item!r} matches no kept checkpoint of {cfg.layout.work} (kept: "
                            f"{kept}); choose all, a stage, or <stage>:<step>")
        chosen += [m for m in match if m not in chosen]
    return chosen
