"""The items of an evaluation set, for the contamination report: each one the texts of a row of the set's files.

``read_items`` reads a set's item texts from the files of its manifest (``contamination.sets.<name>``: by default each
benchmark folder's, reproduce/evaluate/benchmarks.py). An item is one row's texts; within a file, a row whose texts
repeat an earlier row's is the same item (PARus's source file holds three crowd votes per item; XWinograd asks about
a second pronoun of the same sentence; RuBLiMP repeats four pairs), so the counts are of distinct texts.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reproduce.core.errors import UserError
from reproduce.core.io import read_input_text
from reproduce.core.paths import config_file
from reproduce.data.manifest import read_manifest
from reproduce.evaluate.benchmarks import benchmark

if TYPE_CHECKING:
    from reproduce.config.schema import EvalTextsConfig

FORMATS = ("csv", "tsv", "jsonl")


@dataclass(frozen=True)
class Item:
    id: str  # "<set>:<file>:<row>" (row 0-based after the header)
    texts: tuple[str, ...]


def set_manifest(name: str, texts: EvalTextsConfig) -> Path:
    """The manifest of a set's files: the one it names, else its benchmark folder's manifest.tsv."""
    key = f"contamination.sets.{name}"
    if texts.manifest is None and texts.benchmark is not None:
        manifest = benchmark(texts.benchmark).manifest
        if manifest is None:
            raise UserError(f"{key}.benchmark={texts.benchmark!r}: its folder has no manifest.tsv (its data is on the "
                            "Hub); leave the set out")
        return manifest
    manifest = config_file(str(texts.manifest))
    if not manifest.is_file():
        raise UserError(f"{key}.manifest: {manifest} not found; give a manifest TSV (path, sha256, url)")
    return manifest


def read_items(name: str, texts: EvalTextsConfig, resolver: Any) -> list[Item]:
    """The items of set ``name``: every kept row's ``fields`` from the manifest's files that match ``files``.

    csv: comma-separated, or semicolon-separated where the header line has semicolons and no comma (PARus's
    ``assign_PARus.tsv``); tsv: tab-separated, no quoting; jsonl: one object a line, fields are its keys.
    """
    key = f"contamination.sets.{name}"
    fmt = str(texts.format)
    if fmt not in FORMATS:
        raise UserError(f"{key}.format: {fmt!r} is not one of {', '.join(FORMATS)}")
    fields = [str(f) for f in texts.fields]
    if not fields:
        raise UserError(f"{key}.fields: empty; name the columns that hold the item's texts")
    where = {str(k): str(v) for k, v in dict(texts.where).items()}
    header = bool(texts.header) if fmt != "jsonl" else True
    globs = [str(g) for g in texts.files]
    manifest = set_manifest(name, texts)
    listed = read_manifest(manifest)
    entries = [e for e in listed if any(fnmatch.fnmatch(Path(e.path).name, g) for g in globs)]
    if not entries:
        names = ", ".join(Path(e.path).name for e in listed)
        raise UserError(f"{key}.files: no file of {manifest} matches {globs} (its files: {names})")
    items: list[Item] = []
    for entry in entries:
        try:
            path = resolver.resolve(entry)
        except UserError as exc:
            raise UserError(f"{key}: {exc}") from None
        file_name = Path(entry.path).name
        seen: set[tuple[str, ...]] = set()
        for row, values in _rows(path, fmt, header, fields, where, key):
            if all(values[f] == v for f, v in where.items()):
                item_texts = tuple(values[f].strip() for f in fields)
                if item_texts not in seen:
                    seen.add(item_texts)
                    items.append(Item(f"{name}:{file_name}:{row}", item_texts))
    return items


def _rows(path: Path, fmt: str, header: bool, fields: list[str], where: dict[str, str],
          key: str) -> Iterable[tuple[int, dict[str, str]]]:
    """(row number after the header, {field: value}) for the fields and ``where`` keys of every row of a file."""
    try:
        text = read_input_text(path, encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{key}: {path} is unreadable ({exc}); fix or replace the file") from None
    wanted = list(dict.fromkeys([*fields, *where]))
    if fmt == "jsonl":
        yield from _jsonl_rows(path, text, fields, where, wanted, key)
        return
    if fmt == "tsv":
        lines = [(n, line.rstrip("\r")) for n, line in enumerate(text.split("\n"), 1) if line.strip()]
        rows: Iterable[tuple[int, list[str]]] = ((n, line.split("\t")) for n, line in lines)
    else:
        first = text.split("\n", 1)[0]
        delimiter = ";" if header and ";" in first and "," not in first else ","
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        rows = ((reader.line_num, cells) for cells in reader if cells)
    columns: list[str] | None = None
    index: dict[str, int] = {}
    row = 0
    try:
        for line, cells in rows:
            if columns is None:
                columns = cells if header else [str(i) for i in range(len(cells))]
                index = _column_index(columns, fields, where, path, key)
                if header:
                    continue
            if len(cells) != len(columns):
                raise UserError(f"{key}: {path} line {line}: {len(cells)} columns, expected {len(columns)} "
                                f"(a malformed row); fix the file or the set's format")
            yield row, {f: cells[index[f]] for f in wanted}
            row += 1
    except csv.Error as exc:
        raise UserError(f"{key}: {path}: not valid {fmt} ({exc}); fix the file or the set's format") from None
    if columns is None:
        raise UserError(f"{key}: {path} has no rows; fix the file")


def _column_index(columns: list[str], fields: list[str], where: dict[str, str], path: Path,
                  key: str) -> dict[str, int]:
    position = {c: i for i, c in enumerate(columns)}
    for what, names in (("fields", fields), ("where", list(where))):
        for f in names:
            if f not in position:
                hint = " (no header: columns are 0-based numbers)" if columns[0] == "0" else ""
                raise UserError(f"{key}.{what}: {f!r} is not a column of {path}; its columns: "
                                f"{', '.join(columns)}{hint}")
    return position


def _jsonl_rows(path: Path, text: str, fields: list[str], where: dict[str, str], wanted: list[str],
                key: str) -> Iterable[tuple[int, dict[str, str]]]:
    row = 0
    for line_no, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{key}: {path} line {line_no}: not a JSON object ({exc.msg}); fix the file") from None
        if not isinstance(obj, dict):
            raise UserError(f"{key}: {path} line {line_no}: not a JSON object; fix the file")
        if row == 0:
            _column_index(list(obj) or [""], fields, where, path, key)
        if missing := [f for f in wanted if f not in obj]:
            raise UserError(f"{key}: {path} line {line_no}: no field {missing[0]!r} (a malformed row); fix the file")
        if bad := [f for f in fields if not isinstance(obj[f], str)]:
            raise UserError(f"{key}: {path} line {line_no}: field {bad[0]!r} is not a string (a malformed row)")
        yield row, {f: obj[f] if isinstance(obj[f], str) else json.dumps(obj[f]) for f in wanted}
        row += 1
