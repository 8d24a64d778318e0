"""The paper's figures from the committed results/ and from added evaluated models: which figures, what they read,
the same bytes twice, the power-law fit, and clear failures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from matplotlib.axes import Axes

from reproduce.core.errors import UserError
from reproduce.paper.figures import all_plots, moving_average, power_law_fit
from reproduce.paper.plotting import Plot, figure_bytes
from reproduce.paper.reader import Results
from tests.paper_fixture import add_evaluated, add_released, copy_results

NAMES = ["loss_vs_tokens", "loss_by_position", "perplexity_vs_parameters", "task_accuracy", "throughput_mfu",
         "rublimp_per_phenomenon", "benchmarks_vs_tokens"]
PERF = ["perf/gpu_mfu.json", "perf/gpu_mfu_large_micro16.json", "perf/train_throughput_avx512.json",
        "perf/train_throughput_bf16.json", "perf/train_throughput_fp32.json"]
SPREAD = "results/mini/seed_spread.json"  # the seed runs' spread, drawn beside the reference seed
# An exact power law, ppl = 1000 N^-0.25, for three evaluated model sizes.
SIZES = {"tiny": 1_000_000, "small": 4_000_000, "base": 16_000_000}


def _ppl(parameters: float) -> float:
    return 1000.0 * parameters**-0.25


def _plots(root: Path) -> dict[str, Plot]:
    return {p.name: p for p in all_plots(Results(root), ["mini"])}


def _legend(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return copy_results(tmp_path)


def test_every_figure_from_the_committed_results_names_what_it_read(root: Path) -> None:
    plots = all_plots(Results(root), ["mini"])
    assert [p.name for p in plots] == NAMES
    sources = {p.name: p.sources for p in plots}
    assert sources == {
        "loss_vs_tokens": ["results/mini/curves.json"],
        "loss_by_position": ["results/mini/loss_by_position.json", "results/mini/summary.json"],
        "perplexity_vs_parameters": ["results/published/perplexity.csv", "results/published/architectures.csv",
                                     "results/mini/summary.json", SPREAD],
        "task_accuracy": ["results/mini/summary.json", SPREAD],
        "throughput_mfu": [f"results/{n}" for n in PERF],
        "rublimp_per_phenomenon": ["results/mini/summary.json"],
        "benchmarks_vs_tokens": ["results/mini/eval_curve.json", "results/mini/train.json", "results/mini/summary.json",
                                 SPREAD, "results/published/mera_medium.csv"],
    }
    assert all(p.caption and not p.caption.endswith(".") for p in plots)


def test_rendering_twice_gives_the_same_bytes(root: Path) -> None:
    first = [figure_bytes(p.figure) for p in all_plots(Results(root), ["mini"])]
    second = [figure_bytes(p.figure) for p in all_plots(Results(root), ["mini"])]
    assert first == second
    for out in first:
        assert out["pdf"].startswith(b"%PDF") and out["png"].startswith(b"\x89PNG")
        assert b"CreationDate" not in out["pdf"] and b"Software" not in out["png"]


def test_power_law_fit_recovers_an_exact_law() -> None:
    a, b = power_law_fit(list(SIZES.values()), [_ppl(n) for n in SIZES.values()])
    assert a == pytest.approx(1000.0, rel=1e-9)
    assert b == pytest.approx(-0.25, abs=1e-12)


def test_loss_by_position_windows_and_training_contexts(root: Path) -> None:
    ax = _plots(root)["loss_by_position"].figure.axes[0]
    thin, smooth = ax.lines[0], ax.lines[1]
    assert len(thin.get_xdata()) == 256  # the largest window of results/mini/loss_by_position.json
    np.testing.assert_allclose(smooth.get_ydata(), moving_average(thin.get_ydata()))
    assert {t.get_text() for t in ax.texts} == {"stage1 trained at 128", "stage2 trained at 256"}
    assert moving_average([1.0, 2.0, 3.0, 4.0, 5.0], width=3).tolist() == [1.5, 2.0, 3.0, 4.0, 4.5]


def test_the_power_law_fit_needs_three_sizes(root: Path) -> None:
    def fits(plot: Plot) -> list[str]:
        return [t for t in _legend(plot.figure.axes[0]) if "fit" in t]

    assert fits(_plots(root)["perplexity_vs_parameters"]) == []  # two published sizes, one run
    for name in ("tiny", "small"):
        add_evaluated(root, name, SIZES[name], _ppl(SIZES[name]), acc=0.6)
    assert fits(_plots(root)["perplexity_vs_parameters"]) == []
    add_evaluated(root, "base", SIZES["base"], _ppl(SIZES["base"]), acc=0.6)
    plot = _plots(root)["perplexity_vs_parameters"]
    (fit,) = fits(plot)
    assert fit.endswith("b = -0.250")
    assert set(SIZES) <= {t.get_text() for t in plot.figure.axes[0].texts}
    assert plot.sources[-3:] == [f"results/eval/{n}/perplexity.json" for n in sorted(SIZES)]


def test_evaluated_models_appear_in_task_accuracy(root: Path) -> None:
    for name, parameters in SIZES.items():
        add_evaluated(root, name, parameters, _ppl(parameters), acc=0.6)
    plot = _plots(root)["task_accuracy"]
    ax = plot.figure.axes[0]
    assert set(_legend(ax)) >= {"mini stage2", *SIZES}
    tasks = [t.get_text() for t in ax.get_yticklabels()]
    assert tasks == ["parus_crowd_majority", "rublimp", "rucola_indomain_dev", "xwinograd_ru_local"]
    assert plot.sources == ["results/mini/summary.json", *(f"results/eval/{n}/ru_local.json" for n in sorted(SIZES)),
                            SPREAD]


def test_a_folder_with_several_suites_labels_each_by_its_file(root: Path) -> None:
    add_evaluated(root, "tiny", SIZES["tiny"], _ppl(SIZES["tiny"]), acc=0.6)
    shutil.copy(root / "eval/tiny/ru_local.json", root / "eval/tiny/other.json")
    (root / "eval/tiny/notes.json").write_text(json.dumps({"no": "metrics"}), encoding="utf-8")
    plot = _plots(root)["task_accuracy"]
    assert {"tiny other", "tiny ru_local"} <= set(_legend(plot.figure.axes[0]))
    assert "results/eval/tiny/notes.json" not in plot.sources


def test_task_accuracy_marks_the_published_accuracy_of_released_checkpoints(root: Path) -> None:
    add_released(root, "large", 0, 0.41)  # tape.json and rucola_penlp.json
    add_released(root, "medium", 4, 0.35)  # tape_4shot.json
    add_evaluated(root, "tiny", SIZES["tiny"], _ppl(SIZES["tiny"]), acc=0.6)  # not a released checkpoint: no marks
    plot = _plots(root)["task_accuracy"]
    ax = plot.figure.axes[0]
    tasks = [t.get_text() for t in ax.get_yticklabels()]
    diamonds = sorted((round(float(x), 4), tasks[round(y)]) for line in ax.lines if line.get_marker() == "D"
                      for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True))
    # the leaderboard's large k = 0 and medium k = 4 `_acc` in percent, and RuCoLA's large in-domain dev accuracy
    assert diamonds == sorted([(0.392, "tape_winograd"), (0.408, "tape_ruworldtree"), (0.396, "tape_ruopenbookqa"),
                               (0.397, "tape_winograd"), (0.389, "tape_ruworldtree"), (0.363, "tape_ruopenbookqa"),
                               (0.6053, "rucola_penlp")])
    assert "published (released checkpoint)" in _legend(ax)
    assert {"results/published/tape_leaderboard.csv", "results/published/rucola_baselines.csv"} <= set(plot.sources)


def test_missing_curves_is_an_error_naming_the_file(root: Path) -> None:
    (root / "mini" / "curves.json").unlink()
    with pytest.raises(UserError, match=r"mini/curves\.json"):
        all_plots(Results(root), ["mini"])


def test_figures_without_data_are_left_out(root: Path) -> None:
    for name in ("loss_by_position", "eval_curve"):
        (root / "mini" / f"{name}.json").unlink()
    assert {"loss_by_position", "benchmarks_vs_tokens"}.isdisjoint(_plots(root))
    shutil.rmtree(root / "perf")
    summary = json.loads((root / "mini" / "summary.json").read_text(encoding="utf-8"))
    summary["rublimp"] = {}
    (root / "mini" / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    assert list(_plots(root)) == ["loss_vs_tokens", "perplexity_vs_parameters", "task_accuracy"]
