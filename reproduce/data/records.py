"""What a document source yields (reproduce/data/sources.py): a raw ``Record``, or a ``Skip`` for a dirty one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Record:
    """One raw document, picklable: sent to worker processes."""
    id: str  # "<source>:<path>" | "<source>:<path>:<line>" (jsonl, 1-based) | "<source>:<path>:<row>" (parquet,
    # 0-based) | "<source>:<row>" (hf, 0-based); with id_field set: "<source>:<value of id_field>"
    source: str  # the source's name (key in data.sources)
    raw: bytes | str  # manifest, text: the file's bytes; jsonl, parquet, hf: the text field's value
    path: str  # the file (kind=manifest: the manifest path, e.g. "ruslit/prose/Chekhov/Агафья.txt"); hf: dataset
    line: int | None  # jsonl line (1-based) or parquet/hf row (0-based); None for whole files


@dataclass(frozen=True)
class Skip:
    """A dirty record: recorded in the prepared set's notes; preparation continues."""
    id: str
    source: str
    path: str
    line: int | None
    reason: str  # short, e.g. "line is not JSON (Expecting value)"
