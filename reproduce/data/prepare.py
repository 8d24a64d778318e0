"""``reproduce prepare``: sources -> cleaned documents -> split by whole documents -> tokenizer -> token shards.

Streaming, in worker processes, with memory bounded whatever the corpus size (a few numbers per document are kept,
never a text or a split's tokens), and resumable: killed at any point and run again, it continues from what it had
committed and ends byte-identical to an uninterrupted run. The passes over the sources (each reads them again):

1. scan: clean every document, keep its length; dirty records are skipped and recorded. The lengths give the split.
2. tokenizer (bbpe only): train on a seeded sample of train documents (``tokenizer.sample_characters``).
3. tokenize: in chunks of documents (about ``data.shard_tokens`` characters each). A chunk's documents are written in
   a seeded order (a shuffle buffer of one chunk; for a corpus of one chunk, the split's own seeded order), committed
   by a small JSON file written last; shards of exactly ``data.shard_tokens`` tokens are cut from the committed chunks
   as soon as they fill.

Everything lives under ``<paths.prepared>/<hash>/.work`` until the end, when the last shards, the index, the document
table and the manifest are written (the manifest last) and the work folder goes.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import itertools
import logging
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from reproduce.config import RecipeConfig
from reproduce.data import workers
from reproduce.data.manifest import Resolver, make_resolver, read_manifest
from reproduce.data.parallel import ordered_map, worker_count
from reproduce.data.prepared import DOCUMENTS, FORMAT_VERSION, MANIFEST, PreparedData, inputs_hash, read_documents
from reproduce.data.shards import DTYPE, shard_header, write_shard
from reproduce.data.sources import Record, Skip, iter_records
from reproduce.data.split import SPLITS, TEST, TRAIN, VALIDATION, assign_splits, seeded_order
from reproduce.data.tokenizer import load_bpe_files, train_bbpe
from reproduce.errors import UserError
from reproduce.io import atomic_dir, atomic_path, read_json, write_json
from reproduce.paths import config_file
from reproduce.pretrained import load_pretrained_tokenizer

log = logging.getLogger("reproduce")
WORK = ".work"
NOTES_KEPT = 1000  # skipped documents listed in the manifest (all are counted by reason)
WARNINGS_SHOWN = 20
TASK_CHARACTERS = 1 << 20  # a worker's task: about this much text (or 256 records)


# ------------------------------------------------------------------------------------------------- records


def _records(cfg: RecipeConfig, resolver: Resolver) -> Iterator[tuple[int, Record | Skip]]:
    """Every record of every source, numbered in stream order (sources in config order)."""
    position = itertools.count()
    for name, source in cfg.data.sources.items():
        for item in iter_records(name, source, resolver):
            yield next(position), item


def _selected(cfg: RecipeConfig, resolver: Resolver, positions: np.ndarray) -> Iterator[Record]:
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


def _size(item: Any) -> int:
    raw = item.raw if isinstance(item, Record) else ""
    return len(raw) if isinstance(raw, (str, bytes)) else 0


def _batches(items: Iterator[tuple[Any, Any]], size_of) -> Iterator[tuple[list[Any], list[Any]]]:
    """(metas, payloads) of about ``TASK_CHARACTERS`` each."""
    metas, payloads, size = [], [], 0
    for meta, payload in items:
        metas.append(meta)
        payloads.append(payload)
        size += size_of(payload)
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


# ------------------------------------------------------------------------------------------------- 1. scan


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


def _uses(code: int, dropped: bool, copies: int) -> int:
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
        with np.load(saved) as arrays:
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

    init = (_cleaners(cfg), cfg.data.max_line_chars)
    with atomic_path(work / "ids.txt") as ids_tmp, ids_tmp.open("w", encoding="utf-8") as ids:
        tasks = _batches((((pos, item), item) for pos, item in _records(cfg, resolver)), _size)
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
    with atomic_path(saved) as tmp, tmp.open("wb") as f:
        np.savez(f, position=result.position, source=result.source, characters=result.characters,
                 copies=result.copies, sample=result.sample)
    log.info(f"[data] scan: {records:,} records, {len(result.position):,} documents, "
             f"{result.characters.sum() / 1e6:.1f}M characters" + (f"; skipped {dict(skipped)}" if skipped else ""))
    return result


def _cleaners(cfg: RecipeConfig) -> dict[str, str]:
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


# -------------------------------------------------------------------------------------------- 2. tokenizer


def build_tokenizer(cfg: RecipeConfig, resolver: Resolver, found: Scan, split: np.ndarray,
                    n_workers: int) -> tuple[PreTrainedTokenizerFast, int | None]:
    """A BBPE trained on a seeded sample of train documents (and how many characters it saw), a released
    vocabulary, or a checkpoint's own tokenizer."""
    tok = cfg.tokenizer
    if tok.kind == "pretrained":
        return load_pretrained_tokenizer(tok), None
    if tok.kind == "released":
        files = {Path(e.path).name: resolver.resolve(e) for e in read_manifest(config_file(tok.manifest))}
        return load_bpe_files(files["vocab.json"], files["merges.txt"]), None
    train = split == TRAIN
    budget = tok.sample_characters
    share = 1.0 if budget is None else min(1.0, budget / max(1, int(found.characters[train].sum())))
    chosen = train & (found.sample < share)
    progress = Progress("tokenizer sample", int(chosen.sum()), cfg.data.print_every_s)

    def lines() -> Iterator[str]:
        tasks = _batches(((None, r) for r in _selected(cfg, resolver, found.position[chosen])), _size)
        for _, texts in ordered_map(workers.texts, tasks, n_workers, workers.init,
                                    (_cleaners(cfg), cfg.data.max_line_chars)):
            progress.update(len(texts))
            for text in texts:
                yield from text.split("\n")

    tokenizer = train_bbpe(lines(), tok.vocab_size, tok.min_frequency)
    return tokenizer, int(found.characters[chosen].sum())


# --------------------------------------------------------------------------------------------- 3. tokenize


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
            with self.chunk_file(chunk).open("rb") as f:
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
                self.chunk_file(chunk_).unlink(missing_ok=True)

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
    records = _selected(cfg, resolver, found.position[first:])
    started = time.perf_counter()
    init = (_cleaners(cfg), cfg.data.max_line_chars, str(folder / "tokenizer" / "tokenizer.json"),
            tokenizer.eos_token_id, drop)

    def tasks() -> Iterator[tuple[tuple[int, list[int]], list[tuple[Record, bool]]]]:
        """Batches of used documents, never across a chunk's end (a chunk commits on a batch boundary)."""
        for chunk in range(committed, len(chunks)):
            docs = ((doc, (record, bool(split[doc] == TRAIN)))
                    for doc, record in zip(range(*chunks[chunk]), records, strict=False) if used[doc])
            for metas, payloads in _batches(docs, lambda p: _size(p[0])):
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
        with np.load(work / f"chunk-{chunk:06d}.npz") as saved:
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
        self.arrival_files = [tempfile.TemporaryFile(dir=self.work) for _ in self.cutters]  # gone if killed
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
            uses = _uses(code, was_dropped, self.found.copies[doc])
            if not uses:
                continue
            self.arrival_files[code].write(memoryview(ids).cast("B"))
            self.arrived.append((doc, code, self.arrival_sizes[code], len(ids)))
            self.arrival_sizes[code] += len(ids)
            written += len(ids) * uses
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
            with atomic_path(cutter.chunk_file(self.chunk)) as tmp, tmp.open("wb") as out:
                for doc, _, at, length in docs:
                    arrival.seek(at * DTYPE.itemsize)
                    data = arrival.read(length * DTYPE.itemsize)
                    for _ in range(_uses(code, False, self.found.copies[doc])):
                        out.write(data)
                        index.append((doc, code, offset, length))
                        offset += length
            arrival.close()
            counts.append(offset - starts[code])
        name = f"chunk-{self.chunk:06d}"
        with atomic_path(self.work / f"{name}.npz") as tmp, tmp.open("wb") as f:
            np.savez(f, index=np.array(index, dtype=np.int64).reshape(-1, 4), tokens=self.tokens,
                     dropped=self.dropped)
        write_json(self.work / f"{name}.json", {"documents": list(self.docs), "start": starts, "tokens": counts})
        for cutter, start, count in zip(self.cutters, starts, counts, strict=True):
            cutter.add(self.chunk, start, count)
        self.new_tokens += sum(counts)
        self.chunk = None


# ------------------------------------------------------------------------------------------------ the set


def _write_documents(folder: Path, work: Path, cfg: RecipeConfig, found: Scan, split: np.ndarray,
                     done: Tokenized) -> None:
    names = list(cfg.data.sources)
    with atomic_path(folder / DOCUMENTS) as tmp, tmp.open("w", encoding="utf-8", newline="") as out, \
            (work / "ids.txt").open(encoding="utf-8") as ids:
        writer = csv.writer(out, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
        writer.writerow(["document", "id", "source", "split", "characters", "tokens", "copies", "status"])
        for doc, doc_id in enumerate(ids):
            code = int(split[doc])
            copies = _uses(code, done.dropped[doc], found.copies[doc])
            status = "dropped" if done.dropped[doc] else "kept" if copies else "unused"
            writer.writerow([doc, doc_id.rstrip("\n"), names[found.source[doc]], SPLITS[code],
                             int(found.characters[doc]), int(done.tokens[doc]), copies, status])


def _drop_ngrams(cfg: RecipeConfig, resolver: Resolver, tokenizer: PreTrainedTokenizerFast) -> Any:
    """The evaluation sets' n-grams whose presence removes a train document (contamination.drop), or None."""
    if not cfg.contamination.drop:
        return None
    from reproduce.data.contamination import EvalNgrams, batch_encoder, read_items

    c = cfg.contamination
    items = {name: read_items(name, texts, resolver) for name, texts in c.sets.items()}
    return EvalNgrams.build(items, batch_encoder(tokenizer), c.n, c.min_tokens)


@contextlib.contextmanager
def _lock(folder: Path) -> Iterator[None]:
    """One process prepares a set at a time; another one waits, then finds it complete."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder.parent / f".{folder.name}.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning(f"[data] another process is preparing {folder}; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def prepare_set(cfg: RecipeConfig, inputs: dict[str, Any], folder: Path, fresh: bool = False) -> dict[str, Any]:
    """Make (or finish, or with ``fresh`` remake) the prepared set ``folder``; returns this call's timings."""
    timings: dict[str, Any] = {}
    with _lock(folder):
        if fresh and folder.exists():
            shutil.rmtree(folder)
            folder.mkdir(parents=True)
        if (folder / MANIFEST).is_file():
            shutil.rmtree(folder / WORK, ignore_errors=True)
            return timings
        for stale in folder.rglob(".*.tmp"):  # what a killed run was writing; never under a final name
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
        work = folder / WORK
        work.mkdir(parents=True, exist_ok=True)
        resolver = make_resolver(cfg.data)
        n_workers = worker_count(cfg.data.workers)
        log.info(f"[data] preparing {folder} with {n_workers} worker(s)")

        started = time.perf_counter()
        found = scan(cfg, resolver, work, n_workers)
        split = split_scan(cfg, found)
        timings["scan_s"] = time.perf_counter() - started

        started = time.perf_counter()
        if not (work / "sample.json").is_file() or not (folder / "tokenizer" / "tokenizer.json").is_file():
            tokenizer, sampled = build_tokenizer(cfg, resolver, found, split, n_workers)
            write_json(work / "sample.json", {"sampled_characters": sampled})
            with atomic_dir(folder / "tokenizer") as tmp:
                tokenizer.save_pretrained(tmp)
        tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer")  # what every later step loads
        sampled = read_json(work / "sample.json")["sampled_characters"]
        timings["tokenizer_s"] = time.perf_counter() - started

        done = tokenize(cfg, resolver, folder, work, found, split, tokenizer, _drop_ngrams(cfg, resolver, tokenizer),
                        n_workers)
        timings.update(tokenize_s=done.seconds, tokenized=done.new_tokens, workers=n_workers)
        if not done.shards["train"]:
            raise UserError(f"no train tokens are left: contamination.drop={cfg.contamination.drop} removed "
                            f"{int(done.dropped.sum())} train documents, and source weights keep the rest; lower the "
                            "drop (a larger contamination.n) or raise data.sources.*.weight")

        for name, rows in done.index.items():
            with atomic_path(folder / name / "index.npy") as tmp, tmp.open("wb") as f:
                np.save(f, rows)
        _write_documents(folder, work, cfg, found, split, done)
        write_json(folder / MANIFEST, _manifest(cfg, inputs, found, split, done, len(tokenizer), sampled))
        shutil.rmtree(work)
    return timings


def _manifest(cfg: RecipeConfig, inputs: dict[str, Any], found: Scan, split: np.ndarray, done: Tokenized,
              vocab: int, sampled: int | None) -> dict[str, Any]:
    """What the set is and what made it; no timings or machine facts, so a resumed run writes the same bytes."""
    used_dropped = np.flatnonzero(done.dropped)
    return {
        "format": FORMAT_VERSION, "hash": inputs_hash(inputs), "inputs": inputs,
        "corpus": {"records": found.records, "documents": len(split), "characters": int(found.characters.sum()),
                   "skipped": found.skipped, "notes": found.notes},
        "splits": {name: {"documents": int((split == code).sum()),
                          "characters": int(found.characters[split == code].sum()),
                          "tokens": sum(s["tokens"] for s in done.shards[name]), "shards": done.shards[name]}
                   for code, name in enumerate(SPLITS)},
        "tokenizer": {"kind": cfg.tokenizer.kind, "vocab_size": vocab, "sampled_characters": sampled},
        "dropped": {"documents": len(used_dropped), "n": cfg.contamination.n if cfg.contamination.drop else None},
    }


def report(data: PreparedData, timings: dict[str, Any], reused: bool) -> dict[str, Any]:
    """results/<run>/data.json: the prepared set's counts, which documents each split holds (up to 1,000 listed),
    and this call's timings."""
    manifest = data.manifest
    listed: dict[str, list[str]] = {name: [] for name in SPLITS}
    small = {name for name in SPLITS if manifest["splits"][name]["documents"] <= 1000}
    for row in read_documents(data.folder) if small else ():
        if row["split"] in small:
            listed[row["split"]].append(row["id"])
    splits = {name: {**{k: v for k, v in manifest["splits"][name].items() if k != "shards"},
                     "shards": len(manifest["splits"][name]["shards"]), "works": listed[name] or None}
              for name in SPLITS}
    seconds = {k: v for k, v in timings.items() if k.endswith("_s")}
    tokenized = timings.get("tokenized", 0)
    return {"corpus": dict(manifest["corpus"]), "split": splits,
            "tokenizer": manifest["tokenizer"], "dropped": manifest["dropped"],
            "prepared": {"hash": manifest["hash"], "folder": data.folder.as_posix(), "reused": reused,
                         "workers": timings.get("workers"), "tokens_tokenized": tokenized,
                         "tokenize_tokens_per_second": tokenized / seconds["tokenize_s"] if tokenized else None},
            "timings_s": seconds}
