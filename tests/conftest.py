"""Shared fixtures: the read-only data mirror (../shared/data), the GPU check's offline bundle. Shared functions live in
tests/helpers.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from reproduce.core.paths import SOURCE_ROOT, default_mirror

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def mirror() -> Path:
    found = default_mirror()
    assert found is not None, "tests need the data mirror ../shared/data beside the project"
    return found


@pytest.fixture(scope="session")
def gpu_bundle(tmp_path_factory) -> Path:
    """The offline bundle of `bench/gpu_check.sh --tiny` (bench/gpu_bundle.py --smoke), in a temporary folder."""
    from tests.helpers import run

    out = tmp_path_factory.mktemp("gpu_bundle")
    run([sys.executable, str(SOURCE_ROOT / "bench" / "gpu_bundle.py"), "--smoke", "--out", str(out)], cwd=out)
    return out


# The longest files first (measured: whole runs, several processes, the bench smokes). `make test` runs two workers
# that take a file at a time in collection order (--dist loadfile --no-loadscope-reorder), so they end together
# instead of one waiting on a long file started last.
LONGEST_FIRST = ("test_end_to_end.py", "test_resume.py", "test_distributed.py", "test_bench.py", "test_prepare.py",
                 "test_locks.py", "test_eval_command.py", "test_bad_settings.py", "test_init_from.py",
                 "test_extensions.py", "test_gpu_check.py", "test_fast_step.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the others keep their order
