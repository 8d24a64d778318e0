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
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from reproduce.config.schema import RecipeConfig
from reproduce.core.errors import UserError
from reproduce.core.io import (
    MAX_INPUT,
    atomic_dir,
    atomic_file,
    make_dirs,
    open_input_text,
    open_lock,
    read_json,
    remove,
    remove_temporaries,
    write_json,
)
from reproduce.core.paths import config_file
from reproduce.data import workers
from reproduce.data.manifest import Resolver, make_resolver, read_manifest
from reproduce.data.parallel import ordered_map, start_server, worker_count
from reproduce.data.prepared_set import (
    DOCUMENTS,
    FORMAT_VERSION,
    MANIFEST,
    PreparedData,
    inputs_hash,
    prepared_lock,
    read_documents,
)
from reproduce.data.scan import Progress, Scan, batches, cleaners, scan, selected, size_of, split_scan, uses
from reproduce.data.shard_writer import Tokenized, tokenize
from reproduce.data.split import SPLITS, TRAIN
from reproduce.data.tokenizer import load_bpe_files, train_bbpe
from reproduce.model.pretrained import load_pretrained_tokenizer

log = logging.getLogger("reproduce")
WORK = ".work"


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
        tasks = batches(((None, r) for r in selected(cfg, resolver, found.position[chosen])), size_of)
        for _, texts in ordered_map(workers.texts, tasks, n_workers, workers.init,
                                    (cleaners(cfg), cfg.data.max_line_chars)):
            progress.update(len(texts))
            for text in texts:
                yield from text.split("\n")

    tokenizer = train_bbpe(lines(), tok.vocab_size, tok.min_frequency)
    return tokenizer, int(found.characters[chosen].sum())


# ------------------------------------------------------------------------------------------------ the set


def _write_documents(folder: Path, work: Path, cfg: RecipeConfig, found: Scan, split: np.ndarray,
                     done: Tokenized) -> None:
    names = list(cfg.data.sources)
    with atomic_file(folder / DOCUMENTS, "w", encoding="utf-8", newline="") as out, \
            open_input_text(work / "ids.txt", MAX_INPUT) as ids:
        writer = csv.writer(out, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
        writer.writerow(["document", "id", "source", "split", "characters", "tokens", "copies", "status"])
        for doc, doc_id in enumerate(ids):
            code = int(split[doc])
            copies = uses(code, done.dropped[doc], found.copies[doc])
            status = "dropped" if done.dropped[doc] else "kept" if copies else "unused"
            writer.writerow([doc, doc_id.rstrip("\n"), names[found.source[doc]], SPLITS[code],
                             int(found.characters[doc]), int(done.tokens[doc]), copies, status])


def _drop_ngrams(cfg: RecipeConfig, resolver: Resolver, tokenizer: PreTrainedTokenizerFast) -> Any:
    """The evaluation sets' n-grams whose presence removes a train document (contamination.drop), or None."""
    if not cfg.contamination.drop:
        return None
    from reproduce.data.contamination import EvalNgrams, batch_encoder
    from reproduce.data.eval_items import read_items

    contamination = cfg.contamination
    items = {name: read_items(name, texts, resolver) for name, texts in contamination.sets.items()}
    return EvalNgrams.build(items, batch_encoder(tokenizer), contamination.n, contamination.min_tokens)


@contextlib.contextmanager
def _lock(folder: Path) -> Iterator[None]:
    """One process prepares a set at a time; another one waits, then finds it complete."""
    make_dirs(folder)
    with open_lock(prepared_lock(folder)) as handle:  # a planted link is refused, never truncated
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning(f"[data] another process is preparing {folder}; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def prepare_set(cfg: RecipeConfig, inputs: dict[str, Any], folder: Path, fresh: bool = False) -> dict[str, Any]:
    """Make (or finish, or with ``fresh`` remake) the prepared set ``folder``; returns this call's timings."""
    timings: dict[str, Any] = {}
    if worker_count(cfg.data.workers) > 1:
        start_server()  # before any work: the moment it starts in, a Ctrl-C goes unseen
    with _lock(folder):
        if fresh and folder.exists():
            remove(folder)
            make_dirs(folder)
        if (folder / MANIFEST).is_file():
            remove(folder / WORK)
            return timings
        remove_temporaries(folder)  # what a killed run was writing; never under a final name
        work = make_dirs(folder / WORK)
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
        # what every later step loads
        tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer", trust_remote_code=False)
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
            with atomic_file(folder / name / "index.npy") as f:
                np.save(f, rows)
        _write_documents(folder, work, cfg, found, split, done)
        write_json(folder / MANIFEST, _manifest(cfg, inputs, found, split, done, len(tokenizer), sampled))
        remove(work)
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
