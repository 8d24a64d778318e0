"""The benchmarks-over-training figure: each benchmark of results/<run>/eval_curve.json (in the loop, and kept
checkpoints scored after the run) against tokens seen across both stages, with the stage boundary, the final
full-suite value of each evaluated stage (summary.json) and its seed spread (seed_spread.json), and the published
value of a released checkpoint where results/published has one for that task."""

from __future__ import annotations

from typing import Any

from matplotlib.axes import Axes

from reproduce.core.layout import EVAL_CURVE, SEED_SPREAD, SUMMARY, TRAIN
from reproduce.paper.plotting import Plot, new_figure, styled
from reproduce.paper.reader import Results, spread_std

# A published score of a released checkpoint on the same benchmark (its own protocol): task -> (file, row's column
# and value, the score's column, label). MERA scores PARus with its own prompts, ruGPT-3 medium.
PUBLISHED = {"parus_crowd_majority": ("mera_medium.csv", ("task", "PARus"), "value", "ruGPT-3 medium, MERA")}
METRIC = {"validation": "bits_per_byte"}  # the metric drawn for a task (else acc)


def _boundaries(results: Results, run: str) -> list[tuple[str, int]]:
    """Tokens seen where each stage after the first starts (train.json), with the stage's name."""
    name = f"{run}/{TRAIN}"
    if not results.has(name):
        return []
    stages, seen, marks = results.value(name, "stages"), 0, []
    for i, (stage, record) in enumerate(stages.items()):
        if i:
            marks.append((stage, seen))
        seen += record["tokens"]
    return marks


def _finals(results: Results, run: str, task: str, end: int) -> list[tuple[str, float, float, float | None]]:
    """Each evaluated stage's final full-suite value of ``task`` (summary.json): (stage, tokens seen, value, seed
    std)."""
    name, train = f"{run}/{SUMMARY}", f"{run}/{TRAIN}"
    if task == "validation" or not results.has(name):
        return []
    seen, ends = 0, {}
    for stage, record in (results.value(train, "stages") if results.has(train) else {}).items():
        seen += record["tokens"]
        ends[stage] = seen
    suite = results.load(name).get("suite", {})
    return [(stage, ends.get(stage, end), metrics[task]["acc"], spread_std(results, run, f"{stage} {task} acc"))
            for stage, metrics in sorted(suite.items()) if "acc" in metrics.get(task, {})]


def _published(results: Results, task: str) -> tuple[float, str] | None:
    if task not in PUBLISHED or not results.has(f"published/{PUBLISHED[task][0]}"):
        return None
    file, (column, row), value, label = PUBLISHED[task]
    found = [r for r in results.load(f"published/{file}") if r[column] == row]
    return (float(found[0][value]), label) if found else None


def _panel(ax: Axes, results: Results, runs: list[str], task: str, sources: list[str]) -> None:
    metric = METRIC.get(task, "acc")
    for i, run in enumerate(runs):
        points = sorted((p["tokens_seen"], p["value"]) for p in results.value(f"{run}/{EVAL_CURVE}", "points")
                        if p["task"] == task and p["metric"] == metric)
        if not points:
            continue
        ax.plot([x for x, _ in points], [y for _, y in points], "o-", color=f"C{i}", ms=3, label=f"{run}")
        for stage, seen in _boundaries(results, run):
            ax.axvline(seen, color="gray", ls="--", lw=1.0)
            ax.annotate(f"{stage} starts", (seen, 1.0), xycoords=("data", "axes fraction"), xytext=(-2, -3),
                        textcoords="offset points", ha="right", va="top", rotation=90, fontsize=7, color="gray")
            sources.append(f"{run}/{TRAIN}")
        for stage, seen, value, std in _finals(results, run, task, points[-1][0]):
            ax.errorbar([seen], [value], yerr=None if std is None else [std], fmt="D", color=f"C{i}", ms=5, capsize=3,
                        mec="black", label=f"{run} {stage} final, full suite" + (" ± seed std" if std else ""))
            sources += [f"{run}/{SUMMARY}"] + ([f"{run}/{SEED_SPREAD}"] if std is not None else [])
    if (published := _published(results, task)) is not None:
        ax.axhline(published[0], color="black", ls=":", lw=1.0, label=f"{published[1]} (published)")
        sources.append(f"published/{PUBLISHED[task][0]}")
    ax.set_title(task if task != "validation" else "validation bits per byte")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)


@styled
def benchmarks_vs_tokens(results: Results, runs: list[str]) -> Plot | None:
    """One panel per benchmark of the runs' eval_curve.json files, against tokens seen; None where no run has one."""
    found = [run for run in runs if results.has(f"{run}/{EVAL_CURVE}")]
    if not found:
        return None
    points: list[dict[str, Any]] = [p for run in found for p in results.value(f"{run}/{EVAL_CURVE}", "points")]
    tasks = sorted({p["task"] for p in points}, key=lambda t: (t != "validation", t))
    fig, axes = new_figure(0.6 + 2.2 * len(tasks), nrows=len(tasks))
    sources = [f"{run}/{EVAL_CURVE}" for run in found]
    for ax, task in zip(axes, tasks, strict=True):
        _panel(ax, results, found, task, sources)
        ax.set_xlim(left=0)
    axes[-1].set_xlabel("tokens seen (cumulative across stages)")
    return Plot("benchmarks_vs_tokens", "Benchmarks over training: each task's accuracy (the first items of each "
                "task; of RuBLiMP, a seeded few of every phenomenon) and the validation bits per byte against tokens "
                "seen, scored in the loop or on kept checkpoints (results/<run>/eval_curve.json); dashed: the next "
                "stage starts; diamonds: the stage's final score on the whole suite, ± one standard deviation over "
                "the run's seeds; dotted: the published score of a released checkpoint (its own protocol)", fig,
                [results.label(n) for n in dict.fromkeys(sources)])
