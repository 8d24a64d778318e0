"""The benchmarks-over-training figure from a run's eval_curve.json: a panel per benchmark against tokens seen, the
stage boundary, the final full-suite value with its seed spread, the published reference, and paper/README.md's
entry; the same bytes twice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reproduce.core.io import read_json, write_json
from reproduce.paper.benchmark_curves import benchmarks_vs_tokens
from reproduce.paper.build import render_paper
from reproduce.paper.figures import all_plots
from reproduce.paper.plotting import figure_bytes
from reproduce.paper.reader import Results
from tests.paper_fixture import META, copy_results

TASKS = {"validation": "bits_per_byte", "rublimp": "acc", "xwinograd_ru_local": "acc", "parus_crowd_majority": "acc"}


def _curve(root: Path) -> list[dict]:
    """A synthetic eval_curve.json for the committed mini run: two points in stage 1, one in stage 2."""
    stages = read_json(root / "mini" / "train.json")["stages"]
    first = stages["stage1"]["tokens"]
    points = []
    for stage, step, per_step, before in (("stage1", 976, 1024, 0), ("stage1", 3094, 1024, 0),
                                          ("stage2", 359, 2048, first)):
        for i, (task, metric) in enumerate(TASKS.items()):
            points.append({"stage": stage, "step": step, "tokens": step * per_step,
                           "tokens_seen": before + step * per_step, "task": task, "metric": metric,
                           "value": 0.5 + 0.01 * i + step / 1e5, "n": 8, "source": "in_training"})
    write_json(root / "mini" / "eval_curve.json", {"meta": META, "points": points})
    return points


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return copy_results(tmp_path)


def test_no_curve_no_figure(root: Path) -> None:
    (root / "mini" / "eval_curve.json").unlink()  # the committed mini run has its curve
    assert benchmarks_vs_tokens(Results(root), ["mini"]) is None


def test_each_benchmark_against_tokens_with_boundary_final_spread_and_reference(root: Path) -> None:
    points = _curve(root)
    plot = benchmarks_vs_tokens(Results(root), ["mini"])
    axes = plot.figure.axes
    assert [ax.get_title() for ax in axes] == ["validation bits per byte", "parus_crowd_majority", "rublimp",
                                              "xwinograd_ru_local"]
    stages = read_json(root / "mini" / "train.json")["stages"]
    summary = read_json(root / "mini" / "summary.json")["suite"]["stage2"]
    spread = read_json(root / "mini" / "seed_spread.json")["metrics"]
    for ax in axes:
        task = next(t for t in TASKS if t == ax.get_title() or ax.get_title().startswith("validation") and t ==
                    "validation")
        line = next(li for li in ax.get_lines() if li.get_label() == "mini")
        mine = sorted((p["tokens_seen"], p["value"]) for p in points if p["task"] == task)
        assert list(line.get_xdata()) == [x for x, _ in mine] and list(line.get_ydata()) == [y for _, y in mine]
        boundary = [li for li in ax.get_lines() if li.get_linestyle() == "--"]
        assert [li.get_xdata()[0] for li in boundary] == [stages["stage1"]["tokens"]]
        finals = [c for c in ax.containers if c.get_label().startswith("mini stage2 final")]
        if task == "validation":
            assert not finals
            continue
        (final,) = finals
        point, _, (bar,) = final.lines
        assert point.get_ydata()[0] == summary[task]["acc"]
        assert point.get_xdata()[0] == stages["stage1"]["tokens"] + stages["stage2"]["tokens"]
        (low, high), = [(a[1], b[1]) for a, b in bar.get_segments()]
        assert np.isclose(high - low, 2 * spread[f"stage2 {task} acc"]["std"])
        published = [li for li in ax.get_lines() if "(published)" in li.get_label()]
        assert [li.get_ydata()[0] for li in published] == ([0.498] if task == "parus_crowd_majority" else [])
    assert plot.sources == ["results/mini/eval_curve.json", "results/mini/train.json", "results/mini/summary.json",
                            "results/mini/seed_spread.json", "results/published/mera_medium.csv"]


def test_the_paper_draws_and_indexes_it_the_same_twice(root: Path) -> None:
    _curve(root)
    assert all_plots(Results(root), ["mini"])[-1].name == "benchmarks_vs_tokens"
    files, _ = render_paper(root, ["mini"])
    assert "figures/benchmarks_vs_tokens.{pdf,png}" in files["README.md"].decode("utf-8")
    again = figure_bytes(benchmarks_vs_tokens(Results(root), ["mini"]).figure)
    assert again["pdf"] == files["figures/benchmarks_vs_tokens.pdf"]
