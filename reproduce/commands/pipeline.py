"""``run``: the recipe's steps (reproduce/recipe/steps.py) chained in the step table's order, then the verdict and
the paper. Each step is also a command of its own, in its own module (data_steps, train_step, eval_step: a command
loads only the libraries its step needs); scoring any model lives in reproduce/commands/scoring.py.

Each step writes its results under results/<run_name>/ as soon as it finishes, so a failure late in a run
keeps everything that finished before it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from reproduce.commands.data_steps import contamination, prepare
from reproduce.commands.eval_step import evaluate
from reproduce.commands.train_step import train, wait_for_prepared_data
from reproduce.config.schema import RecipeConfig
from reproduce.paper.build import make_paper
from reproduce.recipe.compare import NoReference, judge, report_verdict
from reproduce.recipe.steps import STEPS
from reproduce.train.distributed import is_rank_zero

log = logging.getLogger("reproduce")


def run(cfg: RecipeConfig) -> None:
    """The whole recipe: every step of the step table in its order (prepare first: the others read its data), the
    verdict against the reference (written before paper/, which shows its seed spread; printed last), and paper/ when
    the run is one of ``paper.runs``. The other ranks of a multi-process run (started by Lightning once
    rank zero has prepared the data) only train."""
    started = time.perf_counter()
    if not is_rank_zero(cfg.trainer.devices):
        wait_for_prepared_data(cfg)
        train(cfg)
        return
    first, *later = STEPS
    data = STEP_FUNCTIONS[first.name](cfg)
    for step in later:
        STEP_FUNCTIONS[step.name](cfg, data)
    try:
        verdict, no_reference = judge(cfg), None  # before the paper, which shows the seed spread it writes
    except NoReference as exc:
        verdict, no_reference = None, exc
    if cfg.paper.includes(cfg.run_name):
        make_paper(cfg.paths, cfg.paper)
    else:
        log.info(f"[paper] not rebuilt: run {cfg.run_name!r} is not in paper.runs {cfg.paper.runs}; add it with "
                 f"`reproduce paper 'paper.runs=[{','.join([*cfg.paper.runs, cfg.run_name])}]'`")
    log.info(f"[done] {(time.perf_counter() - started) / 60:.1f} min; results in {cfg.layout.results}")
    if verdict is None:
        log.info(f"[verdict] none: {no_reference}")
    else:
        report_verdict(cfg, verdict)  # raises Differs (exit code 3) when a metric is outside its seed spread


# The function of each step of the step table (reproduce/recipe/steps.py): (cfg, prepared data or None) -> its result.
STEP_FUNCTIONS: dict[str, Callable[..., Any]] = {"prepare": prepare, "contamination": contamination, "train": train,
                                                 "eval": evaluate}
