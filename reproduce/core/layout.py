"""Where everything of a run lives: every path and file name under ``results/`` and ``runs/``, and the rules for the
names that come from input (run names, evaluation names, model-derived names).

Every path built from input is resolved and must lie under its root before anything is read or written there; a
name is plain (printable, no separator, no leading ``-`` or ``.``, at most ``MAX_NAME`` characters) and not the name
of another command's folder (``RESERVED``). pipeline, train, evaluate, plan and paper ask this module for paths
instead of joining them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from reproduce.core.errors import UserError
from reproduce.core.paths import SOURCE_ROOT

MAX_NAME = 100  # characters of a run or evaluation name: a folder name, with room for "-<stage>" suffixes
_PLAIN = re.compile(r"\w[\w.+=,@-]*")  # letters (any script), digits, _ . + = , @ -; sweeps name runs "lr0.001"

# results/ and runs/ hold, besides one folder per run, these entries of other commands: no run may take their names.
EVAL = "eval"  # results/eval/<name>/ (reproduce eval), runs/eval/lm_eval_tasks/<suite>/
PUBLISHED = "published"  # results/published/*.csv
PLAN = "plan"  # results/plan/<run>.{json,md}
PERF = "perf"  # results/perf/*.json (bench/)
MULTIRUN = "multirun"  # runs/multirun/ (Hydra sweeps)
ARCHITECTURES = "architectures.json"  # results/architectures.json (reproduce paper)
RESERVED = (EVAL, PUBLISHED, PLAN, PERF, MULTIRUN, ARCHITECTURES)

# Results files of a run (results/<run>/), by the step that writes them (reproduce/recipe/steps.py).
DATA = "data.json"
CONTAMINATION = "contamination.json"
TRAIN = "train.json"
CURVES = "curves.json"
SUMMARY = "summary.json"
LOSS_BY_POSITION = "loss_by_position.json"
SAMPLES = "samples.json"
LM_EVAL = "lm_eval_*.json"  # lm_eval_<suite>_<stage>.json
VERDICT = "verdict.json"  # the run against its reference (reproduce compare, and the end of reproduce)
SEED_SPREAD = "seed_spread.json"  # each headline metric's mean and spread over the reference and the seed runs
EVAL_CURVE = "eval_curve.json"  # benchmarks over training: in the loop, and over kept checkpoints (reproduce eval)
RECORD = "config.yaml"  # the values each step read (results/<run>/ and runs/<run>/)
PAPER_RUN_FILES = (SUMMARY, CURVES)  # what every run of paper.runs must have; the rest is optional
# Artifacts of a run (runs/<run>/).
PREPARED_POINTER = "prepared.json"
MODELS = "models"
CHECKPOINTS = "checkpoints"
LOGS = "logs"
TASK_FOLDERS = "lm_eval_tasks"
TRACKER_STATE = "trackers.json"  # the tracker runs' ids and last logged steps (reproduce/train/trackers.py)
EVAL_CURVE_DIR = "eval_curve"  # runs/<run>/eval_curve/: lm-eval's own output of each point of eval_curve.json
LOG_FILE = "reproduce.log"
REFERENCE = "reference"  # runs/<run>/reference/: the summary a recipe run had before it rewrote it
MODEL_CARD = "README.md"  # an export's model card (runs/<run>/models/<stage>/), rewritten as results come in
# Files of results/eval/<name>/ besides one <suite>.json per suite.
PERPLEXITY = "perplexity.json"
SOURCE = "source.json"  # results/eval/<name>/: the model scored there (two sources never share a folder)
GPU_MFU = f"{PERF}/gpu_mfu.json"  # bench/gpu_mfu.py; reproduce plan uses its measured MFU
GPU_MFU_FILES = f"{PERF}/gpu_mfu*.json"  # every GPU throughput file (the paper's throughput figure)


def check_name(key: str, name: str) -> str:
    """``name`` as a folder name: plain, bounded, not reserved; one line naming ``key`` otherwise."""
    problem = None
    if not isinstance(name, str) or not name:
        problem = "is empty"
    elif len(name) > MAX_NAME:
        problem = f"has {len(name)} characters, more than {MAX_NAME}"
    elif not _PLAIN.fullmatch(name):
        problem = "is not a plain folder name (letters, digits and _ . + = , @ -, starting with a letter or digit)"
    elif name in RESERVED:
        problem = f"is the folder of another command ({', '.join(RESERVED)} are reserved)"
    if problem:
        raise UserError(f"{key}={name!r}: {problem}; choose another name")
    return name


def under(key: str, root: Path, path: Path) -> Path:
    """``path`` resolved, if it lies under ``root`` (resolved: links followed); one line naming ``key`` otherwise."""
    resolved, top = Path(path).expanduser().resolve(), Path(root).expanduser().resolve()
    if resolved != top and top not in resolved.parents:
        raise UserError(f"{key}: {path} lies outside {root}; give a name, not a path")
    return resolved


@dataclass(frozen=True)
class RunLayout:
    """The folders and files of one run: ``results/<run>/`` (committed results) and ``runs/<run>/`` (artifacts)."""

    name: str
    results: Path
    work: Path

    @classmethod
    def of(cls, results_root: str | Path, runs_root: str | Path, name: str) -> RunLayout:
        check_name("run_name", name)
        return cls(name, Path(results_root) / name, Path(runs_root) / name)

    def result(self, file: str) -> Path:
        return self.results / file

    def lm_eval(self, suite: str, stage: str) -> Path:
        return self.results / f"lm_eval_{suite}_{stage}.json"

    @property
    def prepared_pointer(self) -> Path:
        return self.work / PREPARED_POINTER

    @property
    def models(self) -> Path:
        return self.work / MODELS

    def model(self, stage: str) -> Path:
        """The exported Hugging Face directory of a stage."""
        return self.work / MODELS / stage

    def checkpoints(self, stage: str) -> Path:
        return self.work / CHECKPOINTS / stage

    @property
    def logs(self) -> Path:
        return self.work / LOGS

    @property
    def task_folders(self) -> Path:
        return self.work / TASK_FOLDERS

    @property
    def curve_task_folders(self) -> Path:
        """The task folders the in-training evaluation writes (the train step's: the eval step's are its own)."""
        return self.work / EVAL_CURVE_DIR / TASK_FOLDERS

    def curve_point(self, stage: str, step: int) -> Path:
        """lm-eval's output of one point of eval_curve.json."""
        return self.work / EVAL_CURVE_DIR / f"{stage}-step-{step:09d}.json"

    @property
    def log_file(self) -> Path:
        return self.work / LOG_FILE

    def model_name(self, stage: str) -> str:
        """How evaluation names a stage's model: ``<run>-<stage>``."""
        return stage_model_name(self.name, stage)


def stage_model_name(run: str, stage: str) -> str:
    return f"{run}-{stage}"



@dataclass(frozen=True)
class EvalLayout:
    """``reproduce eval``'s folders: ``results/eval/<name>/`` per scored model, ``runs/eval/`` for its task folders."""

    results: Path
    work: Path

    @classmethod
    def of(cls, results_root: str | Path, runs_root: str | Path) -> EvalLayout:
        return cls(Path(results_root) / EVAL, Path(runs_root) / EVAL)

    def model(self, name: str) -> Path:
        """``results/eval/<name>/``, checked: a plain name that stays under results/eval/."""
        check_name("eval.name", name)
        return under("eval.name", self.results, self.results / name)

    def suite_file(self, name: str, suite: str, shots: int | None = None) -> Path:
        return self.model(name) / suite_file_name(suite, shots)

    def perplexity_file(self, name: str) -> Path:
        return self.model(name) / PERPLEXITY

    def source_file(self, name: str) -> Path:
        return self.model(name) / SOURCE

    def task_folders(self, suite: str) -> Path:
        return self.work / TASK_FOLDERS / suite


def suite_file_name(suite: str, shots: int | None = None) -> str:
    """A suite's results file in results/eval/<model>/: ``<suite>.json``, or ``<suite>_<k>shot.json`` for k > 0
    demonstrations (each k keeps its own file)."""
    return f"{suite}_{shots}shot.json" if shots else f"{suite}.json"


def published_file(results_root: str | Path, name: str) -> Path:
    """A published CSV: ``<paths.results>/published/<name>``, else the source checkout's ``results/published/<name>``
    (so that `reproduce plan` reads it from any results folder in a checkout); the first when neither exists."""
    path = Path(results_root) / PUBLISHED / name
    if not path.is_file() and SOURCE_ROOT is not None and (SOURCE_ROOT / "results" / PUBLISHED / name).is_file():
        return SOURCE_ROOT / "results" / PUBLISHED / name
    return path


def plan_files(results_root: str | Path, run: str) -> tuple[Path, Path]:
    """``results/plan/<run>.json`` and ``.md``."""
    folder = Path(results_root) / PLAN
    return folder / f"{run}.json", folder / f"{run}.md"
