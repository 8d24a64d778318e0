"""Figures of the paper, drawn with matplotlib's Agg canvas from ``results/`` alone (through :class:`Results`).

Every figure function takes ``(results, runs)`` and returns a :class:`Plot`, or ``None`` when none of its data
exist; ``loss_vs_tokens`` alone is mandatory. Figures are drawn and rendered under :func:`style`, so the bytes depend
on the results only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import FormatStrFormatter

from reproduce.core.errors import UserError
from reproduce.core.layout import CURVES, GPU_MFU_FILES, LOSS_BY_POSITION, SEED_SPREAD, SUMMARY
from reproduce.core.records import read_gpu_mfu, top_level_tasks
from reproduce.paper.baselines import RUCOLA, TAPE, published_accuracy
from reproduce.paper.benchmark_curves import benchmarks_vs_tokens
from reproduce.paper.plotting import (
    Plot,
    Series,
    bars_height,
    grouped_barh,
    legend_above,
    new_figure,
    styled,
)
from reproduce.paper.reader import Results, eval_perplexities, scored_models, spread_std

SMOOTH = 9  # positions in loss_by_position's moving average
PATHS = {"package": "package", "bare": "bare loop"}  # throughput: the training path as the figure names it
Point = tuple[str, float, float]  # a label, parameters and perplexity


# ------------------------------------------------------------------------------------------------- training


def _stage_offsets(train: list[dict[str, Any]]) -> dict[str, int]:
    """Tokens seen before each stage: a stage starts where the previous one's training tokens end."""
    offsets: dict[str, int] = {}
    total = 0
    for stage in dict.fromkeys(p["stage"] for p in train):
        offsets[stage] = total
        total += max(p["tokens"] for p in train if p["stage"] == stage)
    return offsets


def _mark(ax: Axes, x: float, text: str, color: str, ls: str) -> None:
    """A vertical line at ``x`` with ``text`` along its left side, from the top."""
    ax.axvline(x, color=color, ls=ls, lw=1.0)
    ax.annotate(text, (x, 1.0), xycoords=("data", "axes fraction"), xytext=(-2, -3), textcoords="offset points",
                ha="right", va="top", rotation=90, fontsize=7, color=color)


@styled
def loss_vs_tokens(results: Results, runs: list[str]) -> Plot:
    """Training and validation loss against cumulative tokens across stages, one panel per run."""
    names = [f"{run}/{CURVES}" for run in runs]
    fig, axes = new_figure(1.0 + 2.6 * len(runs), nrows=len(runs))
    for ax, run, name in zip(axes, runs, names, strict=True):
        curves = results.load(name)
        for i, (stage, offset) in enumerate(_stage_offsets(curves["train"]).items()):
            for kind, fmt, extra in (("train", "-", {}), ("validation", "o", {"mec": "black", "ms": 4})):
                points = [p for p in curves[kind] if p["stage"] == stage]
                ax.plot([offset + p["tokens"] for p in points], [p["loss"] for p in points], fmt, color=f"C{i}",
                        label=f"{stage} {kind}", **extra)
            if offset:
                _mark(ax, offset, f"{stage} starts", "gray", "--")
        ax.set_title(f"run {run}")
        ax.set_xlim(left=0)
        ax.set_ylabel("loss (nats/token)")
        ax.legend()
    axes[-1].set_xlabel("tokens seen (cumulative across stages)")
    return Plot("loss_vs_tokens", "Training loss (lines) and validation loss (points) against tokens seen; "
                "dashed line: start of the next stage", fig, [results.label(n) for n in names])


def moving_average(values: Sequence[float], width: int = SMOOTH) -> np.ndarray:
    """Centred mean over ``width`` positions; at the ends, over the positions that exist."""
    x = np.asarray(values, dtype=np.float64)
    sums = np.concatenate([[0.0], np.cumsum(x)])
    i = np.arange(len(x))
    lo, hi = np.maximum(i - width // 2, 0), np.minimum(i + width // 2 + 1, len(x))
    return (sums[hi] - sums[lo]) / (hi - lo)


@styled
def loss_by_position(results: Results, runs: list[str]) -> Plot | None:
    """Mean test loss at each position of the largest evaluated window, per stage, one panel per run that has it."""
    found = [run for run in runs if results.has(f"{run}/loss_by_position.json")]
    if not found:
        return None
    fig, axes = new_figure(1.0 + 2.6 * len(found), nrows=len(found))
    sources = []
    for ax, run in zip(axes, found, strict=True):
        name, summary = f"{run}/{LOSS_BY_POSITION}", f"{run}/{SUMMARY}"
        data = results.load(name)
        window = max(results.value(name, "windows"), key=int)
        trained = results.value(summary, "stages") if results.has(summary) else {}
        sources += [name] + ([summary] if trained else [])
        for i, stage in enumerate(results.value(name, "stages")):
            nll = results.value(name, "stages", stage, window)
            ax.plot(range(len(nll)), nll, color=f"C{i}", lw=0.5, alpha=0.45)
            ax.plot(range(len(nll)), moving_average(nll), color=f"C{i}", lw=1.8,
                    label=f"{stage} ({SMOOTH}-position mean)")
            if stage in trained:
                context = trained[stage]["context"]
                _mark(ax, context, f"{stage} trained at {context}", f"C{i}", ":")
        ax.set_title(f"run {run}: {data['windows'][window]} test windows of {window} tokens")
        ax.set_xlim(0, int(window))
        ax.set_ylabel("mean test loss (nats/token)")
        ax.legend(loc="lower left", ncol=2)
    axes[-1].set_xlabel("position in the window")
    return Plot("loss_by_position", "Mean test loss at each position of the largest evaluated window, per stage's "
                f"model (thin: each position; thick: centred {SMOOTH}-position mean, shorter at the ends); dotted: "
                "the context each stage trained at. Right of stage 1's line its model meets positions it never "
                "trained on: the gap there is what stage 2's doubled context buys", fig,
                [results.label(n) for n in sources])


# ------------------------------------------------------------------------------------------------- scaling


def power_law_fit(params: Sequence[float], values: Sequence[float]) -> tuple[float, float]:
    """``(a, b)`` of ``value = a * params**b``, least squares on log10 of both."""
    b, log_a = np.polyfit(np.log10(np.asarray(params, float)), np.log10(np.asarray(values, float)), 1)
    return float(10**log_a), float(b)


def display_fit(a: float, b: float) -> tuple[float, float]:
    """The fit as the figure shows it: ``b`` to the 3 decimals of its legend, ``a`` to 4 significant digits. The least
    squares' last bits depend on the CPU's instruction set; the drawn line must not, so that the PNG is the same
    everywhere."""
    return float(f"{a:.4g}"), round(b, 3)


def _published_points(results: Results) -> tuple[list[Point], list[str]]:
    """(label, parameters, perplexity) of each model card that reports a test perplexity, and the files read."""
    if not results.has("published/perplexity.csv"):
        return [], []
    rows = [r for r in results.published("perplexity.csv", ["test_perplexity"]) if r["test_perplexity"]]
    if not rows:
        return [], ["published/perplexity.csv"]
    params = {r["model"]: r["parameters"] for r in results.published("architectures.csv", ["parameters"])}
    for r in rows:
        if not params.get(r["model"]):
            raise UserError(f"{results.path('published/architectures.csv')}: no parameters for model {r['model']}, "
                            "which published/perplexity.csv reports; add its row")
    points = [(f"ruGPT-3 {r['model']}", float(params[r["model"]]), float(r["test_perplexity"])) for r in rows]
    return points, ["published/perplexity.csv", "published/architectures.csv"]


def _run_points(results: Results, runs: list[str]) -> tuple[list[Point], list[str], dict[str, float]]:
    """Each run's last evaluated stage at its largest context, the files read, and each point's standard deviation
    over the run's seeds where it has seed runs."""
    points, sources, errors = [], [], {}
    for run in runs:
        name = f"{run}/{SUMMARY}"
        rows = results.load(name).get("perplexity") if results.has(name) else None
        if rows:
            stage = rows[-1]["stage"]
            row = max((r for r in rows if r["stage"] == stage), key=lambda r: r["context"])
            parameters = results.value(name, "stages", stage, "parameters")
            label = f"{run} {stage} (context {row['context']})"
            points.append((label, float(parameters), row["perplexity"]))
            sources.append(name)
            std = spread_std(results, run, f"{stage} perplexity @{row['context']}")
            if std is not None:
                errors[label] = std
                sources.append(f"{run}/{SEED_SPREAD}")
    return points, sources, errors


def _eval_points(results: Results) -> tuple[list[Point], list[str]]:
    """Each ``reproduce eval`` perplexity with a parameter count, labelled by its folder, and the files read."""
    names = [n for n in eval_perplexities(results) if results.load(n).get("parameters")]
    points = [(n.split("/")[1], float(results.value(n, "parameters")), results.value(n, "perplexity")) for n in names]
    return points, names


@styled
def perplexity_vs_parameters(results: Results, runs: list[str]) -> Plot | None:
    """Test perplexity against parameters, log-log, with a power-law fit for a series of 3 or more sizes."""
    run_points, run_sources, errors = _run_points(results, runs)
    series = [("published (model cards)", "s", *_published_points(results)),
              ("our runs (their test split)", "o", run_points, run_sources),
              ("reproduce eval (its texts)", "^", *_eval_points(results))]
    if not any(points for _, _, points, _ in series):
        return None
    fig, (ax,) = new_figure(4.2)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.margins(0.1)
    for i, (label, marker, points, _) in enumerate(series):
        if not points:
            continue
        labels, params, ppl = zip(*points, strict=True)
        ax.plot(params, ppl, marker, color=f"C{i}", mec="black", ms=5, label=label)
        for text, x, y in points:
            ax.annotate(text, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7)
            if text in errors:  # the spread over the run's seeds: mean ± std would hide the point's own seed
                ax.errorbar([x], [y], yerr=[errors[text]], fmt="none", ecolor="black", capsize=3, lw=0.8)
        if len(set(params)) >= 3:
            a, b = display_fit(*power_law_fit(params, ppl))
            xs = np.geomspace(min(params), max(params), 50)
            ax.plot(xs, a * xs**b, "--", color=f"C{i}", label=f"{label} fit: ppl = a·N^b, b = {b:.3f}")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("test perplexity")
    for axis in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
        axis(FormatStrFormatter("%g"))
    ax.legend()
    sources = [results.label(n) for _, _, _, names in series for n in names]
    return Plot("perplexity_vs_parameters", "Test perplexity against parameters (log-log); dashed: power-law fit "
                "ppl = a·N^b of a series with at least 3 sizes; error bars: ± one standard deviation over a run's "
                "seeds. The published perplexities (model cards) and ours "
                "use different test sets and tokenizers: compare slopes, not levels", fig, sources)


# ------------------------------------------------------------------------------------------------- evaluation


def _accuracies(tasks: dict[str, Any]) -> dict[str, float]:
    return {task: m["acc"] for task, m in tasks.items() if isinstance(m, dict) and "acc" in m}


def _seed_errors(results: Results, scored: Any, tasks: list[str]) -> dict[str, float]:
    """The standard deviation of each task's accuracy over a run stage's seeds (none for reproduce eval models)."""
    if not scored.of_run:
        return {}
    found = {task: spread_std(results, scored.model, f"{scored.label} {task} acc") for task in tasks}
    return {task: std for task, std in found.items() if std is not None}


@styled
def task_accuracy(results: Results, runs: list[str]) -> Plot | None:
    """Accuracy per top-level task of every evaluated model: each run's stages and each ``reproduce eval`` suite."""
    scored = scored_models(results, runs)
    per_model = Counter(s.model for s in scored if not s.of_run)
    series: list[Series] = [(f"{s.model} {s.label}" if s.of_run or per_model[s.model] > 1 else s.model,
                             _accuracies(results.value(s.file, *s.key))) for s in scored]
    sources = list(dict.fromkeys(s.file for s in scored))
    present = {task for _, values in series for task in values}
    tasks = top_level_tasks(present)
    kept = [((label, {t: v for t, v in values.items() if t in tasks}), published_accuracy(results, s),
             _seed_errors(results, s, tasks)) for (label, values), s in zip(series, scored, strict=True)]
    series, marks, errors = ([item[k] for item in kept if item[0][1]] for k in range(3))
    if not series:
        return None
    fig, (ax,) = new_figure(bars_height(len(tasks), len(series)))
    grouped_barh(ax, tasks, series, chance=0.5, value_fmt="%.3f" if len(series) <= 4 else None, marks=marks,
                  errors=errors)
    if any(errors):
        sources += [f"{s.model}/{SEED_SPREAD}" for s in scored if s.of_run and results.has(f"{s.model}/{SEED_SPREAD}")]
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy")
    legend_above(ax)
    if any(marks):
        sources += [f"published/{name}" for name in (TAPE, RUCOLA)]
    return Plot("task_accuracy", "Accuracy (acc) per task of every evaluated model, top-level tasks only: each run's "
                "evaluated stages and each model scored by `reproduce eval`; dashed: 0.5; diamonds: the published "
                "accuracy of a released checkpoint (the TAPE leaderboard at the file's k, RuCoLA PenLP in-domain dev); "
                "whiskers: ± one standard deviation over a run's seeds", fig,
                [results.label(n) for n in dict.fromkeys(sources)])


@styled
def rublimp_per_phenomenon(results: Results, runs: list[str]) -> Plot | None:
    """RuBLiMP accuracy per phenomenon for every (run, evaluated stage), with each one's mean."""
    names = [n for n in (f"{run}/{SUMMARY}" for run in runs) if results.has(n) and results.load(n).get("rublimp")]
    if not names:
        return None
    scores = [(f"{results.load(n)['run']} {stage}", res) for n in names
              for stage, res in sorted(results.load(n)["rublimp"].items())]
    phenomena = sorted({ph for _, res in scores for ph in res["per_phenomenon"]})
    fig, (ax,) = new_figure(bars_height(len(phenomena), len(scores)))
    grouped_barh(ax, phenomena, [(label, res["per_phenomenon"]) for label, res in scores], chance=0.5)
    for i, (label, res) in enumerate(scores):
        ax.axvline(res["mean"], color=f"C{i}", ls="-.", lw=1.2, label=f"{label} mean {res['mean']:.3f}")
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy on minimal pairs")
    legend_above(ax)
    return Plot("rublimp_per_phenomenon", "RuBLiMP accuracy per phenomenon for each evaluated stage, with the mean "
                "and the 50% chance line", fig, [results.label(n) for n in names])


# ------------------------------------------------------------------------------------------------- throughput


def _throughput_records(results: Results) -> tuple[list[dict[str, Any]], list[str]]:
    """One record per (device, precision, configuration, path) from the GPU and CPU benchmarks, sorted; an identical
    configuration in several files counts once, from the first file by name."""
    records: dict[tuple[Any, ...], dict[str, Any]] = {}
    gpu, cpu = results.glob(GPU_MFU_FILES), results.glob("perf/train_throughput_*.json")
    for name in gpu:
        measured = read_gpu_mfu(results.path(name))
        device, precision = measured.device, measured.precision
        for r in measured.runs:
            config = f"{r.model} {r.context}×{r.micro_batch}" + "".join(f" {v}" for v in r.variant)
            key = (device, precision, r.model, r.context, r.micro_batch, r.variant, r.path)
            records.setdefault(key, {"device": device, "precision": precision, "config": config, "path": r.path,
                                     "mfu": r.mfu, "tokens_per_second": r.tokens_per_second})
    for name in cpu:
        machine = results.value(name, "machine")
        capability = f" {machine['cpu_capability']}" if machine.get("cpu_capability") else ""  # AVX2, AVX512, ...
        device, model = f"{machine['cpu']}{capability} ({machine['cpus']} CPUs)", results.value(name, "model")
        for r in results.value(name, "rows"):
            for path, field in (("package", "package_tokens_per_s"), ("bare", "bare_loop_tokens_per_s")):
                key = (device, r["precision"], model, 0, 0, (), path)
                records.setdefault(key, {"device": device, "precision": r["precision"], "config": model,
                                         "path": path, "mfu": None, "tokens_per_second": r[field]})
    return [records[k] for k in sorted(records)], gpu + cpu


def _by_path(records: list[dict[str, Any]], field: str, label: Callable[[dict[str, Any]], str],
             scale: float = 1.0) -> tuple[list[str], list[Series]]:
    """Categories (in record order) and one series per training path of ``field``."""
    categories = list(dict.fromkeys(label(r) for r in records))
    series = [(shown, {label(r): r[field] * scale for r in records if r["path"] == path})
              for path, shown in PATHS.items()]
    return categories, [s for s in series if s[1]]


@styled
def throughput_mfu(results: Results, runs: list[str]) -> Plot | None:
    """Model FLOPs utilization of each GPU configuration, and training tokens/s of every device's configurations;
    the package's training step beside a bare PyTorch loop."""
    records, sources = _throughput_records(results)
    if not records:
        return None
    gpu = [r for r in records if r["mfu"] is not None]
    machines = sorted({(r["device"], r["precision"]) for r in gpu})
    one = len(machines) == 1
    panels = []
    if gpu:
        cats, series = _by_path(gpu, "mfu", lambda r: r["config"] if one else
                                f"{r['device']}, {r['precision']}\n{r['config']}", scale=100.0)
        title = f"model FLOPs utilization on {machines[0][0]} ({machines[0][1]})" if one else "model FLOPs utilization"
        panels.append((cats, series, title, "MFU (%)", "%.1f"))
    cats, series = _by_path(records, "tokens_per_second", lambda r: f"{r['device']}\n{r['config']}, {r['precision']}")
    panels.append((cats, series, "training throughput", "tokens/s (log scale)", "{:,.0f}"))
    ratios = [bars_height(len(p[0]), len(p[1])) for p in panels]
    fig, axes = new_figure(sum(ratios), nrows=len(panels), ratios=ratios)
    for ax, (cats, series, title, xlabel, fmt) in zip(axes, panels, strict=True):
        values = [v for _, s in series for v in s.values()]
        if xlabel.startswith("tokens"):
            ax.set_xscale("log")
            ax.set_xlim(min(values) / 2, max(values) * 8)
        else:
            ax.set_xlim(0, max(values) * 1.15)
        grouped_barh(ax, cats, series, value_fmt=fmt)
        ax.set_xlabel(xlabel)
        legend_above(ax, title)
    return Plot("throughput_mfu", "Training speed of the package's step and of a bare PyTorch loop on the same "
                "configuration: model FLOPs utilization on the GPU, and tokens per second on every device (GPU and "
                "CPU benchmarks)", fig, [results.label(n) for n in sources])


# ------------------------------------------------------------------------------------------------- all


def all_plots(results: Results, runs: list[str]) -> list[Plot]:
    """Every figure whose data exist, in the paper's order; a missing ``<run>/curves.json`` is an error."""
    figures = (loss_vs_tokens, loss_by_position, perplexity_vs_parameters, task_accuracy, throughput_mfu,
               rublimp_per_phenomenon, benchmarks_vs_tokens)
    return [plot for fn in figures if (plot := fn(results, runs)) is not None]
