"""Generated cases (tests/fuzz_cases.py) with one property: accepted with the right result, or refused with one line
(exit 2), or stopped by a signal with one line (130/143); no traceback, nothing written outside the case's folder,
nothing half-written, no hang. A fixed seed and about a minute in `make test`; twenty times the cases with
`--hypothesis-profile=long` (random seeds). Findings stay as explicit examples."""

from __future__ import annotations

import json
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.fuzz_cases import (
    console_case,
    damage,
    override_argv,
    override_case,
    reader_case,
    schema_keys,
    signal_case,
)
from tests.helpers import micro_overrides, reproduce

KEYS = schema_keys()


def scaled(n: int) -> int:
    """``n`` cases in the default profile, twenty times as many in the long one."""
    return max(1, n * settings().max_examples // 100)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def fresh(root: Path) -> Path:
    return Path(tempfile.mkdtemp(dir=root))


@settings(max_examples=scaled(60))
@given(override_argv(KEYS))
@example(([], ["data.workers=10000"]))
@example(([], ["model=0"]))  # findings: a config group given a number, a list, a name too long for a file
@example(([], ["model=[300]"]))
@example(([], ["data=" + "x" * 3000]))
@example((["plan"], ["data.sources.ruslit.splitx=[',\nx]"]))  # finding: a newline echoed made two lines
@example((["prepare"], ["data.max_line_chars=\udcff"]))
@example((["plan"], ["plan.mfu=1e309"]))
def test_overrides_are_accepted_or_refused_in_one_line(root: Path, case: tuple[list[str], list[str]]) -> None:
    override_case(*case, fresh(root))


@settings(max_examples=scaled(3))
@given(override_argv(KEYS))
@example((["train"], ["stages.stage1.optim.lr='\u202e'"]))
def test_overrides_through_the_console_script(root: Path, case: tuple[list[str], list[str]]) -> None:
    console_case(*case, fresh(root))


@settings(max_examples=scaled(300))
@given(damage())
@example(("compare reference", "FIFO", 0, 1))
@example(("model folder", "deeply nested", 100_000, 1))
@example(("model folder", "FIFO", 0, 1))
@example(("prepared shard", "huge", 0, 1))
@example(("source manifest", "FIFO", 0, 1))
def test_damaged_files_are_read_or_refused_in_one_line(root: Path, case: tuple[str, str, int, int]) -> None:
    reader_case(*case, root)


@pytest.fixture(scope="module")
def prepared_reference(tmp_path_factory) -> dict:
    whole = tmp_path_factory.mktemp("whole")
    reproduce("prepare", *micro_overrides(whole), "data.workers=2", cwd=whole, timeout=600)
    return json.loads(next((whole / "prepared").glob("*/manifest.json")).read_text(encoding="utf-8"))


@pytest.mark.slow  # a prepare per case, and the uninterrupted one
@settings(max_examples=scaled(2))
@given(st.sampled_from([signal.SIGINT, signal.SIGTERM]), st.floats(0.0, 12.0), st.booleans())
def test_signals_at_random_points(root: Path, prepared_reference: dict, signum: int, delay: float,
                                  group: bool) -> None:
    signal_case(fresh(root), signum, delay, group, prepared_reference)
