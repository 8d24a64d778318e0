"""The package's lm-eval task folders (reproduce/evaluate/benchmarks.py), written out with resolved data paths.

A local benchmark's YAML names each data file as ``mirror:<path>``, where ``<path>`` is a row of its folder's
manifest.tsv. ``write_tasks`` copies the task files of a resolved suite's benchmarks (reproduce/evaluate/suites.py)
and replaces each such name with the file the suite resolved it to (cache, mirror or download, sha256 checked); the
written folder is what ``TaskManager(include_path=...)`` and ``lm_eval --include_path`` read. Hub benchmarks have no
``mirror:`` names.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from reproduce.core.io import atomic_dir, copy_tree, read_input_text, write_text
from reproduce.evaluate.benchmarks import MIRROR_NAME, NOT_TASK_FILES
from reproduce.evaluate.suites import ResolvedBenchmark


def write_tasks(benchmarks: Sequence[ResolvedBenchmark], out_dir: Path) -> Path:
    """Copy each resolved benchmark's folder under ``out_dir`` with every ``mirror:<path>`` of its task files replaced
    by the absolute path of the local file it was resolved to; returns ``out_dir``, written whole or not at all."""
    with atomic_dir(out_dir) as tmp:
        for found in benchmarks:
            folder = tmp / found.name
            copy_tree(found.folder, folder, ignore=shutil.ignore_patterns("__pycache__", *NOT_TASK_FILES))
            local = {item.path: item.local.resolve().as_posix() for item in found.data_files}
            for source in found.task_files:
                text = read_input_text(source)
                resolved = MIRROR_NAME.sub(lambda m, names=local: names[m.group(1)], text)
                write_text(folder / source.name, resolved)
    return out_dir
