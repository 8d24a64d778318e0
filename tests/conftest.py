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
