"""Pass 3 of ``reproduce prepare``: every used document tokenized in chunks by worker processes, each chunk committed
(its documents in a seeded order, a small JSON file written last) and cut into shards of exactly ``data.shard_tokens``
tokens as soon as they fill; committed chunks are kept across restarts, so a killed pass continues where it was.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerFast

from reproduce.config.schema import RecipeConfig
from reproduce.core.errors import UserError
from reproduce.core.io import atomic_file, open_input, read_json, remove, temporary_file, write_json
from reproduce.data import workers
from reproduce.data.manifest import Resolver
from reproduce.data.parallel import ordered_map
from reproduce.data.records import Record
from reproduce.data.scan import Progress, Scan, batches, cleaners, log, selected, size_of, uses
from reproduce.data.shards import DTYPE, shard_header, write_shard
from reproduce.data.split import SPLITS, TRAIN, seeded_order


def _chunks(characters: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Ranges of documents of about ``size`` characters each (a document longer than that is a chunk of its own)."""
    starts = np.cumsum(characters) - characters
    index = starts // max(1, size)
    bounds = [0, *(np.flatnonzero(np.diff(index)) + 1).tolist(), len(characters)]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


class ShardCutter:
    """Cuts one split's committed chunk files into shards of exactly ``size`` tokens; knows what a restart finds."""

    def __init__(self, folder: Path, work: Path, split: str, size: int, vocab: int):
        self.folder, self.work, self.split, self.size, self.vocab = folder / split, work, split, size, vocab
        self.flushed = 0  # full shards on disk
        while (shard_header(self.path(self.flushed)) or (0,))[0] == size:
            self.flushed += 1
        self.chunks: list[tuple[int, int, int]] = []  # (chunk, start, tokens) of committed chunks

    def path(self, k: int) -> Path:
        return self.folder / f"shard-{k:05d}.bin"

    def chunk_file(self, chunk: int) -> Path:
        return self.work / f"chunk-{chunk:06d}.{self.split}.u16"

    @property
    def total(self) -> int:
        return self.chunks[-1][1] + self.chunks[-1][2] if self.chunks else 0

    def _pieces(self, start: int, stop: int) -> Iterator[np.ndarray]:
        """Tokens ``start..stop`` of the split, read from the chunk files a block at a time (bounded memory)."""
        for chunk, begin, count in self.chunks:
            low, high = max(start, begin), min(stop, begin + count)
            if low >= high:
                continue
            with open_input(self.chunk_file(chunk)) as f:
                f.seek((low - begin) * DTYPE.itemsize)
                while low < high:
                    block = np.fromfile(f, dtype=DTYPE, count=min(high - low, 1 << 22))
                    low += len(block)
                    yield block

    def add(self, chunk: int, start: int, count: int) -> None:
        """A committed chunk; cut every shard it fills and delete chunk files no longer needed."""
        self.chunks.append((chunk, start, count))
        while self.total - self.flushed * self.size >= self.size:
            begin = self.flushed * self.size
            write_shard(self.path(self.flushed), self._pieces(begin, begin + self.size), self.vocab)
            self.flushed += 1
        for chunk_, begin, count_ in self.chunks:
            if begin + count_ <= self.flushed * self.size:
                remove(self.chunk_file(chunk_))

    def finish(self) -> list[dict[str, Any]]:
        """Write the last shard (the rest, if any); the shards' files, token counts and checksums."""
        rest = self.total - self.flushed * self.size
        if rest > 0:
            write_shard(self.path(self.flushed), self._pieces(self.flushed * self.size, self.total), self.vocab)
        shards = []
        for k in range(self.flushed + (rest > 0)):
            tokens, sha256 = shard_header(self.path(k))
            shards.append({"file": f"{self.split}/{self.path(k).name}", "tokens": tokens, "sha256": sha256})
        return shards


@dataclass
class Tokenized:
    shards: dict[str, list[dict[str, Any]]]
    index: dict[str, np.ndarray]  # split -> (document, shard, offset, length)
    tokens: np.ndarray  # per document: its token count (with </s>), 0 if not tokenized
    dropped: np.ndarray  # per document: removed by the contamination check
    seconds: float = 0.0
    new_tokens: int = 0  # tokens produced by this call (not by an earlier, interrupted one)


def tokenize(cfg: RecipeConfig, resolver: Resolver, folder: Path, work: Path, found: Scan, split: np.ndarray,
             tokenizer: PreTrainedTokenizerFast, drop: Any, n_workers: int) -> Tokenized:
    """Pass 3: every used document tokenized in chunks; committed chunks are kept across restarts."""
    size = cfg.data.shard_tokens
    cutters = [ShardCutter(folder, work, name, size, len(tokenizer)) for name in SPLITS]
    used = (split != TRAIN) | (found.copies > 0)
    chunks = _chunks(np.where(used, found.characters, 0), size)
    committed = 0
    while committed < len(chunks) and (work / f"chunk-{committed:06d}.json").is_file():
        meta = read_json(work / f"chunk-{committed:06d}.json")
        for cutter, start, count in zip(cutters, meta["start"], meta["tokens"], strict=True):
            cutter.add(committed, start, count)
        committed += 1
    first = chunks[committed][0] if committed < len(chunks) else len(split)
    progress = Progress("tokenize", int(used.sum()), cfg.data.print_every_s, done=int(used[:first].sum()))
    if committed:
        log.info(f"[data] resuming: {committed} of {len(chunks)} chunks committed before, "
                 + ", ".join(f"{c.split} {c.flushed} shards" for c in cutters))
    records = selected(cfg, resolver, found.position[first:])
    started = time.perf_counter()
    init = (cleaners(cfg), cfg.data.max_line_chars, str(folder / "tokenizer" / "tokenizer.json"),
            tokenizer.eos_token_id, drop)

    def tasks() -> Iterator[tuple[tuple[int, list[int]], list[tuple[Record, bool]]]]:
        """Batches of used documents, never across a chunk's end (a chunk commits on a batch boundary)."""
        for chunk in range(committed, len(chunks)):
            docs = ((doc, (record, bool(split[doc] == TRAIN)))
                    for doc, record in zip(range(*chunks[chunk]), records, strict=False) if used[doc])
            for metas, payloads in batches(docs, lambda p: size_of(p[0])):
                yield (chunk, metas), payloads

    writer = ChunkWriter(work, cutters, found, split, seeded_order(len(split), cfg.data.split_seed), chunks, committed)
    for (chunk, docs), results in ordered_map(workers.tokenize, tasks(), n_workers, workers.init, init):
        writer.advance_to(chunk)
        progress.update(len(docs), writer.write(docs, results))
    writer.finish()
    seconds = time.perf_counter() - started
    index: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    tokens, dropped = [], []
    for chunk in range(len(chunks)):
        with open_input(work / f"chunk-{chunk:06d}.npz") as f, np.load(f) as saved:
            rows = saved["index"]
            tokens.append(saved["tokens"])
            dropped.append(saved["dropped"])
        for code, name in enumerate(SPLITS):
            mine = rows[rows[:, 1] == code]
            index[name].append(np.stack([mine[:, 0], mine[:, 2] // size, mine[:, 2] % size, mine[:, 3]], axis=1))
    shards = {cutter.split: cutter.finish() for cutter in cutters}
    return Tokenized(shards, {k: np.concatenate(v) if v else np.zeros((0, 4), np.int64) for k, v in index.items()},
                     np.concatenate(tokens), np.concatenate(dropped), seconds, writer.new_tokens)


class ChunkWriter:
    """Collects a chunk's tokens as they arrive (in stream order), then commits the chunk: per split, its documents in
    the seeded order (``seeded_order``) to the chunk's token file, the index and counts, then its JSON file."""

    def __init__(self, work: Path, cutters: list[ShardCutter], found: Scan, split: np.ndarray, order: np.ndarray,
                 chunks: list[tuple[int, int]], first: int):
        self.work, self.cutters, self.found, self.split, self.order = work, cutters, found, split, order
        self.chunks = chunks
        self.next = first  # the next chunk to open
        self.chunk: int | None = None  # the open chunk
        self.new_tokens = 0

    def advance_to(self, chunk: int) -> None:
        """Commit the open chunk and any chunk before ``chunk`` (those with nothing to tokenize commit empty)."""
        while self.chunk != chunk:
            self.commit()
            self.open()

    def finish(self) -> None:
        self.commit()
        while self.next < len(self.chunks):
            self.open()
            self.commit()

    def open(self) -> None:
        self.chunk, self.next = self.next, self.next + 1
        self.docs = self.chunks[self.chunk]
        self.arrived: list[tuple[int, int, int, int]] = []  # (document, split, offset in its arrival file, length)
        self.arrival_files = [temporary_file(self.work) for _ in self.cutters]  # gone if killed
        self.arrival_sizes = [0] * len(self.cutters)
        size = self.docs[1] - self.docs[0]
        self.tokens, self.dropped = np.zeros(size, np.int64), np.zeros(size, bool)

    def write(self, docs: list[int], results: list[tuple[np.ndarray | None, bool]]) -> int:
        written = 0
        for doc, (ids, was_dropped) in zip(docs, results, strict=True):
            if ids is None:
                raise UserError(f"document {doc}: cleaned in the scan but not now; a source changed while preparing: "
                                "run prepare again (resume=never)")
            code = int(self.split[doc])
            self.tokens[doc - self.docs[0]], self.dropped[doc - self.docs[0]] = len(ids), was_dropped
            times = uses(code, was_dropped, self.found.copies[doc])
            if not times:
                continue
            self.arrival_files[code].write(memoryview(ids).cast("B"))
            self.arrived.append((doc, code, self.arrival_sizes[code], len(ids)))
            self.arrival_sizes[code] += len(ids)
            written += len(ids) * times
        return written

    def commit(self) -> None:
        """Make the open chunk final (no-op when none is open); then cut the shards it fills."""
        if self.chunk is None:
            return
        starts = [cutter.total for cutter in self.cutters]
        index: list[tuple[int, int, int, int]] = []
        counts = []
        for code, cutter in enumerate(self.cutters):
            arrival, offset = self.arrival_files[code], starts[code]
            docs = sorted((entry for entry in self.arrived if entry[1] == code), key=lambda e: self.order[e[0]])
            with atomic_file(cutter.chunk_file(self.chunk)) as out:
                for doc, _, at, length in docs:
                    arrival.seek(at * DTYPE.itemsize)
                    data = arrival.read(length * DTYPE.itemsize)
                    for _ in range(uses(code, False, self.found.copies[doc])):
                        out.write(data)
                        index.append((doc, code, offset, length))
                        offset += length
            arrival.close()
            counts.append(offset - starts[code])
        name = f"chunk-{self.chunk:06d}"
        with atomic_file(self.work / f"{name}.npz") as f:
            np.savez(f, index=np.array(index, dtype=np.int64).reshape(-1, 4), tokens=self.tokens,
                     dropped=self.dropped)
        write_json(self.work / f"{name}.json", {"documents": list(self.docs), "start": starts, "tokens": counts})
        for cutter, start, count in zip(self.cutters, starts, counts, strict=True):
            cutter.add(self.chunk, start, count)
        self.new_tokens += sum(counts)
        self.chunk = None
