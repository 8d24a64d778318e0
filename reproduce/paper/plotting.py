"""What every figure of the paper shares: one style on matplotlib's Agg canvas, byte-stable rendering (no timestamps
or versions in the files), the :class:`Plot` that carries a figure with its sources, and the grouped bars."""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.style
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 150
WIDTH = 7.0  # inches
# No timestamps or software versions in the files, so that a rebuild gives the same bytes.
SAVE_METADATA = {"pdf": {"CreationDate": None, "ModDate": None}, "png": {"Software": None}}
# One look for every figure, on top of matplotlib's defaults (a user's matplotlibrc cannot change it).
RC = {
    "font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 7, "legend.frameon": False, "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.6,
    "axes.spines.top": False, "axes.spines.right": False, "lines.linewidth": 1.0,
}

Series = tuple[str, dict[str, float]]  # a label and its value per category
Point = tuple[str, float, float]  # a label, parameters and perplexity


@dataclass(frozen=True)
class Plot:
    """A figure as data: ``name`` is the file stem, ``sources`` the results files it was read from."""

    name: str
    caption: str
    figure: Figure
    sources: list[str]


def style() -> Any:
    """Matplotlib's default style plus the paper's :data:`RC`, as a context manager."""
    return matplotlib.style.context(["default", RC])


def styled(fn: Callable[..., Plot | None]) -> Callable[..., Plot | None]:
    """Draw under :func:`style` whatever the caller's settings."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Plot | None:
        with style():
            return fn(*args, **kwargs)

    return wrapper


def figure_bytes(fig: Figure) -> dict[str, bytes]:
    """The figure as PDF and PNG bytes, keyed by file suffix."""
    out = {}
    with style():
        for fmt, metadata in SAVE_METADATA.items():
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)
            out[fmt] = buf.getvalue()
    return out


def new_figure(height: float, nrows: int = 1, ratios: Sequence[float] | None = None) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, 1, squeeze=False, gridspec_kw={"height_ratios": ratios} if ratios else None)
    return fig, list(axes[:, 0])


def legend_above(ax: Axes, title: str | None = None, ncol: int = 2) -> None:
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=ncol, title=title, alignment="left")


def bars_height(n_categories: int, n_series: int) -> float:
    """Inches of a grouped bar panel."""
    return 0.9 + n_categories * (0.1 + 0.09 * max(n_series, 1))


def grouped_barh(ax: Axes, categories: list[str], series: list[Series], chance: float | None = None,
                  value_fmt: str | None = None, marks: list[dict[str, float]] | None = None,
                  errors: list[dict[str, float]] | None = None) -> None:
    """One row per category, top to bottom, with one bar per series (none where a series lacks the category);
    ``chance`` a dashed reference line, ``value_fmt`` the values written at the bars' ends, ``marks`` a value per
    series and category drawn as a diamond on that series' bar row (the published counterpart), ``errors`` a
    standard deviation per series and category drawn as a whisker."""
    height = 0.8 / max(len(series), 1)
    marked = False
    for i, (label, values) in enumerate(series):
        rows = [j for j, c in enumerate(categories) if c in values]
        offset = (i - (len(series) - 1) / 2) * height
        spread = errors[i] if errors else {}
        bars = ax.barh([j + offset for j in rows], [values[categories[j]] for j in rows], height=height,
                       color=f"C{i}", label=label, xerr=[spread.get(categories[j], 0.0) for j in rows] if spread
                       else None, error_kw={"elinewidth": 0.8, "capsize": 2})
        if value_fmt:
            ax.bar_label(bars, fmt=value_fmt, padding=2, fontsize=6)
        points = [(marks[i][c], j + offset) for j, c in enumerate(categories) if marks and c in marks[i]]
        if points:
            ax.plot(*zip(*points, strict=True), "D", mfc="white", mec="black", ms=4,
                    label="_" if marked else "published (released checkpoint)")
            marked = True
    if chance is not None:
        ax.axvline(chance, color="black", ls="--", lw=1.0, label=f"chance ({chance})")
    ax.set_yticks(range(len(categories)), categories)
    ax.set_ylim(len(categories) - 0.5, -0.5)
    ax.grid(False, axis="y")
