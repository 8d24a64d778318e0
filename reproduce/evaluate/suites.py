"""The suites `reproduce eval suite=<name>` runs (reproduce/evaluate/tasks/suites.yaml), resolved once into a
``ResolvedSuite``: its settings checked, its task files checked, every data file it reads found and sha256-verified,
and the hashes its results record. The pre-flight, the runner, the PenLP scorer and the results read that object;
nothing resolves a suite's parts again."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from reproduce.core.errors import UserError
from reproduce.core.io import read_input, read_input_text
from reproduce.data.manifest import Entry, Resolver, read_manifest
from reproduce.evaluate.benchmarks import (
    MANIFEST,
    NOT_TASK_FILES,
    PENLP_SPLITS,
    TASKS_DIR,
    Benchmark,
    benchmark,
    tasks_dir_problem,
)

if TYPE_CHECKING:
    from reproduce.config.schema import EvalConfig

SUITES_FILE = TASKS_DIR / "suites.yaml"
HUB_HOST = ("huggingface.co", 443)
SCORERS = ("lm_eval", "penlp")  # lm-eval's TaskManager and HFLM; reproduce/evaluate/penlp.py


@dataclass(frozen=True)
class Suite:
    """A suite's line of suites.yaml, narrowed to the configured tasks (``load_suite``); ``resolve_suite`` resolves
    it."""

    name: str
    tasks: list[str]
    benchmarks: list[str]
    network: bool
    builtin: bool
    scorer: str = "lm_eval"
    shots: tuple[int, ...] | None = None  # the numbers of demonstrations its protocol defines (None: any)


def load_suite(name: str, only: list[str] | None = None, num_fewshot: int | None = None,
               limit: int | None = None) -> Suite:
    """A suite of reproduce/evaluate/tasks/suites.yaml, narrowed to ``only`` (some of its tasks, or none) when given,
    with the settings it cannot take refused: a number of demonstrations (``num_fewshot``; None is each task's own)
    outside its ``shots``, and demonstrations or a ``limit`` of items for a PenLP suite (its threshold needs whole
    splits)."""
    if problem := tasks_dir_problem():
        raise UserError(problem)
    try:
        suites = yaml.safe_load(read_input_text(SUITES_FILE))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UserError(f"{SUITES_FILE}: unreadable ({' '.join(str(exc).split())[:160]}); fix the file") from None
    if not isinstance(suites, dict) or not all(isinstance(e, dict) and "tasks" in e for e in suites.values()):
        raise UserError(f"{SUITES_FILE}: not a mapping of suites, each with its tasks; fix the file")
    if name not in suites:
        raise UserError(f"eval.suite={name!r}: no such suite; choose one of {', '.join(suites)}")
    entry = suites[name]
    shots = tuple(entry["shots"]) if "shots" in entry else None
    suite = Suite(name, list(entry["tasks"]), list(entry.get("benchmarks", [])), bool(entry.get("network")),
                  bool(entry.get("builtin")), entry.get("scorer", "lm_eval"), shots)
    if suite.scorer not in SCORERS or suite.scorer == "penlp" and len(suite.benchmarks) != 1:
        raise UserError(f"{SUITES_FILE}: suite {name} has scorer {suite.scorer!r} and benchmarks {suite.benchmarks}; "
                        f"choose one of {', '.join(SCORERS)} (penlp: one benchmark)")
    if shots is not None and num_fewshot is not None and num_fewshot not in shots:
        raise UserError(f"eval.num_fewshot={num_fewshot}: suite {name} defines k = {', '.join(map(str, shots))} "
                        "demonstrations; choose one of them, or leave it unset for zero-shot")
    if suite.scorer == "penlp" and (num_fewshot or limit is not None):
        key, value = ("eval.num_fewshot", num_fewshot) if num_fewshot else ("eval.limit", limit)
        raise UserError(f"{key}={value}: suite {name} scores whole splits without demonstrations (its threshold is "
                        "chosen on all of train); leave it unset")
    if only is not None and not only:  # eval.tasks=[]: no task (perplexity only), so no data and no network
        return Suite(name, [], [], False, False, "lm_eval", suite.shots)
    if only is not None:
        unknown = [task for task in only if task not in suite.tasks]
        if unknown:
            raise UserError(f"eval.tasks={list(only)}: {', '.join(unknown)} not in suite {name}; choose from "
                            f"{', '.join(suite.tasks)}, or eval.tasks=[] for none")
        suite = Suite(name, list(only), suite.benchmarks, suite.network, suite.builtin, suite.scorer, suite.shots)
    return suite


@dataclass(frozen=True)
class DataFile:
    """A data file a suite reads: a row of its benchmark's manifest.tsv (``path``, ``sha256``), the local copy that
    matched that sha256, and its role (a ``PENLP_SPLITS`` key; None for an lm-eval task's data)."""

    path: str
    sha256: str
    local: Path
    role: str | None = None


@dataclass(frozen=True)
class ResolvedBenchmark:
    """A benchmark folder as a suite reads it: the files lm-eval reads, and the data files resolved."""

    name: str
    folder: Path
    task_files: tuple[Path, ...]
    data_files: tuple[DataFile, ...]

    def hashes(self) -> dict[str, str]:
        """sha256 of every file of the folder lm-eval may read (task files, templates, utils.py, README; not the
        manifest or benchmark.yaml), keyed by ``<benchmark>/<file>``, as they are before paths are filled in."""
        return {p.relative_to(self.folder.parent).as_posix(): hashlib.sha256(read_input(p)).hexdigest()
                for p in sorted(self.folder.rglob("*"))
                if p.is_file() and "__pycache__" not in p.parts and p.name not in NOT_TASK_FILES}


@dataclass(frozen=True)
class ResolvedSuite:
    """A suite resolved once (``resolve_suite``): what its scorer runs and reads, and what its results record."""

    name: str
    tasks: list[str]
    scorer: str  # one of SCORERS
    shots: tuple[int, ...] | None
    network: bool  # reads its data from the Hugging Face Hub (reachable when it was resolved)
    builtin: bool  # lm-eval's own tasks
    benchmarks: tuple[ResolvedBenchmark, ...]
    task_file_hashes: dict[str, str]  # the results' ``task_files``: each folder file's and data file's sha256

    @property
    def data_files(self) -> list[DataFile]:
        return [item for found in self.benchmarks for item in found.data_files]

    @property
    def penlp_files(self) -> dict[str, Path]:
        """A PenLP suite's files: each ``PENLP_SPLITS`` key -> its verified local file."""
        return {item.role: item.local for item in self.data_files if item.role is not None}


def resolve_suite(evaluation: EvalConfig, resolver: Resolver) -> ResolvedSuite:
    """The suite ``eval.suite`` names, resolved once, or one line on its first problem: the suite exists; its tasks,
    demonstrations and limit are allowed (``load_suite``); the Hub is reachable when it reads from there; its task
    files are valid; and every data file it reads is found and matches its sha256 (cache, mirror or download)."""
    suite = load_suite(evaluation.suite, evaluation.tasks, evaluation.num_fewshot, evaluation.limit)
    if suite.network and (why := hub_unreachable()):
        raise UserError(f"eval.suite={suite.name} reads its data from the Hugging Face Hub, which is offline here "
                        f"({why}); go online, or use eval.suite=ru_local (the mirrored data)")
    penlp = suite.name if suite.scorer == "penlp" else None
    found = tuple(resolve_benchmark(name, resolver.resolve, penlp) for name in suite.benchmarks)
    hashes = {key: value for item in found for key, value in item.hashes().items()}
    hashes |= {f"mirror:{data.path}": data.sha256 for item in found for data in item.data_files}
    return ResolvedSuite(suite.name, suite.tasks, suite.scorer, suite.shots, suite.network, suite.builtin, found,
                         hashes)


def resolve_benchmark(name: str, resolve: Callable[[Entry], Path], penlp_suite: str | None = None) -> ResolvedBenchmark:
    """A benchmark folder with the data files a suite reads from it resolved by ``resolve`` (a manifest row -> its
    checked local file): the ``mirror:`` paths its task files name (each task file checked), or, for the PenLP suite
    ``penlp_suite``, the files of benchmark.yaml's ``penlp:`` section. A file its manifest lists but no task reads is
    not resolved (and need not be reachable)."""
    found = benchmark(name)
    wanted = ([(path, None) for path in found.data_names()] if penlp_suite is None
              else [(path, role) for role, path in found.penlp_files().items()])
    rows: dict[str, Entry] | None = None
    files = []
    for path, role in wanted:
        try:
            rows = rows if rows is not None else manifest_rows(found, path)
            if path not in rows:
                raise UserError(f"{found.folder}: mirror:{path} is not a row of {found.manifest}")
            files.append(DataFile(path, rows[path].sha256, resolve(rows[path]), role))
        except UserError as exc:
            if role is None:
                raise
            raise UserError(f"eval.suite={penlp_suite} needs {PENLP_SPLITS[role]}: {exc}") from None
    return ResolvedBenchmark(name, found.folder, tuple(found.task_files()), tuple(files))


def manifest_rows(found: Benchmark, path: str) -> dict[str, Entry]:
    """The rows of a benchmark folder's manifest.tsv by path; one line naming ``mirror:<path>`` where it has none."""
    manifest = found.manifest
    if manifest is None:
        raise UserError(f"{found.folder}: its task files name mirror:{path}, and the folder has no "
                        f"{MANIFEST}; add one (path, sha256, url)")
    return {entry.path: entry for entry in read_manifest(manifest)}


def hub_unreachable() -> str | None:
    """Why the Hugging Face Hub cannot be reached (offline variables, or no connection), or None."""
    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(variable, "").upper() in ("1", "ON", "YES", "TRUE"):
            return f"{variable} is set"
    try:
        socket.create_connection(HUB_HOST, timeout=3).close()
    except OSError as exc:
        return f"huggingface.co cannot be reached ({type(exc).__name__})"
    return None
