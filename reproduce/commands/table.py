"""The command table: every command of the CLI, recipe step or not, as one row naming its config, its checks and its
function. The CLI (reproduce/cli.py) reads only this table: adding a command is a row here, its module and its YAML.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reproduce.commands import preflight
from reproduce.recipe.compare import keep_reference
from reproduce.recipe.publish import check_publish
from reproduce.recipe.steps import NAMES, STEP, STEPS


@dataclass(frozen=True)
class Lazy:
    """A function named by its module, imported when first called: commands that need no training libraries (plan,
    compare, paper) start in a second. tests/test_layering.py counts each ``Lazy`` as an import of its module."""

    module: str
    name: str

    def resolve(self) -> Callable[..., Any]:
        return getattr(importlib.import_module(self.module), self.name)


@dataclass(frozen=True)
class Command:
    name: str
    # conf/<config_name>.yaml: reproduce (the recipe) for every command whose settings are the recipe's; a file of
    # its own only where it holds settings of its own (plan, paper)
    config_name: str
    summary: str  # its line in `reproduce --help`
    groups: tuple[str, ...]  # the config groups it reads (its --help lists their options)
    check: Callable[[Any, Command], None]  # every check before any work: (config, this row); one UserError line
    run: Lazy  # the work: config -> result
    steps: tuple[str, ...] = ()  # the recipe steps it runs: a run folder with its lock, log and config record
    scores: Lazy | None = None  # with a model given (eval.model): scores it instead; no run folder
    libraries: bool = True  # loads the training libraries: their progress bars go off first (unless verbose)
    before_steps: Callable[[Any], None] | None = None  # on rank zero, before the steps' record is started
    # key=value shorthands typed after the command (free text is quoted for Hydra): for eval, `model=` names the model
    # to score, not the recipe's architecture
    short_keys: dict[str, str] = field(default_factory=dict)

    def scoring(self, cfg: Any) -> bool:
        """Whether this invocation scores a given model (``model=``) rather than running recipe steps."""
        return self.scores is not None and cfg.eval.model is not None

    def steps_run(self, cfg: Any) -> tuple[str, ...]:
        """The recipe steps this invocation runs and records (none where it scores a given model)."""
        return () if self.scoring(cfg) else self.steps

    def function(self, cfg: Any) -> Lazy:
        return self.scores if self.scoring(cfg) else self.run


def _step(name: str, run: Lazy, scores: Lazy | None = None, short_keys: dict[str, str] | None = None) -> Command:
    """The command that runs one recipe step, ``run`` (the step table's row gives its summary and groups)."""
    step = STEP[name]
    check = preflight.check_eval if scores is not None else preflight.check_steps
    return Command(name, "reproduce", step.summary, step.groups, check, run, (name,), scores,
                   short_keys=short_keys or {})


_RUN_GROUPS = tuple(dict.fromkeys(g for s in STEPS for g in s.groups if g != "experiment")) + ("paper", "experiment")

COMMANDS: dict[str, Command] = {command.name: command for command in (
    Command("run", "reproduce", "the whole recipe: " + ", ".join(NAMES) + ", then paper/ (the default command)",
            _RUN_GROUPS, preflight.check_steps, Lazy("reproduce.commands.pipeline", "run"), NAMES,
            before_steps=keep_reference),
    _step("prepare", Lazy("reproduce.commands.data_steps", "prepare")),  # a module a step: each loads what it needs
    _step("contamination", Lazy("reproduce.commands.data_steps", "contamination")),
    _step("train", Lazy("reproduce.commands.train_step", "train")),
    _step("eval", Lazy("reproduce.commands.eval_step", "evaluate"),
          Lazy("reproduce.commands.scoring", "evaluate_models"), {"model": "eval.model", "suite": "eval.suite"}),
    Command("generate", "reproduce", "model=<hub id | HF dir | run dir> prompt=<text>: sampled continuations",
            ("eval",),
            preflight.check_generate, Lazy("reproduce.commands.scoring", "generate"),
            short_keys={"model": "eval.model", "prompt": "eval.generate.prompt"}),
    Command("plan", "plan", "tokens, FLOPs, memory and GPU-days of the recipe, beside the published compute; "
            "results/plan/<run>.{json,md}", ("model", "stage", "trainer", "experiment"), preflight.check_plan,
            Lazy("reproduce.recipe.plan", "plan"), libraries=False),
    Command("publish", "reproduce", "model=<export dir> repo_id=<user/name>: the exported model with its model card to "
            "the Hugging Face Hub", (), lambda cfg, _: check_publish(cfg), Lazy("reproduce.recipe.publish", "publish"),
            libraries=False, short_keys={"model": "publish.model", "repo_id": "publish.repo_id"}),
    Command("compare", "reproduce", "reference=<results folder | git revision>: did the run reproduce? each headline "
            "metric within its seed spread; results/<run>/verdict.json", ("experiment",), preflight.check_compare,
            Lazy("reproduce.recipe.compare", "report_verdict"), libraries=False,
            short_keys={"reference": "compare.reference"}),
    Command("paper", "paper", "regenerate paper/ (tables, figures) from results/ for the runs in paper.runs",
            ("paper",), preflight.check_paper, Lazy("reproduce.paper.build", "paper_command"), libraries=False),
    Command("env", "reproduce", "this environment (Python, torch, transformers, ..., CPU, GPU, threads, precision), "
            "the package's version and commit, and every installed version that differs from the lock",
            ("trainer", "experiment"), lambda cfg, _: preflight.settle_precision(cfg),
            Lazy("reproduce.core.meta", "show_environment"), libraries=False),
)}
