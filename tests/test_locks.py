"""One process per run: a second process on a run name stops with one line naming the holder, the record and the
models stay the first process's, and a lock left by a killed process is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from reproduce.core.checksums import sums_problem
from reproduce.core.errors import UserError
from reproduce.core.locks import LOCK, locked
from tests.helpers import OFFLINE, REPRODUCE, micro_overrides, reproduce

HOLD = """import sys, time
from pathlib import Path
from reproduce.core.locks import locked
with locked(Path(sys.argv[1]), "run"):
    print("held", flush=True)
    time.sleep(600)
"""


def _holder(folder: Path) -> subprocess.Popen:
    """A process that holds the folder's lock until it is killed."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_held_lock_names_its_holder_and_a_killed_ones_is_taken_over(tmp_path: Path) -> None:
    folder = tmp_path / "runs" / "x"
    proc = _holder(folder)
    try:
        with pytest.raises(UserError, match=rf"^{folder} is in use by PID {proc.pid} on .* since .*: one process per "
                                            r"run; wait for it to end, or choose another name$"):
            with locked(folder, "run"):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert json.loads((folder / LOCK).read_text())["pid"] == proc.pid  # the killed process's file is still there
    with locked(folder, "run"):  # the kernel released its lock with it: taken over
        assert json.loads((folder / LOCK).read_text())["pid"] == os.getpid()
    assert not (folder / LOCK).exists()


@pytest.mark.slow  # a micro run prepared and trained twice
def test_two_processes_on_one_run_name(tmp_path: Path) -> None:
    """A trains (stopped while B tries); B, started on the same name with another learning rate and overwrite=true,
    stops at once with one line; the record and the models are A's. Once A is done, B runs and both are B's."""
    args = micro_overrides(tmp_path)
    env = {**os.environ, **OFFLINE}
    reproduce("prepare", *args, cwd=tmp_path)
    first = subprocess.Popen([REPRODUCE, "train", *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "runs" / "micro" / LOCK
    deadline = time.monotonic() + 120
    while not (lock.is_file() and lock.stat().st_size) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGSTOP)  # A holds the lock while B tries, however fast A would train
    try:
        second = reproduce("train", *args, "stages.stage1.optim.lr=2e-3", "overwrite=true", cwd=tmp_path, code=None)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 2 and f"is in use by PID {first.pid}" in second.stderr, second.stderr[-2000:]
    assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
    record = yaml.safe_load((tmp_path / "results" / "micro" / "config.yaml").read_text(encoding="utf-8"))
    lr = record["stages"]["stage1"]["optim"]["lr"]
    models = tmp_path / "runs" / "micro" / "models"
    weights = (models / "stage1" / "model.safetensors").read_bytes()
    assert lr != 2e-3 and all(sums_problem(models / stage) is None for stage in ("stage1", "stage2"))
    reproduce("train", *args, "stages.stage1.optim.lr=2e-3", "overwrite=true", cwd=tmp_path)
    record = yaml.safe_load((tmp_path / "results" / "micro" / "config.yaml").read_text(encoding="utf-8"))
    assert record["stages"]["stage1"]["optim"]["lr"] == 2e-3
    assert (models / "stage1" / "model.safetensors").read_bytes() != weights and sums_problem(models / "stage1") is None
    assert not lock.exists()
