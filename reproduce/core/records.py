"""One record per results file: where it lies under ``results/``, its fields with their types, its atomic write and
its checked read. Every module that writes or reads a results file goes through its record here, so a field is
declared once, a file is never half-written, and a wrong type is one line naming the file and the field, never a
traceback in a table.

A schema is a type (``NUMBER``, ``INTEGER``, ``TEXT``, ``ANY``), a list ``[schema]`` of items, or a dict of fields:
a key ending in ``?`` is optional (absent or null), ``"*"`` stands for every other key. Fields a schema does not name
are kept and not checked (lm-eval's own output, for one).
"""

from __future__ import annotations

import fnmatch
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reproduce.core import layout
from reproduce.core.errors import UserError
from reproduce.core.io import open_input, write_json

MAX_BYTES = 256 << 20  # a results file larger than this is not one of ours


class Kind:
    def __init__(self, name: str, *types: type, nullable: bool = False) -> None:
        self.name, self.types, self.nullable = name, types, nullable

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        return not self.types or (isinstance(value, self.types) and not isinstance(value, bool))


NUMBER = Kind("a number", int, float)
INTEGER = Kind("an integer", int)
TEXT = Kind("a string", str)
ANY = Kind("anything", nullable=True)
NUMBER_OR_NULL = Kind("a number or null", int, float, nullable=True)
INTEGER_OR_NULL = Kind("an integer or null", int, nullable=True)
TEXT_OR_NULL = Kind("a string or null", str, nullable=True)

META = {"package": TEXT, "torch": TEXT, "transformers": TEXT, "lm_eval": TEXT_OR_NULL, "git_commit": TEXT_OR_NULL}
METRICS = {"*": {"*": NUMBER}}  # task -> metric -> value
PERPLEXITY_ROW = {"stage": TEXT, "context": INTEGER, "tokens": INTEGER, "perplexity": NUMBER, "bits_per_byte": NUMBER,
                  "ratio_to_unigram": NUMBER}
STAGE = {"parameters": INTEGER, "tokens": INTEGER, "steps": INTEGER, "context?": INTEGER, "seconds?": NUMBER,
         "device?": TEXT, "devices?": INTEGER, "mfu?": NUMBER_OR_NULL}
POINT = {"stage": TEXT, "step": INTEGER, "tokens": INTEGER, "loss": NUMBER}
SPLIT = {"documents": INTEGER, "characters": INTEGER, "tokens": INTEGER, "shards": INTEGER, "works": [TEXT]}
VERDICT_ROW = {"reference": NUMBER_OR_NULL, "value": NUMBER_OR_NULL, "difference": NUMBER_OR_NULL,
               "tolerance": NUMBER, "verdict": TEXT, "seed_mean": NUMBER_OR_NULL, "seed_std": NUMBER_OR_NULL,
               "runs": INTEGER}
ENVIRONMENTS = {"reference": {"*": ANY}, "run": {"*": ANY}, "commits": {"*": TEXT_OR_NULL}, "differs": [TEXT],
                "unrecorded": [TEXT], "expected": TEXT, "finding": TEXT}  # a verdict's two environments
MFU_RUN = {"model": TEXT, "context": INTEGER, "micro_batch?": INTEGER_OR_NULL, "path": TEXT, "variant?": [TEXT],
           "mfu?": NUMBER_OR_NULL, "tokens_per_second?": NUMBER_OR_NULL}


@dataclass(frozen=True)
class Record:
    """A results file: ``pattern`` is its name under ``results/`` (``*`` for a run or model folder), ``schema`` its
    fields, ``made_by`` the command that writes it again (named when a file is missing or malformed). What this
    package writes records what made it (``meta``: versions, commit, ...); a file made elsewhere is read without."""

    pattern: str
    schema: dict[str, Any]
    made_by: str = "make reproduce"
    meta: bool = True

    def write(self, path: str | Path, data: dict[str, Any]) -> None:
        """Check every declared field, then write atomically (temporary name, then rename)."""
        schema = {"meta": META, **self.schema} if self.meta else self.schema
        check_fields(Path(path), data, schema, made_by=self.made_by)
        write_json(path, data)

    def read(self, path: str | Path) -> Any:
        """The file's content, every declared field checked; one line if missing, malformed or of the wrong kind."""
        data = read_json_file(Path(path), self.made_by)
        self.check(Path(path), data)
        return data

    def check(self, where: Path, data: Any) -> None:
        check_fields(where, data, {"meta?": {"*": ANY}, **self.schema}, made_by=self.made_by)


def _run_file(name: str, schema: dict[str, Any]) -> Record:
    return Record(f"*/{name}", schema)


architectures = Record(layout.ARCHITECTURES, {"models": {"*": {
    "n_layer": INTEGER, "n_embd": INTEGER, "n_head": INTEGER, "n_positions": INTEGER, "vocab_size": INTEGER,
    "parameters": INTEGER}}}, "reproduce paper")
data = _run_file(layout.DATA, {"split": {"*": SPLIT}, "timings_s": {"*": NUMBER},
                               "tokenizer": {"kind": TEXT, "vocab_size": INTEGER}, "prepared": {"hash": TEXT}})
contamination = _run_file(layout.CONTAMINATION, {
    "n": INTEGER, "min_tokens?": INTEGER, "train_tokens": INTEGER,
    "sets": {"*": {"items": INTEGER, "checked": INTEGER, "contaminated": INTEGER, "share": NUMBER_OR_NULL,
                   "examples": [TEXT]}}})
train = _run_file(layout.TRAIN, {"stages": {"*": STAGE}})
curves = _run_file(layout.CURVES, {"train": [POINT], "validation": [POINT]})
summary = _run_file(layout.SUMMARY, {
    "run": TEXT, "perplexity": [PERPLEXITY_ROW], "unigram": {"tokens": INTEGER, "perplexity": NUMBER,
                                                           "bits_per_byte": NUMBER},
    "stages": {"*": STAGE}, "suite?": {"*": METRICS}, "suite_name?": TEXT,
    "rublimp?": {"*": {"mean": NUMBER, "per_phenomenon": {"*": NUMBER}}}, "timings_s?": {"*": NUMBER}})
loss_by_position = _run_file(layout.LOSS_BY_POSITION, {"windows": {"*": INTEGER}, "stages": {"*": {"*": [NUMBER]}}})
samples = _run_file(layout.SAMPLES, {"settings": {"*": ANY},
                                     "stages": {"*": [{"prompt": TEXT, "text": TEXT, "sample_index": INTEGER}]}})
verdict = Record(f"*/{layout.VERDICT}", {"run": TEXT, "reference": TEXT, "rule": TEXT,
                                         "seed_runs": [TEXT], "verdict": TEXT, "metrics": {"*": VERDICT_ROW},
                                         "environment": ENVIRONMENTS},
                 "reproduce compare")
seed_spread = Record(f"*/{layout.SEED_SPREAD}", {"runs": [TEXT], "sigmas": NUMBER, "metrics": {
    "*": {"mean": NUMBER, "std": NUMBER, "runs": INTEGER}}}, "reproduce compare")
eval_perplexity = Record(f"{layout.EVAL}/*/{layout.PERPLEXITY}", {
    "tokens": INTEGER, "perplexity": NUMBER, "bits_per_byte": NUMBER, "context": INTEGER, "stride": INTEGER,
    "parameters?": INTEGER_OR_NULL}, "reproduce eval")
eval_source = Record(f"{layout.EVAL}/*/{layout.SOURCE}", {"source": TEXT}, "reproduce eval", meta=False)
# A model's suite (results/eval/<model>/<suite>.json; other JSON files there need no metrics), and a run's stage's
# suite (its summary holds the metrics); both also keep lm-eval's own output, or the PenLP run's details.
eval_results = Record(f"{layout.EVAL}/*/*.json", {"metrics?": METRICS}, "reproduce eval")
suite_results = Record(f"*/{layout.LM_EVAL}", {"metrics": METRICS})
plan = Record(f"{layout.PLAN}/*.json", {
    "stages": {"*": {"batch_tokens": INTEGER, "steps": INTEGER, "tokens": INTEGER}},
    "config": {"stages": {"*": {"optim": {"*": ANY}}}},
    "devices": {"*": {"gpu_hours": NUMBER_OR_NULL, "stages": {"*": {"mfu": NUMBER, "mfu_source": TEXT,
                                                                   "gpu_hours": NUMBER_OR_NULL}}}},
    "published?": {"stages": [TEXT], "gpu_hours": NUMBER, "flops": NUMBER, "implied_mfu": NUMBER,
                   "implied_mfu_6nd": NUMBER}}, "reproduce plan")
train_throughput = Record(f"{layout.PERF}/train_throughput_*.json", {
    "machine": {"cpu": TEXT, "cpus": INTEGER}, "model": TEXT,
    "rows": [{"precision": TEXT, "package_tokens_per_s": NUMBER, "bare_loop_tokens_per_s": NUMBER}]},
    "bench/train_throughput.py", meta=False)
# benchmarks over training: one point per (stage, step, task, metric); tokens_seen counts every stage before it
CURVE_POINT = {"stage": TEXT, "step": INTEGER, "tokens": INTEGER, "tokens_seen": INTEGER, "task": TEXT,
               "metric": TEXT, "value": NUMBER, "n": INTEGER, "source": TEXT}
eval_curve = _run_file(layout.EVAL_CURVE, {"points": [CURVE_POINT]})
eval_curve_overhead = Record(f"{layout.PERF}/{layout.EVAL_CURVE}", {
    "machine": {"cpu": TEXT, "cpus": INTEGER}, "overhead": NUMBER, "floor": NUMBER, "seconds_with": NUMBER,
    "seconds_without": NUMBER, "rows": [{"stage": TEXT, "points": INTEGER, "ratio": NUMBER}]}, "bench/eval_curve.py")
gpu_mfu = Record(layout.GPU_MFU_FILES, {"device": TEXT, "runs": [MFU_RUN]}, "bench/gpu_mfu.py")
# The first pattern that matches a name counts: eval/*/perplexity.json before eval/*/*.json.
RECORDS = (architectures, data, contamination, train, curves, summary, loss_by_position, samples, verdict, seed_spread,
           eval_perplexity, eval_source, eval_results, suite_results, plan, train_throughput, gpu_mfu,
           eval_curve_overhead, eval_curve)  # perf/eval_curve.json (bench/eval_curve.py) before <run>/eval_curve.json


def record_of(name: str) -> Record | None:
    """The record of a results file named relative to results/ (``mini/summary.json``), or None."""
    return next((r for r in RECORDS if fnmatch.fnmatchcase(name, r.pattern)), None)


def top_level_tasks(tasks: Any) -> list[str]:
    """The tasks of a suite's metrics that are no subtask of another present one (``rublimp``, not ``rublimp_x``):
    what the verdict, the model card and the paper's tables and figures show."""
    return sorted(t for t in tasks if not any(t != g and t.startswith(g + "_") for g in tasks))


def read_json_file(path: Path, made_by: str = "make reproduce") -> Any:
    """A JSON file from outside this process: a regular file of at most ``MAX_BYTES``, valid UTF-8 JSON of bounded
    depth; anything else is one line naming the file."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise UserError(f"{path}: results file not found; run `{made_by}` first") from None
    except OSError as exc:
        raise UserError(f"{path}: unreadable ({exc.strerror}); fix its permissions or rerun `{made_by}`") from None
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{path}: not a regular file; replace it with the file `{made_by}` writes")
    if info.st_size > MAX_BYTES:
        raise UserError(f"{path}: {info.st_size:,} bytes, more than a results file holds ({MAX_BYTES:,}); restore it")
    try:
        with open_input(path, MAX_BYTES) as f:
            return json.loads(f.read(MAX_BYTES + 1).decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno}); rerun `{made_by}`") from None
    except RecursionError:
        raise UserError(f"{path}: nested too deeply to be a results file; rerun `{made_by}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: unreadable ({type(exc).__name__}); restore it or rerun `{made_by}`") from None


def check_fields(path: Path, data: Any, schema: Any, where: str = "", made_by: str = "make reproduce") -> None:
    """Raise one line naming ``path`` and the first field of ``data`` that ``schema`` does not accept."""
    if isinstance(schema, Kind):
        if not schema.accepts(data):
            _wrong(path, where, data, schema.name, made_by)
    elif isinstance(schema, list):
        if not isinstance(data, list):
            _wrong(path, where, data, "a list", made_by)
        for i, item in enumerate(data):
            check_fields(path, item, schema[0], f"{where}[{i}]", made_by)
    elif isinstance(schema, dict):
        if not isinstance(data, dict):
            _wrong(path, where, data, "an object", made_by)
        named = {key.rstrip("?") for key in schema if key != "*"}
        for key, sub in schema.items():
            if key == "*":
                for name, item in data.items():
                    if name not in named:
                        check_fields(path, item, sub, f"{where}.{name}" if where else str(name), made_by)
            elif key.rstrip("?") in data and not (key.endswith("?") and data[key.rstrip("?")] is None):
                field = key.rstrip("?")
                check_fields(path, data[field], sub, f"{where}.{field}" if where else field, made_by)
            elif not key.endswith("?"):
                raise UserError(f"{path}: no field {f'{where}.{key}' if where else key}; regenerate the file "
                                f"(`{made_by}`)")


def _wrong(path: Path, where: str, value: Any, expected: str, made_by: str) -> None:
    shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    raise UserError(f"{path}: field {where or '(the file)'} is {shown[:60]}, not {expected}; regenerate the file "
                    f"(`{made_by}`)")


GPU_MFU_SHAPE = ('{"device": "NVIDIA H200", "meta": {"precision": "bf16-mixed"}, "runs": [{"model": "rugpt3_large", '
                 '"context": 1024, "micro_batch": 8, "path": "package", "variant": [], "mfu": 0.5, '
                 '"tokens_per_second": 1e5}, ...]}')


@dataclass(frozen=True)
class MfuRun:
    """One configuration timed by bench/gpu_mfu.py: the package's training path or the bare loop."""

    model: str
    context: int
    micro_batch: int | None
    path: str  # package | bare
    variant: tuple[str, ...]  # overrides on top of the configured trainer (empty: as configured)
    mfu: float | None
    tokens_per_second: float | None


@dataclass(frozen=True)
class GpuMfu:
    device: str  # the card as torch names it
    precision: str | None
    runs: tuple[MfuRun, ...]


def read_gpu_mfu(path: Path) -> GpuMfu:
    """A results/perf/gpu_mfu*.json file (bench/gpu_mfu.py): its fields checked, MFU in (0, 1], rates positive."""
    try:
        found = gpu_mfu.read(path)
    except UserError as exc:
        raise UserError(f"{path}: not a GPU MFU file ({str(exc).removeprefix(f'{path}: ')}); expected "
                        f"{GPU_MFU_SHAPE}") from None
    runs = []
    for i, run in enumerate(found["runs"]):
        mfu, rate = run.get("mfu"), run.get("tokens_per_second")
        if mfu is not None and not 0 < mfu <= 1 or rate is not None and not rate > 0:
            raise UserError(f"{path}: runs[{i}] has mfu={mfu!r} (not in (0, 1]) or tokens_per_second={rate!r} (not "
                            "positive); fix it, or rerun bench/gpu_mfu.py")
        runs.append(MfuRun(run["model"], run["context"], run.get("micro_batch"), run["path"],
                           tuple(run.get("variant", [])), mfu, rate))
    precision = found.get("meta", {}).get("precision")
    return GpuMfu(found["device"], precision if isinstance(precision, str) else None, tuple(runs))
