"""Checkpoints and exact resume: a stage killed (SIGKILL) at three random points and stopped by SIGTERM and SIGUSR1,
resumed each time, ends with the same bytes as an uninterrupted run; a non-finite loss keeps the last good
checkpoint; a rerun reuses finished steps and stages."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reproduce.io import read_json
from reproduce.train.checkpoint import checkpoint_step, checkpoints
from tests.conftest import micro_overrides

REPRODUCE = str(Path(sys.executable).with_name("reproduce"))
# Checkpoints every 4 steps; stages of 106 and 26 steps: every interruption below lands in stage 1 (each run moves
# at most about 20 steps: to a new checkpoint, then half a second).
SHORT = ["stages.stage1.checkpoint_every_tokens=2048", "stages.stage2.checkpoint_every_tokens=2048",
         "stages.stage1.epochs=0.2", "stages.stage2.epochs=0.05"]


def _args(tmp: Path, run_name: str) -> list[str]:
    return [*micro_overrides(tmp, run_name=run_name), *SHORT]


def _reproduce(*args: str, cwd: Path, code: int = 0) -> subprocess.CompletedProcess:
    out = subprocess.run([REPRODUCE, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert out.returncode == code, out.stderr[-3000:]
    return out


def _models(tmp: Path, run_name: str) -> dict[str, bytes]:
    return {stage: (tmp / "runs" / run_name / "models" / stage / "model.safetensors").read_bytes()
            for stage in ("stage1", "stage2")}


def _newest_step(folder: Path) -> int:
    found = checkpoints(folder)
    return checkpoint_step(found[-1]) if found else -1


def _interrupt(args: list[str], cwd: Path, folder: Path, signum: int, delay: float) -> subprocess.CompletedProcess:
    """Start training, wait for a checkpoint newer than the last one, then ``delay`` seconds, then send ``signum``."""
    before = _newest_step(folder)
    proc = subprocess.Popen([REPRODUCE, "train", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    while _newest_step(folder) <= before and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(delay)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("resume")
    for command in ("prepare", "train"):
        _reproduce(command, *_args(tmp, "reference"), cwd=tmp)
    return tmp


def test_interrupted_stages_resume_to_the_same_bytes(reference: Path) -> None:
    tmp, args = reference, _args(reference, "interrupted")
    _reproduce("prepare", *args, cwd=tmp)
    folder = tmp / "runs" / "interrupted" / "checkpoints" / "stage1"
    rng = random.Random(6)
    for signum in (signal.SIGKILL, signal.SIGTERM, signal.SIGKILL, signal.SIGUSR1, signal.SIGKILL):
        out = _interrupt(args, tmp, folder, signum, delay=rng.uniform(0.0, 0.5))
        if signum == signal.SIGKILL:
            assert out.returncode == -signal.SIGKILL
        else:  # a checkpoint at the next step boundary, then a clean stop
            assert out.returncode == 128 + signum, out.stderr[-2000:]
            assert f"stopped by {signal.Signals(signum).name} at step" in out.stderr
            assert "Traceback" not in out.stderr
        assert len(checkpoints(folder)) <= 2  # keep_checkpoints
        assert not list(folder.glob(".*.tmp")) or signum == signal.SIGKILL
    out = _reproduce("train", *args, cwd=tmp)
    assert "resumed at step" in out.stdout
    assert _models(tmp, "interrupted") == _models(tmp, "reference")
    curves = {name: read_json(tmp / "results" / name / "curves.json") for name in ("reference", "interrupted")}
    for kind in ("train", "validation"):
        assert curves["interrupted"][kind] == curves["reference"][kind], kind
    logs = sorted((tmp / "runs" / "interrupted" / "logs" / "stage1").glob("from-step-*/metrics.csv"))
    assert len(logs) >= 2  # a CSV log per launch (one that was killed keeps what it flushed)
    columns = {c for path in logs for c in path.read_text(encoding="utf-8").splitlines()[0].split(",")}
    assert {"train_loss", "val_loss", "tokens_per_second", "lr-AdamW/pg1"} <= columns


def test_rerun_reuses_prepared_data_and_finished_stages(reference: Path) -> None:
    models = _models(reference, "reference")
    out = _reproduce("prepare", *_args(reference, "reference"), cwd=reference)
    assert "[data] prepared before for this config" in out.stdout
    out = _reproduce("train", *_args(reference, "reference"), cwd=reference)
    assert "[stage1] trained before for this config" in out.stdout and "[stage2] trained before" in out.stdout
    assert "steps," not in out.stdout  # no stage started
    assert _models(reference, "reference") == models


def _diverging_args(tmp: Path) -> list[str]:
    """lr 300 without warmup: nan within a few steps; a checkpoint after every step, so one precedes it."""
    return [*_args(tmp, "diverged"), "stages.stage1.optim.lr=300", "stages.stage1.optim.min_lr=0",
            "stages.stage1.optim.warmup_fraction=0", "stages.stage1.checkpoint_every_tokens=512"]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(reference: Path) -> None:
    args = _diverging_args(reference)
    _reproduce("prepare", *args, cwd=reference)
    out = _reproduce("train", *args, cwd=reference, code=2)
    folder = reference / "runs" / "diverged" / "checkpoints" / "stage1"
    kept = checkpoints(folder)
    (line,) = out.stderr.strip().splitlines()
    match = re.fullmatch(r"error: stages\.stage1: loss is (nan|inf) at step (\d+); the last good checkpoint (\S+) is "
                         r"kept; lower stages\.stage1\.optim\.lr or raise its warmup_fraction \(overwrite=true starts "
                         r"the stage over\)", line)
    assert match and kept and match.group(3) == str(kept[-1]) and int(match.group(2)) > _newest_step(folder)
    assert not (reference / "runs" / "diverged" / "models").exists()


def test_truncated_checkpoint_is_one_clear_line(reference: Path) -> None:
    args = _diverging_args(reference)
    newest = checkpoints(reference / "runs" / "diverged" / "checkpoints" / "stage1")[-1]
    newest.write_bytes(newest.read_bytes()[:1000])
    out = _reproduce("train", *args, cwd=reference, code=2)
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"error: {newest}: not a readable checkpoint (")
    assert line.endswith("); delete it to resume from the one before, or pass resume=never")
