"""Checkpoints and exact resume: a stage killed (SIGKILL) at three random points and stopped by SIGTERM and SIGUSR1,
resumed each time, ends with the same bytes as an uninterrupted run; a non-finite loss keeps the last good
checkpoint; a rerun reuses finished steps and stages. Faults: a damaged checkpoint, export or prepared set, and a
missing config record, each verified before it is trusted and lost nothing."""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from reproduce.core.io import read_json
from reproduce.train.checkpoint import checkpoint_step, checkpoints
from tests.helpers import REPRODUCE, micro_overrides, reproduce

pytestmark = pytest.mark.slow  # micro runs killed and resumed several times

# Checkpoints every 4 steps; stages of 106 and 26 steps: every interruption below lands in stage 1 (each run moves
# at most about 20 steps: to a new checkpoint, then half a second).
SHORT = ["stages.stage1.checkpoint_every_tokens=2048", "stages.stage2.checkpoint_every_tokens=2048",
         "stages.stage1.epochs=0.2", "stages.stage2.epochs=0.05"]


def _args(tmp: Path, run_name: str) -> list[str]:
    return [*micro_overrides(tmp, run_name=run_name), *SHORT]


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
        reproduce(command, *_args(tmp, "reference"), cwd=tmp)
    return tmp


def test_interrupted_stages_resume_to_the_same_bytes(reference: Path) -> None:
    tmp, args = reference, _args(reference, "interrupted")
    reproduce("prepare", *args, cwd=tmp)
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
    out = reproduce("train", *args, cwd=tmp)
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
    out = reproduce("prepare", *_args(reference, "reference"), cwd=reference)
    assert "[data] prepared before for this config" in out.stdout
    out = reproduce("train", *_args(reference, "reference"), cwd=reference)
    assert "[stage1] trained before for this config" in out.stdout and "[stage2] trained before" in out.stdout
    assert "steps," not in out.stdout  # no stage started
    assert _models(reference, "reference") == models


def _diverging_args(tmp: Path) -> list[str]:
    """lr 300 without warmup: nan within a few steps; a checkpoint after every step, so one precedes it."""
    return [*_args(tmp, "diverged"), "stages.stage1.optim.lr=300", "stages.stage1.optim.min_lr=0",
            "stages.stage1.optim.warmup_fraction=0", "stages.stage1.checkpoint_every_tokens=512"]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(reference: Path) -> None:
    args = _diverging_args(reference)
    reproduce("prepare", *args, cwd=reference)
    out = reproduce("train", *args, cwd=reference, code=2)
    folder = reference / "runs" / "diverged" / "checkpoints" / "stage1"
    kept = checkpoints(folder)
    (line,) = out.stderr.strip().splitlines()
    match = re.fullmatch(r"error: stages\.stage1: loss is (nan|inf) at step (\d+); the last good checkpoint (\S+) is "
                         r"kept; lower stages\.stage1\.optim\.lr or raise its warmup_fraction \(overwrite=true starts "
                         r"the stage over\)", line)
    assert match and kept and match.group(3) == str(kept[-1]) and int(match.group(2)) > _newest_step(folder)
    assert not (reference / "runs" / "diverged" / "models").exists()


def _copy_run(tmp: Path, source: str, name: str) -> list[str]:
    """A copy of a finished run under another name (its prepared set shared), and that name's arguments."""
    for root in ("results", "runs"):
        shutil.copytree(tmp / root / source, tmp / root / name)
    return _args(tmp, name)


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_checkpoint_falls_back_to_the_one_before(reference: Path) -> None:
    """The stage's newest checkpoint no longer matches its sha256: one warning line, the one before it resumes, and
    the stage ends with the same weights as the uninterrupted run."""
    args = _copy_run(reference, "reference", "damaged_checkpoint")
    runs = reference / "runs" / "damaged_checkpoint"
    newest = checkpoints(runs / "checkpoints" / "stage2")[-1]
    _flip_last_byte(newest)
    shutil.rmtree(runs / "models" / "stage2")  # the stage must be trained (its end re-run) to need the checkpoint
    out = reproduce("train", *args, cwd=reference)
    warning = f"[stage2] warning: {newest} is damaged (its bytes do not match its sha256); resuming from the checkpoint"
    assert warning in out.stdout and "resumed at step" in out.stdout
    assert _models(reference, "damaged_checkpoint") == _models(reference, "reference")


def test_every_checkpoint_damaged_is_one_line(reference: Path) -> None:
    args = _copy_run(reference, "reference", "all_damaged")
    runs = reference / "runs" / "all_damaged"
    folder = runs / "checkpoints" / "stage2"
    for path in checkpoints(folder):
        path.write_bytes(path.read_bytes()[:1000])
    shutil.rmtree(runs / "models" / "stage2")
    out = reproduce("train", *args, cwd=reference, code=2)
    assert out.stderr.strip().splitlines()[-1] == (f"error: stages.stage2: every checkpoint in {folder} is damaged; "
                                                   "delete the folder to train the stage from its start")


def test_a_damaged_export_is_exported_again_never_loaded(reference: Path) -> None:
    args = _copy_run(reference, "reference", "damaged_export")
    export = reference / "runs" / "damaged_export" / "models" / "stage1"
    _flip_last_byte(export / "model.safetensors")
    out = reproduce("eval", *args, cwd=reference, code=2)  # a later step refuses it
    assert "the export" in out.stderr and "is not intact: model.safetensors does not match its sha256" in \
        out.stderr
    out = reproduce("train", *args, cwd=reference)
    assert f"[stage1] warning: the export {export} is not intact" in out.stdout
    assert _models(reference, "damaged_export") == _models(reference, "reference")


def test_a_damaged_prepared_set_says_how_to_make_it_again(reference: Path) -> None:
    args = _copy_run(reference, "reference", "damaged_data")
    pointer = reference / "runs" / "damaged_data" / "prepared.json"
    folder = Path(read_json(pointer)["folder"])
    copy = reference / "prepared_copy" / folder.name  # the reference run's own set stays intact
    shutil.copytree(folder, copy)
    pointer.write_text(json.dumps({**read_json(pointer), "folder": copy.as_posix()}), encoding="utf-8")
    args = [a if not a.startswith("paths.prepared=") else f"paths.prepared={copy.parent}" for a in args]
    shards = {p.name: p.read_bytes() for p in (copy / "train").glob("shard-*.bin")}
    (copy / "tokenizer" / "tokenizer.json").write_text("{not json", encoding="utf-8")
    out = reproduce("train", *args, cwd=reference, code=2)
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith(f"error: {copy / 'tokenizer'}: unreadable tokenizer (") and line.endswith(
        "delete the folder and run `reproduce prepare` with the run's overrides: it is made again, the same bytes, "
        "and nothing else of the run is lost")
    shutil.rmtree(copy)  # as the line says
    reproduce("prepare", *args, cwd=reference)
    assert {p.name: p.read_bytes() for p in (copy / "train").glob("shard-*.bin")} == shards
    assert _models(reference, "damaged_data") == _models(reference, "reference")  # nothing else lost


def test_a_missing_config_record_removes_nothing(reference: Path) -> None:
    args = _copy_run(reference, "reference", "no_record")
    results = reference / "results" / "no_record"
    (results / "config.yaml").unlink()
    before = {p.name: p.read_bytes() for p in results.iterdir()}
    out = reproduce("train", *args, cwd=reference, code=2)
    assert out.stderr.strip() == (f"error: {results} holds data.json of prepare, and its config.yaml does not say "
                                  "which config made it; pass overwrite=true to replace the run's outputs, or choose "
                                  "another run_name")
    assert {p.name: p.read_bytes() for p in results.iterdir()} == before
    (results / "config.yaml").write_bytes(b"\xff\xfe not yaml")  # undecodable: the same, never "delete it"
    out = reproduce("train", *args, cwd=reference, code=2)
    assert "unreadable config record" in out.stderr and "delete" not in out.stderr
