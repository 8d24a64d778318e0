"""Shared fixtures: the read-only data mirror (../shared/data), the GPU check's offline bundle. Shared functions live in
tests/helpers.py."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

# Before torch and tokenizers start, here and in every process a test starts (they inherit the environment): one
# thread per process. `make test` runs two workers on two cores, each often waiting on a subprocess of its own; with a
# thread per core in torch and in tokenizers' batch encoding, every small operation waits on a core another process
# holds (measured: the micro recipe's samples took 21 s under that load, 0.4 s with one thread each).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# A suite started in the background (`make test &` in a script) inherits SIGINT ignored, and so would every command a
# test starts (the package keeps an ignored signal ignored); the signal tests send Ctrl-C, so it is delivered here.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

from reproduce.core.paths import SOURCE_ROOT, default_mirror  # noqa: E402


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


# The longest files first, in the order of their summed durations (measured: `pytest --durations` of the whole suite on
# 2026-12-07, after the suite was cut back; test_fast_step.py where its 36 s put it when torch's compile cache is
# cold). `make test` runs two workers that take a file at a time in collection order (--dist loadfile
# --no-loadscope-reorder), so they end together instead of one waiting on a long file started last; the short files,
# alphabetical, fill the end. A file that grows past the last one named here belongs in this list.
LONGEST_FIRST = ("test_bench.py", "test_resume.py", "test_watching.py", "test_end_to_end.py", "test_eval_command.py",
                 "test_distributed.py", "test_signals.py", "test_fast_step.py", "test_prepare.py", "test_fuzz.py",
                 "test_bad_settings.py", "test_locks.py", "test_gpu_check.py", "test_init_from.py", "test_paper.py",
                 "test_paper_trace.py", "test_extensions.py", "test_docs.py", "test_cli.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the others keep their order


# tests/test_fuzz.py: a fixed seed and a bounded budget in `make test`; more cases on demand with
# `--hypothesis-profile=long` or HYPOTHESIS_PROFILE=long (bench/fuzz.py records a run of the long one)
settings.register_profile("default", derandomize=True, deadline=None, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("long", settings.get_profile("default"), derandomize=False, max_examples=2000)  # x20
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
