"""The benchmark folders (reproduce/evaluate/tasks/<benchmark>/): each one holds everything the package knows of it.

A folder is laid out as lm-eval's own task folders (task YAMLs, templates, ``utils.py``, a README with source,
licence, prompt and metric), plus:

- ``manifest.tsv``: its data files (path, sha256, url), resolved from the cache, the mirror or their URLs (sha256
  checked); the task files name each one ``mirror:<path>`` (``MIRROR_NAME``). A folder without it reads its data
  from the Hub.
- ``benchmark.yaml``: ``contamination:``, where the items' texts are in those files (format, fields, files, header,
  where; the keys of ``contamination.sets.<name>``, reproduce/config/schema.py), so that the contamination report
  checks it;
  and ``penlp:``, for a suite scored by reproduce/evaluate/penlp.py instead of lm-eval, the manifest paths of its train
  and dev files (the keys of ``PENLP_SPLITS``).

Adding a benchmark is its folder and its line in ``suites.yaml``. ``REPRODUCE_TASKS_DIR`` points at another folder
laid out like this one (its own ``suites.yaml``), e.g. for benchmarks of one's own beside an installed package.
Only the standard library and PyYAML here: the config schema reads the contamination fields at import.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reproduce.core.errors import UserError
from reproduce.core.io import read_input_text

TASKS_DIR = Path(os.environ.get("REPRODUCE_TASKS_DIR") or Path(__file__).parent / "tasks")
MANIFEST = "manifest.tsv"
SPEC = "benchmark.yaml"
TASK_FILES = ("*.yaml", "_template_yaml")  # what lm-eval reads of a folder
NOT_TASK_FILES = (MANIFEST, SPEC)
MIRROR_NAME = re.compile(r"mirror:(\w[^\s'\"`]*)")  # a data file in a task file: mirror:<manifest path>
# benchmark.yaml `penlp:` keys: the RuCoLA-style files a PenLP threshold suite reads, and what each is for.
PENLP_SPLITS = {"train": "the train split, on which the PenLP threshold is chosen", "in_domain": "the in-domain dev "
                "split", "out_of_domain": "the out-of-domain dev split"}


@dataclass(frozen=True)
class Benchmark:
    name: str

    @property
    def folder(self) -> Path:
        return TASKS_DIR / self.name

    @property
    def manifest(self) -> Path | None:
        """The folder's data manifest, or None for a benchmark whose data is on the Hub."""
        path = self.folder / MANIFEST
        return path if path.is_file() else None

    def task_files(self) -> list[Path]:
        """The files lm-eval reads (task YAMLs and templates), sorted."""
        return sorted(p for pattern in TASK_FILES for p in self.folder.glob(pattern) if p.name not in NOT_TASK_FILES)

    def data_names(self) -> list[str]:
        """The ``mirror:`` paths its task files name (empty for a hub benchmark), sorted; each task file is checked
        on the way (``check_task_file``)."""
        return sorted({name for path in self.task_files() for name in MIRROR_NAME.findall(check_task_file(path))})

    def section(self, key: str) -> dict[str, Any] | None:
        """A section of benchmark.yaml (a mapping), or None."""
        path = self.folder / SPEC
        if not path.is_file():
            return None
        try:
            spec = yaml.safe_load(read_input_text(path)) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"{path}: not valid YAML ({' '.join(str(exc).split())[:200]}); fix the file") from None
        section = spec.get(key) if isinstance(spec, dict) else None
        if section is not None and not isinstance(section, dict):
            raise UserError(f"{path}: {key} must be a mapping; fix the file")
        return section

    def contamination(self) -> dict[str, Any] | None:
        """The ``contamination:`` section of benchmark.yaml (where the items' texts are), or None."""
        return self.section("contamination")

    def penlp_files(self) -> dict[str, str]:
        """The ``penlp:`` section: each of ``PENLP_SPLITS`` -> a path of the folder's manifest."""
        files = self.section("penlp") or {}
        if set(files) != set(PENLP_SPLITS) or not all(isinstance(v, str) for v in files.values()):
            raise UserError(f"{self.folder / SPEC}: penlp must name a manifest path for each of "
                            f"{', '.join(PENLP_SPLITS)}; fix the file")
        return {split: files[split] for split in PENLP_SPLITS}


class _TaskFileLoader(yaml.SafeLoader):
    """YAML as lm-eval reads it, with its tags (``!function utils.x``) accepted and left unresolved."""


_TaskFileLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def check_task_file(path: Path) -> str:
    """A task file's text; one line where lm-eval would skip it with a warning (malformed YAML)."""
    text = read_input_text(path)
    try:
        yaml.load(text, Loader=_TaskFileLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({' '.join(str(exc).split())[:200]}); fix the task file") from None
    return text


def benchmark(name: str) -> Benchmark:
    """The benchmark folder ``name``; one line listing the folders if there is none."""
    if not (TASKS_DIR / name).is_dir():
        raise UserError(f"no benchmark folder {TASKS_DIR / name}; benchmarks: {', '.join(benchmark_names())}")
    return Benchmark(name)


def tasks_dir_problem() -> str | None:
    """One line if ``TASKS_DIR`` (``REPRODUCE_TASKS_DIR``) is no readable folder holding ``suites.yaml``, else None."""
    where = f"REPRODUCE_TASKS_DIR={TASKS_DIR}" if os.environ.get("REPRODUCE_TASKS_DIR") else str(TASKS_DIR)
    if not TASKS_DIR.is_dir():
        return f"{where}: no such folder; point it at a folder laid out like reproduce/evaluate/tasks/, or unset it"
    if not os.access(TASKS_DIR, os.R_OK | os.X_OK):
        return f"{where}: not readable; fix its permissions or unset it"
    if not (TASKS_DIR / "suites.yaml").is_file():
        return f"{where}: holds no suites.yaml; lay it out like reproduce/evaluate/tasks/ or unset it"
    return None


def benchmark_names() -> list[str]:
    """The benchmark folders (none where the tasks folder is missing or unreadable: ``tasks_dir_problem`` says so
    where a suite is loaded)."""
    if tasks_dir_problem():
        return []
    return sorted(p.name for p in TASKS_DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


def contamination_sets() -> dict[str, dict[str, Any]]:
    """``contamination.sets``'s default: every benchmark with local data and a ``contamination:`` section."""
    sets = {}
    for name in benchmark_names():
        section = Benchmark(name).contamination()
        if section is not None and Benchmark(name).manifest is not None:
            sets[name] = {"benchmark": name, **section}
    return sets
