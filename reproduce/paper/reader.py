"""The paper's only view of ``results/``: each file read once, one clear line for a missing or malformed one, and
every number a table shows carried as a :class:`Num` that names the field it came from."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reproduce.core.errors import UserError
from reproduce.core.io import open_input_text
from reproduce.core.layout import EVAL, PERPLEXITY, SEED_SPREAD, SUMMARY
from reproduce.core.records import read_json_file, record_of

Key = tuple[str | int, ...]


@dataclass(frozen=True)
class Ref:
    """One field of a results file: ``file`` relative to ``results/``; ``key`` the JSON keys and list indices, or
    (row index, column) of a CSV; ``fmt`` how the cell shows it (see :func:`show`)."""

    file: str
    key: Key
    fmt: str


class Num(str):
    """A table cell made only of traced values: ``template.format(*(show(value, ref.fmt) for each ref))``."""

    refs: tuple[Ref, ...]
    values: tuple[Any, ...]
    template: str

    def __new__(cls, template: str, parts: Sequence[tuple[Any, Ref]]) -> Num:
        cell = super().__new__(cls, template.format(*(show(value, ref.fmt) for value, ref in parts)))
        cell.values = tuple(value for value, _ in parts)
        cell.refs = tuple(ref for _, ref in parts)
        cell.template = template
        return cell


# How a derived cell is computed from the values of its fields (ours first): differences in the published units.
OPERATIONS = {
    "percent": lambda ours: 100 * ours,  # a fraction shown in percent, as the published numbers are
    "percent_minus": lambda ours, published: 100 * ours - published,  # ours (a fraction) minus a published percent
    "minus": lambda ours, published: ours - published,
}


class Derived(Num):
    """A cell computed from traced values by one of ``OPERATIONS`` and shown with format spec ``fmt``; it carries its
    fields (``refs``, ``values``) like any :class:`Num`, and the traceability test recomputes it."""

    operation: str
    fmt: str

    def __new__(cls, operation: str, fmt: str, *cells: Num) -> Derived:
        values = tuple(v for c in cells for v in c.values)  # a CSV's are text: read as numbers
        cell = str.__new__(cls, format(OPERATIONS[operation](*map(float, values)), fmt))
        cell.values, cell.refs = values, tuple(r for c in cells for r in c.refs)
        cell.template, cell.operation, cell.fmt = "{}", operation, fmt
        return cell


def combine(template: str, *cells: str) -> str:
    """Cells in one (``"{} / {}"``): traced cells keep their fields, plain ones (—, n/r) become fixed text."""
    traced = [c for c in cells if isinstance(c, Num)]
    if not traced:
        return template.format(*cells)
    inner = [c.template if isinstance(c, Num) else c.replace("{", "{{").replace("}", "}}") for c in cells]
    return Num(template.format(*inner), [part for c in traced for part in zip(c.values, c.refs, strict=True)])


def show(value: Any, fmt: str) -> str:
    """A value as a cell shows it. ``fmt`` is a format spec (a CSV's text is read as a number first), ``"s"`` the
    value verbatim, or ``"text"`` free text on one line (line breaks as ⏎)."""
    if fmt == "text":
        return " ".join(str(value).replace("\n", " ⏎ ").split())
    if isinstance(value, str) and fmt != "s":
        value = float(value) if any(c in value for c in ".eE") else int(value)
    return format(value, fmt)


def walk(data: Any, key: Key) -> Any:
    """The value at ``key`` (keys and indices) inside ``data``; raises KeyError, IndexError or TypeError."""
    for part in key:
        data = data[part]
    return data


def missing(path: Path) -> UserError:
    return UserError(f"{path}: results file not found; run `make reproduce` first")


class Results:
    """``results/`` as the paper reads it. Files are named relative to it (``mini/summary.json``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._files: dict[str, Any] = {}

    def path(self, name: str) -> Path:
        return self.root / name

    def has(self, name: str) -> bool:
        return self.path(name).is_file()

    def glob(self, pattern: str) -> list[str]:
        """Names of the files matching ``pattern`` under ``results/``, sorted."""
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.glob(pattern) if p.is_file())

    def label(self, name: str) -> str:
        """How the paper names a results file: ``results/mini/summary.json``."""
        return f"{self.root.name}/{name}"

    def load(self, name: str) -> Any:
        """A JSON file's content (its record's fields checked), or a CSV's rows as dicts; a missing or malformed file
        fails with one line."""
        if name not in self._files:
            path = self.path(name)
            if not path.is_file():
                raise missing(path)
            if path.suffix == ".csv":
                self._files[name] = _read_csv(path)
            else:  # checked field by field where reproduce/core/records.py declares the file
                record = record_of(name)
                self._files[name] = _traced(record.read(path) if record else read_json_file(path), path)
        return self._files[name]

    def value(self, name: str, *key: str | int) -> Any:
        try:
            return walk(self.load(name), key)
        except (KeyError, IndexError, TypeError):  # a CSV's rows, or a key into a number
            raise no_field(self.path(name), key) from None

    def num(self, name: str, *key: str | int, fmt: str) -> Num:
        """The field ``key`` of ``name`` as one traced cell; one line if the field is no number the cell can show."""
        value = self.value(name, *key)
        try:
            return Num("{}", [(value, Ref(name, key, fmt))])
        except (TypeError, ValueError):
            raise UserError(f"{self.path(name)}: field {'.'.join(map(str, key))} is {value!r:.60}, which a table "
                            f"cell cannot show as {fmt!r}; fix the file") from None

    def published(self, name: str, columns: Sequence[str]) -> list[dict[str, str]]:
        """The rows of ``published/<name>``, checked: the ``columns`` and ``source`` exist, and a row with a value in
        any of ``columns`` has a source."""
        rows = self.load(f"published/{name}")
        path = self.path(f"published/{name}")
        header = list(rows[0]) if rows else _header(path)
        absent = [c for c in (*columns, "source") if c not in header]
        if absent:
            raise UserError(f"{path}: no column {', '.join(absent)}; restore the header from git")
        for i, row in enumerate(rows, start=2):
            if any(row[c] for c in columns) and not row["source"]:
                raise UserError(f"{path}: line {i} has a value but no source; name where it is printed")
        return rows


def no_field(path: Path, key: Key) -> UserError:
    return UserError(f"{path}: no field {'.'.join(map(str, key))}; regenerate the file (`make reproduce`)")


class _Object(dict):
    """A JSON object that names its file and field when a key is missing."""

    def __init__(self, items: dict[str, Any], path: Path, key: Key) -> None:
        super().__init__(items)
        self.where = (path, key)

    def __missing__(self, key: str) -> Any:
        raise no_field(self.where[0], (*self.where[1], key))


class _Array(list):
    """A JSON array that names its file and field when an index is out of range."""

    def __init__(self, items: list[Any], path: Path, key: Key) -> None:
        super().__init__(items)
        self.where = (path, key)

    def __getitem__(self, index: Any) -> Any:
        try:
            return super().__getitem__(index)
        except IndexError:
            raise no_field(self.where[0], (*self.where[1], index)) from None


def _traced(value: Any, path: Path, key: Key = ()) -> Any:
    if isinstance(value, dict):
        return _Object({k: _traced(v, path, (*key, k)) for k, v in value.items()}, path, key)
    if isinstance(value, list):
        return _Array([_traced(v, path, (*key, i)) for i, v in enumerate(value)], path, key)
    return value


def _header(path: Path) -> list[str]:
    with open_input_text(path, newline="") as f:
        return next(csv.reader(f), [])


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open_input_text(path, newline="") as f:
        lines = [cells for cells in csv.reader(f) if cells]
    if not lines:
        raise UserError(f"{path}: empty; restore its header from git")
    header = lines[0]
    for i, cells in enumerate(lines[1:], start=2):
        if len(cells) != len(header):
            raise UserError(f"{path}: row {i} has {len(cells)} cells, the header {len(header)}; fix the row")
    return [_Row(zip(header, cells, strict=True), path) for cells in lines[1:]]


class _Row(dict):
    """A CSV row that names its file when a column is missing."""

    def __init__(self, items: Any, path: Path) -> None:
        super().__init__(items)
        self.path = path

    def __missing__(self, column: str) -> Any:
        raise UserError(f"{self.path}: no column {column}; restore the header from git")


@dataclass(frozen=True)
class Scored:
    """A model scored on a suite: a run's stage (``results/<run>/summary.json``) or a ``reproduce eval`` model."""

    model: str  # the run, or the results/eval/<name>/ folder
    label: str  # the run's stage, or the suite
    file: str  # under results/
    key: Key  # where its metrics (task -> metric -> value) are in the file
    of_run: bool


def scored_models(results: Results, runs: Sequence[str]) -> list[Scored]:
    """Every scored run stage (the suite of each run's summary) and every ``results/eval/<model>/<suite>.json``, in
    that order: the one scan that tables and figures share."""
    scored = []
    for run in runs:
        name = f"{run}/{SUMMARY}"
        if results.has(name):
            scored += [Scored(run, stage, name, ("suite", stage), True)
                       for stage in sorted(results.load(name).get("suite", {}))]
    for name in results.glob(f"{EVAL}/*/*.json"):
        data = results.load(name) if not name.endswith("/" + PERPLEXITY) else None
        if isinstance(data, dict) and isinstance(data.get("metrics"), dict):
            scored.append(Scored(name.split("/")[1], name.rsplit("/", 1)[1].removesuffix(".json"), name,
                                 ("metrics",), False))
    return scored


def demonstrations(results: Results, scored: Scored) -> int:
    """k of a scored suite: the ``num_fewshot`` its results file records (0 for a run's stages, and when unset)."""
    return 0 if scored.of_run else int(results.load(scored.file).get("meta", {}).get("num_fewshot") or 0)


def eval_perplexities(results: Results) -> list[str]:
    """Every ``results/eval/<model>/perplexity.json`` (``reproduce eval`` with texts), sorted."""
    return results.glob(f"{EVAL}/*/{PERPLEXITY}")


def spread_cell(results: Results, run: str, metric: str, fmt: str) -> str | None:
    """"mean ± std (n runs)" of a headline metric over a run's seeds (results/<run>/seed_spread.json, written by
    reproduce compare), traced; None where the run has no spread of it."""
    name = f"{run}/{SEED_SPREAD}"
    if not results.has(name) or metric not in results.load(name)["metrics"]:
        return None
    return combine("{} ± {} ({} runs)", results.num(name, "metrics", metric, "mean", fmt=fmt),
                   results.num(name, "metrics", metric, "std", fmt=fmt),
                   results.num(name, "metrics", metric, "runs", fmt="d"))


def spread_std(results: Results, run: str, metric: str) -> float | None:
    """The standard deviation of a headline metric over a run's seeds, for the figures' error bars."""
    name = f"{run}/{SEED_SPREAD}"
    if not results.has(name):
        return None
    row = results.load(name)["metrics"].get(metric)
    return None if row is None else row["std"]
