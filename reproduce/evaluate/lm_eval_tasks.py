"""The package's lm-eval task folders (reproduce/evaluate/benchmarks.py), written out with resolved data paths.

A local benchmark's YAML names each data file as ``mirror:<path>``, where ``<path>`` is a row of its folder's
manifest.tsv. ``write_tasks`` copies the task files and replaces each such name with the file the manifest resolves
to (cache, mirror or download, sha256 checked); the written folder is what ``TaskManager(include_path=...)`` and
``lm_eval --include_path`` read. Hub benchmarks have no ``mirror:`` names.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import yaml

from reproduce.errors import UserError
from reproduce.evaluate.benchmarks import NOT_TASK_FILES, benchmark
from reproduce.io import atomic_dir

MIRROR_NAME = re.compile(r"mirror:(\w[^\s'\"`]*)")


class _TaskFileLoader(yaml.SafeLoader):
    """YAML as lm-eval reads it, with its tags (``!function utils.x``) accepted and left unresolved."""


_TaskFileLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def check_task_file(path: Path) -> None:
    """A task file lm-eval would skip with a warning (malformed YAML) fails here, in one line."""
    try:
        yaml.load(path.read_text(encoding="utf-8"), Loader=_TaskFileLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({' '.join(str(exc).split())[:200]}); fix the task file") from None


def data_names(name: str) -> list[str]:
    """The ``mirror:`` paths a benchmark's task files name (empty for a hub benchmark)."""
    return sorted({m for f in benchmark(name).task_files() for m in MIRROR_NAME.findall(f.read_text(encoding="utf-8"))})


def write_tasks(benchmarks: list[str], out_dir: Path, resolve: Callable[[str, str], Path]) -> Path:
    """Copy each benchmark folder under ``out_dir`` with every ``mirror:<path>`` replaced by
    ``resolve(benchmark, path)`` (absolute); returns ``out_dir``, written whole or not at all."""
    with atomic_dir(out_dir) as tmp:
        for name in benchmarks:
            found = benchmark(name)
            folder = tmp / name
            shutil.copytree(found.folder, folder, ignore=shutil.ignore_patterns("__pycache__", *NOT_TASK_FILES))
            for source in found.task_files():
                check_task_file(source)
                text = source.read_text(encoding="utf-8")
                resolved = MIRROR_NAME.sub(lambda m, b=name: Path(resolve(b, m.group(1))).resolve().as_posix(), text)
                (folder / source.name).write_text(resolved, encoding="utf-8")
    return out_dir
