"""Figures of the paper, drawn with matplotlib's Agg canvas from ``results/<run>/*.json`` alone."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from reproduce.paper.tables import load_json, rel, run_dirs

DPI = 150
WIDTH = 7.0  # inches
# No timestamps or software versions in the files, so that a rebuild gives the same bytes.
SAVE_METADATA = {"pdf": {"CreationDate": None, "ModDate": None}, "png": {"Software": None}}


@dataclass(frozen=True)
class Plot:
    """A figure as data: ``name`` is the file stem, ``sources`` the results files it was read from."""

    name: str
    caption: str
    figure: Figure
    sources: list[str]


def render(fig: Figure) -> dict[str, bytes]:
    """The figure as PDF and PNG bytes, keyed by file suffix."""
    out = {}
    for fmt, metadata in SAVE_METADATA.items():
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)
        out[fmt] = buf.getvalue()
    return out


def _new_figure(height: float, nrows: int = 1) -> tuple[Figure, list[Any]]:
    fig = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, list(fig.subplots(nrows, 1, squeeze=False)[:, 0])


def _stage_offsets(train: list[dict[str, Any]]) -> dict[str, int]:
    """Tokens seen before each stage: a stage starts where the previous one's training tokens end."""
    offsets: dict[str, int] = {}
    total = 0
    for stage in dict.fromkeys(p["stage"] for p in train):
        offsets[stage] = total
        total += max(p["tokens"] for p in train if p["stage"] == stage)
    return offsets


def loss_vs_tokens(results_dir: Path, runs: list[str]) -> Plot:
    """Training and validation loss against cumulative tokens across stages, one panel per run."""
    dirs = run_dirs(results_dir, runs)
    paths = [d / "curves.json" for d in dirs]
    curves = [load_json(p) for p in paths]
    fig, axes = _new_figure(1.0 + 2.6 * len(dirs), nrows=len(dirs))
    for ax, run_dir, c in zip(axes, dirs, curves, strict=True):
        offsets = _stage_offsets(c["train"])
        for i, (stage, offset) in enumerate(offsets.items()):
            train = [p for p in c["train"] if p["stage"] == stage]
            val = [p for p in c["validation"] if p["stage"] == stage]
            ax.plot(
                [offset + p["tokens"] for p in train],
                [p["loss"] for p in train],
                color=f"C{i}",
                lw=1.0,
                label=f"{stage} train",
            )
            ax.plot(
                [offset + p["tokens"] for p in val],
                [p["loss"] for p in val],
                "o",
                color=f"C{i}",
                mec="black",
                ms=4,
                label=f"{stage} validation",
            )
            if offset:
                ax.axvline(offset, color="gray", ls="--", lw=1.0)
                ax.annotate(
                    f"{stage} starts",
                    (offset, 1.0),
                    xycoords=("data", "axes fraction"),
                    xytext=(3, -3),
                    textcoords="offset points",
                    va="top",
                    fontsize=8,
                    color="gray",
                )
        ax.set_title(f"run {run_dir.name}", fontsize=10)
        ax.set_xlim(left=0)
        ax.set_ylabel("loss (nats/token)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[-1].set_xlabel("tokens seen (cumulative across stages)")
    return Plot(
        name="loss_vs_tokens",
        caption="Training loss (lines) and validation loss (points) against tokens seen; "
        "dashed line: start of the next stage",
        figure=fig,
        sources=[rel(p, results_dir) for p in paths],
    )


def rublimp_per_phenomenon(results_dir: Path, runs: list[str]) -> Plot:
    """Horizontal bars of RuBLiMP accuracy per phenomenon for every (run, evaluated stage)."""
    paths = [d / "summary.json" for d in run_dirs(results_dir, runs)]
    series = [
        (f"{s['run']} {stage}", res)
        for s in (load_json(p) for p in paths)
        for stage, res in sorted(s.get("rublimp", {}).items())
    ]
    phenomena = sorted({ph for _, res in series for ph in res["per_phenomenon"]})
    n = max(len(series), 1)
    fig, (ax,) = _new_figure(1.6 + len(phenomena) * (0.08 + 0.08 * n))
    height = 0.8 / n
    for i, (label, res) in enumerate(series):
        ys = [j + (i - (n - 1) / 2) * height for j, ph in enumerate(phenomena) if ph in res["per_phenomenon"]]
        xs = [res["per_phenomenon"][ph] for ph in phenomena if ph in res["per_phenomenon"]]
        ax.barh(ys, xs, height=height, color=f"C{i}", label=label)
        ax.axvline(res["mean"], color=f"C{i}", ls="-.", lw=1.2, label=f"{label} mean {res['mean']:.3f}")
    ax.axvline(0.5, color="black", ls="--", lw=1.0, label="chance (0.5)")
    if not series:
        ax.text(0.5, 0.5, "RuBLiMP was not evaluated", ha="center", va="center", transform=ax.transAxes)
    ax.set_yticks(range(len(phenomena)), phenomena, fontsize=7)
    ax.set_ylim(len(phenomena) - 0.5, -0.5)
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy on minimal pairs")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, fontsize=8, frameon=False)
    return Plot(
        name="rublimp_per_phenomenon",
        caption="RuBLiMP accuracy per phenomenon for each evaluated stage, with the mean and the 50% chance line",
        figure=fig,
        sources=[rel(p, results_dir) for p in paths],
    )


def all_plots(results_dir: Path, runs: list[str]) -> list[Plot]:
    return [loss_vs_tokens(results_dir, runs), rublimp_per_phenomenon(results_dir, runs)]


def style() -> Any:
    """Matplotlib's default style, so that a user's matplotlibrc cannot change the output."""
    return matplotlib.style.context("default")
