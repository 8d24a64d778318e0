"""The step table: the recipe's steps in order, each with the config keys it reads, the steps it needs and what it
writes.

Everything that knows about steps reads this table: the command table (reproduce/commands/table.py: one command per
step), the pre-flight (reproduce/commands/preflight.py: what an earlier step must have left), the record of which
config made the results and the overwrite/resume logic (reproduce/recipe/record.py), and the recipe itself
(reproduce/commands/pipeline.py ``run``, in this order). Adding a step is one row here, its function in a module of
reproduce/commands/ named in pipeline.py's ``STEP_FUNCTIONS``, and its command's row in reproduce/commands/table.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from reproduce.core import layout

if TYPE_CHECKING:
    from reproduce.config.schema import RecipeConfig


@dataclass(frozen=True)
class Step:
    name: str
    summary: str  # the command's line in `reproduce --help`
    keys: tuple[str, ...]  # the config keys it reads: its results are valid only for these values (config.yaml)
    needs: tuple[str, ...]  # the steps whose outputs it reads, directly or not
    results: tuple[str, ...]  # what it writes under results/<run>/ (globs)
    artifacts: tuple[str, ...]  # what it writes under runs/<run>/
    groups: tuple[str, ...]  # the config groups it reads (its command's --help lists their options)
    derived: tuple[str, ...] = ()  # results/<run>/ files other commands derive from its results (gone with them)


STEPS = (
    Step("prepare", "sources -> split by whole documents -> tokenizer -> token shards in prepared/<hash>/ (reused "
         "when the same); results/<run>/data.json", keys=("data", "tokenizer"), needs=(), results=(layout.DATA,),
         artifacts=(layout.PREPARED_POINTER,), groups=("data", "tokenizer", "experiment")),
    Step("contamination", "n-gram overlap of the evaluation sets and test documents with the train shards; "
         "results/<run>/contamination.json", keys=("contamination",), needs=("prepare",),
         results=(layout.CONTAMINATION,), artifacts=(), groups=("data", "tokenizer", "experiment")),
    Step("train", "train every stage on the prepared data; export the models; train.json, curves.json",
         keys=("seed", "model", "stages", "trainer"), needs=("prepare",), results=(layout.TRAIN, layout.CURVES),
         artifacts=(layout.MODELS, layout.CHECKPOINTS, layout.LOGS, layout.EVAL_CURVE_DIR, layout.TRACKER_STATE),
         groups=("model", "stage", "trainer", "experiment"), derived=(layout.EVAL_CURVE,)),
    Step("eval", "model=<hub id | HF dir | run dir> suite=<name>: lm-eval suite and perplexity; results/eval/<model>/ "
         "(without model=: the run's own eval step, summary.json)", keys=("eval",), needs=("prepare", "train"),
         results=(layout.SUMMARY, layout.LOSS_BY_POSITION, layout.LM_EVAL, layout.SAMPLES),
         artifacts=(layout.TASK_FOLDERS,), groups=("eval", "experiment"),
         derived=(layout.VERDICT, layout.SEED_SPREAD)),
)
STEP = {step.name: step for step in STEPS}
NAMES = tuple(STEP)
# Keys that change where inputs come from or what is printed, never a result.
NOT_RESULT_KEYS = ("data.mirror", "data.cache_dir", "data.allow_download", "data.workers", "data.print_every_s",
                   "data.shard_tokens", "trainer.enable_progress_bar",
                   "stages.*.print_every_s", "stages.*.checkpoint_every_tokens", "stages.*.keep_checkpoints",
                   "eval.model", "eval.name", "eval.perplexity.texts", "eval.perplexity.stride", "eval.generate.prompt",
                   "eval.during_training.*", "eval.checkpoints")  # watching a run: eval_curve.json only


def step_keys(cfg: RecipeConfig, step: str) -> tuple[str, ...]:
    """The config keys a step reads; prepare reads the contamination settings too when it drops documents by them."""
    if step == "prepare" and cfg.contamination.drop:
        return (*STEP[step].keys, "contamination")
    return STEP[step].keys


def downstream(steps: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``steps`` and every step that reads their outputs, in the table's order."""
    found = set(steps)
    for step in STEPS:  # the table lists every step after the steps it needs
        if any(need in found for need in step.needs):
            found.add(step.name)
    return tuple(name for name in NAMES if name in found)


def earlier_steps(steps: tuple[str, ...]) -> tuple[str, ...]:
    """The steps that ``steps`` need and do not run themselves: their outputs must exist already."""
    return tuple(s.name for s in STEPS if s.name not in steps and any(s.name in STEP[n].needs for n in steps))
