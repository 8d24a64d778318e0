"""The recipe's train step: every stage in order, resumed where it stopped, skipping stages finished before."""

from __future__ import annotations

import logging
import time
from typing import Any

from reproduce.config.schema import RecipeConfig
from reproduce.core import layout, records
from reproduce.core.arithmetic import stage_counts
from reproduce.core.checksums import sums_problem
from reproduce.core.meta import run_metadata
from reproduce.data.prepared_set import PreparedData, run_prepared
from reproduce.recipe.record import missing_output
from reproduce.train.checkpoint import checkpoints
from reproduce.train.distributed import is_rank_zero
from reproduce.train.model_card import write_model_card
from reproduce.train.stage import InitFrom, run_stage, warn_if_bf16_is_emulated
from reproduce.train.watch import check_interval

log = logging.getLogger("reproduce")


def wait_for_prepared_data(cfg: RecipeConfig, poll_s: float = 2.0) -> None:
    """On the other ranks of a run whose processes start together (torchrun, srun): wait for rank zero's data.

    Rank zero's failure ends the whole group (torchrun and srun --kill-on-bad-exit stop every process), so the wait
    has no time limit of its own.
    """
    waited = 0.0
    while missing_output(cfg, "prepare") is not None:
        if waited % 60 < poll_s:
            log.warning(f"[data] waiting for rank zero to prepare the data ({cfg.layout.prepared_pointer})")
        time.sleep(poll_s)
        waited += poll_s


def _finished_stages(cfg: RecipeConfig) -> dict[str, dict[str, Any]]:
    """Stages of this config trained before (in train.json, with an export that matches its SHA256SUMS), up to the
    first one that is not."""
    run = cfg.layout
    train_json, curves_json = run.result(layout.TRAIN), run.result(layout.CURVES)
    if cfg.resume != "auto" or not (train_json.is_file() and curves_json.is_file()):
        return {}
    trained, curves = records.train.read(train_json)["stages"], records.curves.read(curves_json)
    finished = {}
    for name in cfg.stages:
        if name not in trained:
            break
        if problem := sums_problem(run.model(name)):
            if checkpoints(run.checkpoints(name)):
                log.warning(f"[{name}] warning: the export {run.model(name)} is not intact ({problem}); "
                            "exporting it again from the stage's last checkpoint")
            else:  # results without the run's folder (a fresh clone's committed results): nothing was lost here
                log.info(f"[{name}] results of this config, but neither its export nor a checkpoint: training it")
            break
        finished[name] = {"record": trained[name],
                          **{kind: [p for p in curves[kind] if p["stage"] == name] for kind in ("train", "validation")}}
    return finished


def train(cfg: RecipeConfig, data: PreparedData | None = None) -> dict[str, dict[str, Any]]:
    """Every stage in order, skipping those finished before; train.json and curves.json after each one."""
    data = data or run_prepared(cfg)
    warn_if_bf16_is_emulated(cfg.trainer)
    rank_zero = is_rank_zero(cfg.trainer.devices)
    run = cfg.layout
    check_interval(cfg, len(data.shards["train"]))  # before any training; the pre-flight checks it when it can
    done = _finished_stages(cfg)
    steps_before = tokens_before = 0  # the trackers' run axis: stage 2 continues stage 1's steps and tokens
    for name, stage in cfg.stages.items():
        counts = stage_counts(stage, len(data.shards["train"]), cfg.world_size)
        steps_before, tokens_before = steps_before + counts.steps, tokens_before + counts.tokens
        if name in done:
            log.info(f"[{name}] trained before for this config: {run.model(name)} (resume=never trains it again)")
            continue
        result = run_stage(name, stage, cfg, data, _init_from(cfg, name), steps_before - counts.steps,
                           tokens_before - counts.tokens)
        done[name] = {"record": result.record(), "train": result.train_curve, "validation": result.validation_curve}
        if not rank_zero:
            continue
        meta = run_metadata(cfg)
        records.train.write(run.result(layout.TRAIN), {"meta": meta,
                                                        "stages": {n: s["record"] for n, s in done.items()}})
        records.curves.write(run.result(layout.CURVES), {"meta": meta, **{
            kind: [p for s in done.values() for p in s[kind]] for kind in ("train", "validation")}})
        write_model_card(cfg, name)
    return done


def _init_from(cfg: RecipeConfig, name: str) -> InitFrom | None:
    """What a stage starts from: an earlier stage's export (with the context it trained at), a released checkpoint,
    or nothing (a fresh model)."""
    source = cfg.stages[name].init_from
    if source is None:
        return None
    if source in cfg.stages:
        return InitFrom(cfg.layout.model(source), cfg.stages[source].context)
    return InitFrom(source, None)
