"""Every bad setting fails through the console script before any work: exit code 2, one line naming the key or
file, no traceback, and no new file anywhere under the working directory (results/, runs/, paper/)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from reproduce.core.paths import SOURCE_ROOT
from tests.bad_settings import SETTINGS, Case, file_settings
from tests.helpers import reproduce

pytestmark = pytest.mark.slow  # one console-script start per setting of the table


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A working folder laid out like the repository: results/published/ present, no run yet."""
    root = tmp_path_factory.mktemp("bad_settings")
    shutil.copytree(SOURCE_ROOT / "results" / "published", root / "results" / "published")
    return root


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _fails_cleanly(case: Case, cwd: Path) -> None:
    if case.needs_no_gpu and torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the setting is valid here")
    before = _files(cwd)
    out = reproduce(*case.args, cwd=cwd, code=None, timeout=60,
                    env={"REPRODUCE_CACHE": str(cwd / "cache"), **dict(case.env)})
    assert out.returncode == 2, (out.returncode, out.stderr[-2000:])
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-2000:]
    assert case.message in lines[0], lines[0]
    assert "Traceback" not in out.stderr and out.stdout == ""
    assert _files(cwd) == before  # nothing created: no results/, runs/, paper/, cache or temporary file


@pytest.mark.parametrize("case", SETTINGS, ids=[c.name for c in SETTINGS])
def test_bad_setting_fails_before_any_work(case: Case, workdir: Path) -> None:
    _fails_cleanly(case, workdir)


def test_bad_files_fail_before_any_work(workdir: Path) -> None:
    inputs = workdir / "inputs"
    inputs.mkdir(exist_ok=True)
    for case in file_settings(inputs):
        _fails_cleanly(case, workdir)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_results_folder(workdir: Path) -> None:
    locked = workdir / "locked"
    locked.mkdir(exist_ok=True)
    locked.chmod(0o555)
    try:
        _fails_cleanly(Case("read-only results", [f"paths.results={locked}"], "is not writable"), workdir)
    finally:
        locked.chmod(0o755)
