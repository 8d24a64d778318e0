"""The suites `reproduce eval suite=<name>` runs (reproduce/evaluate/tasks/suites.yaml), the data files they read,
and whether their data can be reached."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from reproduce.data.manifest import Resolver, read_manifest
from reproduce.errors import UserError
from reproduce.evaluate.benchmarks import MANIFEST, TASKS_DIR, Benchmark, benchmark
from reproduce.evaluate.lm_eval_tasks import data_names

SUITES_FILE = TASKS_DIR / "suites.yaml"
HUB_HOST = ("huggingface.co", 443)
SCORERS = ("lm_eval", "penlp")  # lm-eval's TaskManager and HFLM; reproduce/evaluate/penlp.py


@dataclass(frozen=True)
class Suite:
    name: str
    tasks: list[str]
    benchmarks: list[str]
    network: bool
    builtin: bool
    scorer: str = "lm_eval"
    shots: tuple[int, ...] | None = None  # the numbers of demonstrations its protocol defines (None: any)


@dataclass(frozen=True)
class SuiteFile:
    """A data file a suite reads: a path of its benchmark's manifest.tsv, and its role (a ``PENLP_SPLITS`` key; None
    for an lm-eval task's data)."""

    benchmark: str
    path: str
    role: str | None = None


def load_suite(name: str, only: list[str] | None = None, num_fewshot: int | None = None,
               limit: int | None = None) -> Suite:
    """A suite of reproduce/evaluate/tasks/suites.yaml, narrowed to ``only`` (some of its tasks, or none) when given,
    with the settings it cannot take refused: a number of demonstrations (``num_fewshot``; None is each task's own)
    outside its ``shots``, and demonstrations or a ``limit`` of items for a PenLP suite (its threshold needs whole
    splits)."""
    suites = yaml.safe_load(SUITES_FILE.read_text(encoding="utf-8"))
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


def suite_files(suite: Suite) -> list[SuiteFile]:
    """The manifest files a suite reads: the ``mirror:`` paths of its benchmarks' task files (lm-eval), or the files
    of their benchmark.yaml ``penlp:`` section, each with its role. A file a benchmark's manifest lists but no task
    of the suite reads is not among them (and need not be reachable)."""
    if suite.scorer == "penlp":
        return [SuiteFile(name, path, split) for name in suite.benchmarks
                for split, path in Benchmark(name).penlp_files().items()]
    return [SuiteFile(name, path) for name in suite.benchmarks for path in data_names(name)]


def manifest_resolver(resolver: Resolver) -> Callable[[str, str], Path]:
    """``mirror:<path>`` of a benchmark -> the local file of that row of its folder's manifest.tsv."""
    def resolve(name: str, path: str) -> Path:
        found = benchmark(name)
        if found.manifest is None:
            raise UserError(f"{found.folder}: its task files name mirror:{path}, and the folder has no "
                            f"{MANIFEST}; add one (path, sha256, url)")
        entries = {entry.path: entry for entry in read_manifest(found.manifest)}
        if path not in entries:
            raise UserError(f"{found.folder}: mirror:{path} is not a row of {found.manifest}")
        return resolver.resolve(entries[path])
    return resolve


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


def check_suite(suite: Suite) -> None:
    """A suite whose data is on the Hub fails at once offline, with the offline alternative."""
    if suite.network and (why := hub_unreachable()):
        raise UserError(f"eval.suite={suite.name} reads its data from the Hugging Face Hub, which is offline here "
                        f"({why}); go online, or use eval.suite=ru_local (the mirrored data)")
