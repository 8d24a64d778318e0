"""Two CPU processes (DDP over gloo) through the console script: the whole recipe runs once, rank zero prepares,
exports, evaluates and writes results, and the weights and the benchmarks during training match one process with
twice the accumulation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from reproduce.core.io import read_json
from reproduce.core.paths import SOURCE_ROOT
from tests.helpers import micro_overrides, reproduce

pytestmark = pytest.mark.slow  # the micro recipe in two processes and in one

# fp32, so that only the order of the gradient sums differs; shorter stages; stage 2's micro-batch splits over 2.
# Stage 2 at lr 1e-4: Adam turns the last-bit differences of near-zero gradients into steps of about lr, which at 1e-3
# exceed the tolerance after a stage of copied positions (and at 2e-4, by 4e-7 in one weight, on the micro data as
# prepare writes it now).
SHORT_FP32 = ["trainer.precision=32-true", "stages.stage1.epochs=0.1", "stages.stage2.epochs=0.05",
              "stages.stage2.micro_batch_size=4", "stages.stage2.optim.lr=1e-4", "eval.limit=2",
              # benchmarks during training at each stage's end (scored by rank zero while rank one waits)
              "eval.during_training.enabled=true", "eval.during_training.every_tokens=null",
              "eval.during_training.at_checkpoints=false", "eval.during_training.limit=2",
              "eval.during_training.validation_tokens=2048"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("ddp")
    shutil.copytree(SOURCE_ROOT / "results" / "published", tmp / "results" / "published")
    one = [*micro_overrides(tmp, run_name="one"), *SHORT_FP32]
    for command in ("prepare", "train"):
        reproduce(command, *one, cwd=tmp, timeout=600)
    out = reproduce(*micro_overrides(tmp, run_name="two"), *SHORT_FP32, "trainer.devices=2", "trainer.strategy=ddp",
                    "~contamination.sets.rublimp", cwd=tmp, timeout=600)  # its 45,000 items: tests/test_end_to_end.py
    (tmp / "two.stdout").write_text(out.stdout, encoding="utf-8")
    return tmp


def test_two_processes_run_the_recipe_once(runs: Path) -> None:
    stdout = (runs / "two.stdout").read_text(encoding="utf-8")
    log = (runs / "runs" / "two" / "reproduce.log").read_text(encoding="utf-8")
    for text in (stdout, log):  # rank 1 trains but neither prints progress nor writes the log
        assert text.count("[stage1] 52 steps") == 1 and text.count("[stage2] 26 steps") == 1
    summary = read_json(runs / "results" / "two" / "summary.json")
    assert summary["meta"]["batch_size"] == {"stage1": 16, "stage2": 8} and len(summary["perplexity"]) == 4
    assert summary["rublimp"]["stage2"]["n_pairs"] == 45 * 2
    assert (runs / "paper" / "tables" / "perplexity.md").is_file()


def test_ddp_weights_match_one_process_with_twice_the_accumulation(runs: Path) -> None:
    for stage in ("stage1", "stage2"):
        one, two = (load_file(runs / "runs" / name / "models" / stage / "model.safetensors") for name in ("one", "two"))
        assert one.keys() == two.keys()
        for key in one:
            torch.testing.assert_close(two[key], one[key], rtol=1e-4, atol=1e-5, msg=f"{stage} {key}")


def test_two_processes_record_the_loss_curve_of_the_whole_batch(runs: Path) -> None:
    one, two = (read_json(runs / "results" / name / "curves.json") for name in ("one", "two"))
    for kind in ("train", "validation"):
        assert [(p["stage"], p["step"]) for p in two[kind]] == [(p["stage"], p["step"]) for p in one[kind]]
        assert [p["loss"] for p in two[kind]] == pytest.approx([p["loss"] for p in one[kind]], rel=1e-4)


def test_two_processes_give_the_benchmark_curve_of_one(runs: Path) -> None:
    """The same points (stage, step, tokens seen, task, metric, items) on 1 and 2 processes; values equal but for the
    order of the gradient sums: losses within 1e-4, accuracies within one item."""
    one, two = (read_json(runs / "results" / name / "eval_curve.json")["points"] for name in ("one", "two"))
    key = ("stage", "step", "tokens_seen", "task", "metric", "n")
    assert sorted(tuple(p[k] for k in key) for p in two) == sorted(tuple(p[k] for k in key) for p in one)
    assert {(p["stage"], p["task"]) for p in one} >= {(s, t) for s in ("stage1", "stage2")
                                                      for t in ("validation", "rublimp", "parus_crowd_majority")}
    by_key = {tuple(p[k] for k in key): p["value"] for p in one}
    for point in two:
        expected = by_key[tuple(point[k] for k in key)]
        if point["metric"] in ("loss", "bits_per_byte"):
            assert point["value"] == pytest.approx(expected, rel=1e-4), point
        elif point["metric"] == "acc":
            assert abs(point["value"] - expected) <= 1 / point["n"] + 1e-9, point
