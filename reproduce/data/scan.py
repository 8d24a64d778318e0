"""Pass 1 of ``reproduce prepare``: every record of every source, cleaned in worker processes; each document's
length, copies and seeded draws kept (a few numbers per document, never a text); dirty records skipped and recorded.
The lengths give the split by whole documents. Also the helpers the later passes share: records by stream position,
worker batches, progress lines.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reproduce.config.schema import RecipeConfig
from reproduce.core.errors import UserError
from reproduce.core.io import atomic_file, open_input, read_json, write_json
from reproduce.data import workers
from reproduce.data.manifest import Resolver
from reproduce.data.parallel import ordered_map
from reproduce.data.records import Record, Skip
from reproduce.data.sources import open_source
from reproduce.data.split import SPLITS, TEST, TRAIN, VALIDATION, assign_splits

log = logging.getLogger("reproduce")
NOTES_KEPT = 1000  # skipped documents listed in the manifest (all are counted by reason)
WARNINGS_SHOWN = 20
TASK_CHARACTERS = 1 << 20  # a worker's task: about this much text (or 256 records)


# ------------------------------------------------------------------------------------------------- records


def _records(cfg: RecipeConfig, resolver: Resolver) -> Iterator[tuple[int, Record | Skip]]:
    """Every record of every source, numbered in stream order (sources in config order)."""
    position = itertools.count()
    for name, source in cfg.data.sources.items():
        for item in open_source(name, source).records(resolver):
            yield next(position), item


def selected(cfg: RecipeConfig, resolver: Resolver, positions: np.ndarray) -> Iterator[Record]:
    """The records at the given (increasing) stream positions."""
    wanted = iter(positions.tolist())
    target = next(wanted, None)
    for position, item in _records(cfg, resolver):
        if target is None:
            return
        if position == target:
            if not isinstance(item, Record):
                raise UserError(f"{item.id}: was a document in the scan, now {item.reason}; a source changed while "
                                "preparing: run prepare again (resume=never)")
            yield item
            target = next(wanted, None)


def size_of(item: Any) -> int:
    raw = item.raw if isinstance(item, Record) else ""
    return len(raw) if isinstance(raw, (str, bytes)) else 0


def batches(items: Iterator[tuple[Any, Any]], measure: Callable[[Any], int]) -> Iterator[tuple[list[Any], list[Any]]]:
    """(metas, payloads) of about ``TASK_CHARACTERS`` each, as ``measure`` counts a payload's characters."""
    metas, payloads, size = [], [], 0
    for meta, payload in items:
        metas.append(meta)
        payloads.append(payload)
        size += measure(payload)
        if size >= TASK_CHARACTERS or len(payloads) >= 256:
            yield metas, payloads
            metas, payloads, size = [], [], 0
    if payloads:
        yield metas, payloads


def _uniform(seed: int, salt: str, doc_id: str) -> float:
    """A number in [0, 1) fixed by (seed, salt, document id): who is sampled does not depend on order or workers."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{salt}:{doc_id}".encode()).digest()[:8], "little") / 2.0**64


class Progress:
    """A progress line every ``every_s`` seconds: documents (of a known total), tokens/s and ETA."""

    def __init__(self, label: str, total: int, every_s: float, done: int = 0):
        self.label, self.total, self.every_s, self.done = label, total, every_s, done
        self.tokens, self.started, self.last = 0, time.perf_counter(), time.perf_counter()

    def update(self, documents: int, tokens: int = 0) -> None:
        self.done += documents
        self.tokens += tokens
        if time.perf_counter() - self.last >= self.every_s:
            self.last = time.perf_counter()
            log.info(self.line())

    def line(self) -> str:
        elapsed = time.perf_counter() - self.started
        if not self.total:  # a count without a known total (the scan)
            return f"[data] {self.label}: {self.done:,} done, {elapsed / 60:.1f} min"
        share = self.done / self.total
        bar = "#" * int(20 * share) + "." * (20 - int(20 * share))
        rate = f", {self.tokens / elapsed / 1e6:.2f}M tokens/s" if self.tokens else ""
        eta = (self.total - self.done) * elapsed / self.done / 60 if 0 < self.done < self.total else None
        eta_text = "" if eta is None else f", ETA {eta:.1f} min"
        return f"[data] {self.label} [{bar}] {self.done:,}/{self.total:,} documents{rate}{eta_text}"


@dataclass
class Scan:
    """Per kept document, in stream order: its record position, source, length, and seeded draws."""

    records: int
    position: np.ndarray  # int64
    source: np.ndarray  # int16, index into data.sources
    characters: np.ndarray  # int64
    copies: np.ndarray  # int32: times a train document is used (its source's weight)
    sample: np.ndarray  # float64 in [0, 1): the tokenizer's sample takes those below a threshold
    notes: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


def _copies(weight: float, seed: int, doc_id: str) -> int:
    whole = int(weight)
    return whole + int(_uniform(seed, "weight", doc_id) < weight - whole)


def uses(code: int, dropped: bool, copies: int) -> int:
    """How many times a document goes into its split's stream: held-out ones once; train ones by their source's
    weight, unless the contamination check dropped them."""
    return 1 if code != TRAIN else 0 if dropped else int(copies)


def _reason_kind(reason: str) -> str:
    return reason.split(" (")[0].split(",")[0] if not reason.startswith("line ") else "line over data.max_line_chars"


def scan(cfg: RecipeConfig, resolver: Resolver, work: Path, n_workers: int) -> Scan:
    """Pass 1 (or its saved result): every record cleaned by the workers; lengths, copies and sample draws kept."""
    saved = work / "scan.npz"
    if saved.is_file():
        extra = read_json(work / "scan.json")
        with open_input(saved) as f, np.load(f) as arrays:
            return Scan(int(extra["records"]), *(arrays[k] for k in ("position", "source", "characters", "copies",
                                                                      "sample")), extra["notes"], extra["skipped"])
    names = list(cfg.data.sources)
    seed = cfg.data.split_seed
    position, source, characters, copies, sample = [], [], [], [], []
    notes: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    progress = Progress("scan", 0, cfg.data.print_every_s)
    records = 0

    def note(item: Record | Skip, action: str, reason: str) -> None:
        if action == "skipped":
            skipped[_reason_kind(reason)] += 1
            if sum(skipped.values()) <= WARNINGS_SHOWN:
                log.warning(f"[data] {item.id}: skipped, {reason}")
        if len(notes) < NOTES_KEPT:
            notes.append({"id": item.id, "line": item.line, "action": action, "reason": reason})

    init = (cleaners(cfg), cfg.data.max_line_chars)
    with atomic_file(work / "ids.txt", "w", encoding="utf-8") as ids:
        tasks = batches((((pos, item), item) for pos, item in _records(cfg, resolver)), size_of)
        for metas, results in ordered_map(workers.measure, tasks, n_workers, workers.init, init):
            for (pos, item), (length, encoding, reason) in zip(metas, results, strict=True):
                records = pos + 1
                if isinstance(item, Skip) or length is None:
                    note(item, "skipped", item.reason if isinstance(item, Skip) else reason)
                    continue
                if encoding not in (None, "utf-8"):
                    note(item, "decoded", f"file is {encoding}, not UTF-8")
                doc_id = item.id.replace("\t", " ").replace("\n", " ")
                ids.write(doc_id + "\n")
                position.append(pos)
                source.append(names.index(item.source))
                characters.append(length)
                copies.append(_copies(cfg.data.sources[item.source].weight, seed, doc_id))
                sample.append(_uniform(seed, "tokenizer", doc_id))
            progress.update(len(metas))
        if not position:
            raise UserError(f"data.sources ({', '.join(names)}): no usable documents in {records} records; check "
                            "the paths and fields")
    result = Scan(records, np.array(position, dtype=np.int64), np.array(source, dtype=np.int16),
                  np.array(characters, dtype=np.int64), np.array(copies, dtype=np.int32),
                  np.array(sample, dtype=np.float64), notes, dict(sorted(skipped.items())))
    write_json(work / "scan.json", {"records": records, "notes": notes, "skipped": result.skipped})
    with atomic_file(saved) as f:
        np.savez(f, position=result.position, source=result.source, characters=result.characters,
                 copies=result.copies, sample=result.sample)
    log.info(f"[data] scan: {records:,} records, {len(result.position):,} documents, "
             f"{result.characters.sum() / 1e6:.1f}M characters" + (f"; skipped {dict(skipped)}" if skipped else ""))
    return result


def cleaners(cfg: RecipeConfig) -> dict[str, str]:
    return {name: source.clean for name, source in cfg.data.sources.items()}


def split_scan(cfg: RecipeConfig, found: Scan) -> np.ndarray:
    """Each document's split (the seeded, size-balanced assignment of whole documents), checked non-empty."""
    data = cfg.data
    split = assign_splits(found.characters, data.split_seed, data.validation_fraction, data.test_fraction)
    for code, key in ((VALIDATION, "validation_fraction"), (TEST, "test_fraction")):
        if not (split == code).any():
            raise UserError(f"data.{key}={getattr(data, key)}: the {SPLITS[code]} split got no document (each is kept "
                            "whole); raise it or add documents to data.sources")
    if not (split == TRAIN).any():
        raise UserError("data.sources: every document went to a held-out split; add documents")
    return split
