"""lm-eval task folders for local benchmarks, written with the resolved paths of their data files."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from reproduce.io import atomic_dir

TASKS_DIR = Path(__file__).parent / "tasks"


def write_rublimp_tasks(csv_files: dict[str, Path], out_dir: Path) -> Path:
    """Write one lm-eval task per RuBLiMP phenomenon (``rublimp_<name>``) and the group ``rublimp``.

    ``csv_files`` maps a phenomenon name to its resolved CSV. Returns the folder to pass to
    ``TaskManager(include_path=...)`` (or ``lm_eval --include_path``).
    """
    with atomic_dir(out_dir) as tmp:
        folder = tmp / "rublimp"
        shutil.copytree(TASKS_DIR / "rublimp", folder, ignore=shutil.ignore_patterns("__pycache__"))
        names = sorted(csv_files)
        for name in names:
            task = {
                "include": "_template_yaml",
                "task": f"rublimp_{name}",
                "dataset_kwargs": {"data_files": {"train": str(Path(csv_files[name]).resolve())}},
            }
            (folder / f"{name}.yaml").write_text(yaml.safe_dump(task, allow_unicode=True), encoding="utf-8")
        group = {
            "group": "rublimp",
            "task": [f"rublimp_{name}" for name in names],
            "aggregate_metric_list": [{"metric": "acc", "aggregation": "mean", "weight_by_size": True}],
            "metadata": {"version": 1.0},
        }
        (folder / "_rublimp.yaml").write_text(yaml.safe_dump(group, sort_keys=False), encoding="utf-8")
    return out_dir
