"""Watching a run: the trackers read back with their own readers (TensorBoard's event reader, MLflow's client, the W&B
offline run file), the benchmarks during training in eval_curve.json, training untouched by both, and the last
in-training point equal to the final evaluation of the same items."""

from __future__ import annotations

import glob
import json
import os
import signal
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from reproduce.config.compose import compose_config
from reproduce.core.errors import UserError
from reproduce.core.io import read_json
from reproduce.core.paths import SOURCE_ROOT
from reproduce.train import watch as trackers
from reproduce.train.watch import point_steps
from tests.helpers import REPRODUCE, micro_overrides, reproduce

TASKS = ["rublimp", "xwinograd_ru_local", "parus_crowd_majority"]
WATCH = ["eval.during_training.enabled=true", "eval.during_training.every_tokens=16384",
         "eval.during_training.limit=2", "eval.during_training.validation_tokens=2048"]
TRACKERS = "logger=[csv,tensorboard,mlflow,wandb]"


def _train(root: Path, run: str, *extra: str) -> list[str]:
    args = [*micro_overrides(root, run), *extra]
    reproduce("prepare", *args, cwd=root, timeout=600)
    reproduce("train", *args, cwd=root, timeout=900)
    return args


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """The micro recipe trained twice on the same prepared data: watched (benchmarks in the loop, four trackers) and
    plain (neither)."""
    root = tmp_path_factory.mktemp("watching")
    _train(root, "plain", "logger=[]")
    _train(root, "watched", *WATCH, TRACKERS)
    return root


def _tensorboard(folder: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def _run_steps(root: Path, run: str) -> dict[str, int]:
    """The optimizer steps of the stages before each stage (the trackers' axis)."""
    stages = read_json(root / "results" / run / "train.json")["stages"]
    before, total = {}, 0
    for name in ("stage1", "stage2"):
        before[name], total = total, total + stages[name]["steps"]
    return before


def _float32(value: float) -> float:
    return float(np.float32(value))


@pytest.mark.slow
def test_training_is_untouched_by_watching(runs: Path) -> None:
    """The same exports, curves.json and train.json (but its timings) with the benchmarks and four trackers on."""
    timing = ("seconds", "tokens_per_second", "median_window_tokens_per_second", "median_window_mfu", "mfu")
    for stage in ("stage1", "stage2"):
        sums = [(runs / "runs" / run / "models" / stage / "SHA256SUMS").read_text() for run in ("plain", "watched")]
        assert sums[0] == sums[1]
    curves = [read_json(runs / "results" / run / "curves.json") for run in ("plain", "watched")]
    assert curves[0]["train"] == curves[1]["train"] and curves[0]["validation"] == curves[1]["validation"]
    trained = [read_json(runs / "results" / run / "train.json")["stages"] for run in ("plain", "watched")]
    for stage in trained[0]:
        assert {k: v for k, v in trained[0][stage].items() if k not in timing} == {
            k: v for k, v in trained[1][stage].items() if k not in timing}
    assert not (runs / "results" / "plain" / "eval_curve.json").exists()


@pytest.mark.slow
def test_eval_curve_has_every_point_on_one_axis(runs: Path) -> None:
    points = read_json(runs / "results" / "watched" / "eval_curve.json")["points"]
    stages = read_json(runs / "results" / "watched" / "train.json")["stages"]
    for stage, record in stages.items():
        steps = sorted({p["step"] for p in points if p["stage"] == stage})
        per_step = record["tokens"] // record["steps"]
        assert steps == sorted(point_steps(record["steps"], per_step, 16384, None))
        for step in steps:
            here = {(p["task"], p["metric"]) for p in points if p["stage"] == stage and p["step"] == step}
            assert {("validation", "loss"), ("validation", "bits_per_byte"), *((t, "acc") for t in TASKS)} <= here
    first2 = min(p["tokens_seen"] for p in points if p["stage"] == "stage2")
    assert first2 > stages["stage1"]["tokens"]  # stage 2 continues stage 1's axis
    rublimp = next(p for p in points if p["task"] == "rublimp" and p["metric"] == "acc")
    assert rublimp["n"] > 2 * 40  # two pairs of every phenomenon
    assert all(p["source"] == "in_training" for p in points)


@pytest.mark.slow
def test_last_in_training_point_is_the_final_evaluation_of_the_same_items(runs: Path) -> None:
    args = micro_overrides(runs, "watched")
    model = runs / "runs" / "watched" / "models" / "stage2"
    reproduce("eval", *args, f"model={model}", "eval.name=final_stage2", f"eval.tasks=[{','.join(TASKS)}]",
              "eval.limit=2", cwd=runs, timeout=600)
    final = read_json(runs / "results" / "eval" / "final_stage2" / "ru_local.json")["metrics"]
    points = read_json(runs / "results" / "watched" / "eval_curve.json")["points"]
    last = max(p["step"] for p in points if p["stage"] == "stage2")
    for task in TASKS:
        point = next(p for p in points if (p["stage"], p["step"], p["task"], p["metric"]) == ("stage2", last, task,
                                                                                               "acc"))
        assert point["value"] == final[task]["acc"] and point["n"] == final[task]["n"]


@pytest.mark.slow
def test_tensorboard_holds_the_curves_on_the_run_axis(runs: Path) -> None:
    """TensorBoard's own event reader: train loss and learning rate equal curves.json (as float32) at the run's step
    (stage 2 continues stage 1's), each step once; the in-training points there too."""
    curves = read_json(runs / "results" / "watched" / "curves.json")["train"]
    before = _run_steps(runs, "watched")
    folder = runs / "runs" / "watched" / "tensorboard"
    for tag, key in (("train_loss", "loss"), ("lr", "lr")):
        assert _tensorboard(folder, tag) == [(before[p["stage"]] + p["step"], _float32(p[key])) for p in curves]
    assert len(_tensorboard(folder, "eval/rublimp/acc")) == len(
        {(p["stage"], p["step"]) for p in read_json(runs / "results" / "watched" / "eval_curve.json")["points"]})


@pytest.mark.slow
def test_mlflow_file_store_holds_the_run(runs: Path) -> None:
    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    state = read_json(runs / "runs" / "watched" / "trackers.json")
    client = MlflowClient((runs / "runs" / "watched" / "mlruns").resolve().as_uri())
    run = client.get_run(state["ids"]["mlflow"])
    assert run.data.tags["seed"] == "1234" and run.data.tags["run_name"] == "watched"
    assert run.data.params["seed"] == "1234" and "git_commit" in run.data.params
    curves = read_json(runs / "results" / "watched" / "curves.json")["train"]
    before = _run_steps(runs, "watched")
    history = client.get_metric_history(run.info.run_id, "train_loss")
    assert [(m.step, m.value) for m in history] == [(before[p["stage"]] + p["step"], p["loss"]) for p in curves]
    assert client.get_metric_history(run.info.run_id, "grad_norm")


def _wandb_records(path: str):
    """The records of a W&B run file (LevelDB's log format in 32 KiB blocks after a 7-byte header), parsed."""
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B"
    pos, pending = 7, b""
    while pos + 7 <= len(data):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0 and length == 0:
            pos += left - 7
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


@pytest.mark.slow
def test_wandb_offline_run_holds_history_and_config(runs: Path) -> None:
    (path,) = glob.glob(str(runs / "runs" / "watched" / "wandb" / "offline-run-*" / "run-*.wandb"))
    history, config = [], {}
    for record in _wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                            for item in record.history.item})
        elif kind == "config":
            config.update({item.key: json.loads(item.value_json) for item in record.config.update})
    losses = [h["train_loss"] for h in history if "train_loss" in h]
    curves = read_json(runs / "results" / "watched" / "curves.json")["train"]
    assert losses == [p["loss"] for p in curves]
    assert config["seed"] == 1234 and config["run_name"] == "watched"
    assert read_json(runs / "runs" / "watched" / "trackers.json")["ids"]["wandb"] in path


@pytest.mark.parametrize(("step", "kept"), [(0, {"stage2"}), (976, {"stage1", "stage2"})])
def test_a_stage_trained_from_its_start_drops_its_earlier_points(tmp_path: Path, step: int, kept: set[str]) -> None:
    """The committed curve a fresh clone starts with (or an earlier run's) is computed again by a stage trained from
    step 0, never trusted; a stage resumed from a checkpoint keeps the points before it."""
    from types import SimpleNamespace

    from reproduce.train.in_training_eval import InTrainingEval
    from reproduce.train.trackers import Axis

    cfg = compose_config("reproduce", [*micro_overrides(tmp_path, "stale"), *WATCH])
    curve = cfg.layout.result("eval_curve.json")
    curve.parent.mkdir(parents=True)
    curve.write_bytes((SOURCE_ROOT / "results" / "mini" / "eval_curve.json").read_bytes())
    callback = InTrainingEval(cfg, "stage1", 128, Axis(), set(), None)  # type: ignore[arg-type]
    callback.on_train_start(SimpleNamespace(global_step=step, is_global_zero=True), None)  # type: ignore[arg-type]
    assert {p["stage"] for p in read_json(curve)["points"]} == kept


def test_point_steps() -> None:
    assert point_steps(104, 512, 16384, None) == {32, 64, 96, 104}
    assert point_steps(10, 512, None, None) == {10}
    assert point_steps(10, 512, None, 4) == {4, 8, 10}


def test_a_missing_tracker_package_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = compose_config("reproduce", ["logger=[csv,mlflow]"])
    real = trackers.importlib.util.find_spec
    monkeypatch.setattr(trackers.importlib.util, "find_spec", lambda name: None if name == "mlflow" else real(name))
    with pytest.raises(UserError, match=r"logger=mlflow: the mlflow package is not installed; install the extra with "
                                        r"pip install 'reproduce\[mlflow\]'"):
        trackers.check_trackers(cfg)


def test_wandb_online_finds_its_own_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("wandb")  # the wandb extra (the lock has it; bench/oldest_deps.py's venvs do not)
    cfg = compose_config("reproduce", ["logger=wandb", "logger.wandb.offline=false"])
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    with pytest.raises(UserError, match="no W&B credentials"):
        trackers.check_trackers(cfg)
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    trackers.check_trackers(cfg)


@pytest.mark.slow
def test_interval_longer_than_the_run_stops_before_training(runs: Path) -> None:
    args = micro_overrides(runs, "watched")
    out = reproduce("train", *args, *WATCH[:1], "eval.during_training.every_tokens=10000000000", cwd=runs, code=2)
    assert "eval.during_training.every_tokens=10000000000: longer than the run" in out.stderr


@pytest.mark.slow
def test_sigkill_and_resume_give_one_curve(runs: Path) -> None:
    """Killed after its first in-training point and resumed: the same eval_curve.json points as the uninterrupted
    watched run, the points before the kill not computed again, and one TensorBoard curve without a repeated step."""
    args = [*micro_overrides(runs, "killed"), *WATCH, "logger=[csv,tensorboard]",
            "stages.stage1.checkpoint_every_tokens=8192", "eval.during_training.at_checkpoints=false"]
    reproduce("prepare", *args, cwd=runs, timeout=600)
    curve = runs / "results" / "killed" / "eval_curve.json"
    proc = subprocess.Popen([REPRODUCE, "train", *args], cwd=runs, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 600
    while not curve.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    before = read_json(curve)["points"]
    out = reproduce("train", *args, cwd=runs, timeout=900)
    assert "resumed at step" in out.stdout
    for step in {p["step"] for p in before if p["stage"] == "stage1"}:
        assert f"[stage1] in-training evaluation at step {step}:" not in out.stdout
    points = read_json(curve)["points"]
    watched = read_json(runs / "results" / "watched" / "eval_curve.json")["points"]
    assert points == watched
    curves = read_json(runs / "results" / "killed" / "curves.json")["train"]
    offset = _run_steps(runs, "killed")
    assert _tensorboard(runs / "runs" / "killed" / "tensorboard", "train_loss") == [
        (offset[p["stage"]] + p["step"], _float32(p["loss"])) for p in curves]


@pytest.mark.slow
def test_kept_checkpoints_scored_after_the_run(runs: Path) -> None:
    """`reproduce eval eval.checkpoints=[all]` on the plain run: the points the watched run scored in the loop at the
    same steps (the same weights), marked as from checkpoints; a second time, nothing is computed again."""
    args = [*micro_overrides(runs, "plain"), *WATCH[1:], "eval.checkpoints=[all]"]
    out = reproduce("eval", *args, cwd=runs, timeout=900)
    assert "checkpoint evaluation at step 104" in out.stdout
    points = read_json(runs / "results" / "plain" / "eval_curve.json")["points"]
    assert {(p["stage"], p["step"]) for p in points} == {("stage1", 104), ("stage2", 52)}
    assert all(p["source"] == "checkpoint" for p in points)
    watched = {(p["stage"], p["step"], p["task"], p["metric"]): p
               for p in read_json(runs / "results" / "watched" / "eval_curve.json")["points"]}
    for point in points:
        twin = watched[(point["stage"], point["step"], point["task"], point["metric"])]
        assert {**point, "source": "in_training"} == twin
    again = reproduce("eval", *args, cwd=runs, timeout=900)
    assert "checkpoint evaluation at step" not in again.stdout and "in eval_curve.json already" in again.stdout
