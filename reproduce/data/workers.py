"""What the worker processes of ``prepare`` run: a document's text, and its tokens. Light imports only (no torch).

Each worker holds the pass's settings (cleaning per source, line limit, tokenizer, decontamination n-grams), set once
by ``init``; a task is a batch of records and comes back as a list in the same order.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from reproduce.data.corpus import Text, to_text
from reproduce.data.records import Record, Skip

_STATE: dict[str, Any] = {}
PIECE_CHARACTERS = 1 << 16  # a long document is tokenized in pieces of about this size (same ids, less memory)


def init(cleaners: dict[str, str], max_line_chars: int, tokenizer_file: str | None = None, eos: int | None = None,
         drop: Any = None) -> None:
    """Settings of a pass; ``drop``: an ``EvalNgrams`` whose matches remove a train document (or None)."""
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per worker: the workers are the parallelism
    _STATE.clear()
    _STATE.update(cleaners=cleaners, max_line_chars=max_line_chars, eos=eos, drop=drop, tokenizer=None)
    if tokenizer_file is not None:
        from tokenizers import Tokenizer

        _STATE["tokenizer"] = Tokenizer.from_file(tokenizer_file)


def _text(record: Record) -> Text:
    return to_text(record, _STATE["cleaners"][record.source], _STATE["max_line_chars"])


def measure(records: list[Record | Skip]) -> list[tuple[int | None, str | None, str | None]]:
    """Each record's cleaned length in characters (None if skipped), encoding and reason for a skip."""
    out: list[tuple[int | None, str | None, str | None]] = []
    for record in records:
        if isinstance(record, Skip):
            out.append((None, None, record.reason))
            continue
        text = _text(record)
        out.append((None if text.text is None else len(text.text), text.encoding, text.skipped))
    return out


def texts(records: list[Record]) -> list[str | None]:
    """Each record's cleaned text (None if it is skipped)."""
    return [_text(record).text for record in records]


def pieces(text: str, size: int) -> list[str]:
    """``text`` cut after newlines into pieces of about ``size`` characters (a longer line stays whole).

    Cleaned text has one paragraph a line and no whitespace around the newlines, so a byte-level BPE gives the same
    ids piece by piece as for the whole (its pre-tokenizer ends a token at every newline); the pieces bound the
    memory a very long document takes in the tokenizer.
    """
    out, start = [], 0
    while len(text) - start > size:
        cut = text.find("\n", start + size)
        if cut < 0:
            break
        out.append(text[start : cut + 1])
        start = cut + 1
    out.append(text[start:])
    return out


def tokenize(batch: list[tuple[Record, bool]]) -> list[tuple[np.ndarray | None, bool]]:
    """Each record's ids followed by </s> as uint16 (None if skipped), and whether the drop check removed it
    (checked only where the flag is true: train documents)."""
    docs = [_text(record).text for record, _ in batch]
    cut = [pieces(text, PIECE_CHARACTERS) if text is not None else [] for text in docs]
    encodings = iter(_STATE["tokenizer"].encode_batch_fast([p for parts in cut for p in parts],
                                                            add_special_tokens=False))
    out: list[tuple[np.ndarray | None, bool]] = []
    for (_, check), text, parts in zip(batch, docs, cut, strict=True):
        if text is None:
            out.append((None, False))
            continue
        ids = np.concatenate([np.asarray(next(encodings).ids, dtype=np.uint16) for _ in parts])
        dropped = bool(check and _STATE["drop"] is not None and _STATE["drop"].contains_any(ids))
        out.append((np.append(ids, np.uint16(_STATE["eos"])), dropped))
    return out
