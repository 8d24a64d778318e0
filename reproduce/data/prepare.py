"""Corpus -> split -> tokenizer -> token shards, each written to the run's work folder; and loading them back."""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from reproduce.config import DataConfig, TokenizerConfig
from reproduce.data.corpus import Document, load_document
from reproduce.data.manifest import Resolver, make_resolver, read_manifest
from reproduce.data.shards import read_shard, write_shard
from reproduce.data.split import SPLITS, split_documents
from reproduce.data.tokenizer import load_bpe_files, train_bbpe
from reproduce.errors import UserError
from reproduce.io import atomic_dir
from reproduce.paths import config_file
from reproduce.pretrained import load_pretrained_tokenizer

log = logging.getLogger("reproduce")


@dataclass
class PreparedData:
    tokenizer: PreTrainedTokenizerFast
    shards: dict[str, np.ndarray]  # split -> token memmap


def load_corpus(data: DataConfig, resolver: Resolver) -> tuple[list[Document], list[dict[str, str]]]:
    """Every manifest file decoded and cleaned; undecodable files are skipped with a recorded warning."""
    docs, notes = [], []
    for entry in read_manifest(config_file(data.manifest)):
        doc = load_document(entry.path, resolver.resolve(entry))
        if doc is None:
            notes.append({"path": entry.path, "action": "skipped", "reason": "neither UTF-8 nor cp1251 Russian text"})
            warnings.warn(f"{entry.path}: skipped, cannot be decoded as UTF-8 or cp1251", stacklevel=2)
        elif doc.encoding != "utf-8":
            notes.append({"path": entry.path, "action": "decoded", "reason": f"file is {doc.encoding}, not UTF-8"})
        if doc is not None and doc.text:
            docs.append(doc)
    if not docs:
        raise UserError(f"data.manifest={data.manifest!r}: no usable documents")
    return docs, notes


def build_tokenizer(tok: TokenizerConfig, train_docs: list[Document], resolver: Resolver) -> PreTrainedTokenizerFast:
    """A trained byte-level BPE, a released vocabulary, or a checkpoint's own tokenizer (checked before the run:
    reproduce/preflight.py)."""
    if tok.kind == "bbpe":
        lines = (line for doc in train_docs for line in doc.text.split("\n"))
        return train_bbpe(lines, tok.vocab_size, tok.min_frequency)
    if tok.kind == "pretrained":
        return load_pretrained_tokenizer(tok)
    files = {Path(e.path).name: resolver.resolve(e) for e in read_manifest(config_file(tok.manifest))}
    return load_bpe_files(files["vocab.json"], files["merges.txt"])


def encode(tokenizer: PreTrainedTokenizerFast, docs: list[Document]) -> np.ndarray:
    """Each document's ids followed by </s>, concatenated."""
    eos = tokenizer.eos_token_id
    encodings = tokenizer.backend_tokenizer.encode_batch([d.text for d in docs], add_special_tokens=False)
    return np.concatenate([np.append(np.asarray(e.ids, dtype=np.int64), eos) for e in encodings])


def _check_split(splits: dict[str, list[Document]], data: DataConfig) -> None:
    for name, key in (("validation", "validation_fraction"), ("test", "test_fraction")):
        if not splits[name]:
            raise UserError(f"data.{key}={getattr(data, key)}: the {name} split got no work (each work is kept "
                            f"whole); raise it or add works to data.manifest")
    if not splits["train"]:
        raise UserError(f"data.manifest={data.manifest!r}: every work went to a held-out split; add works")


def prepare_data(data: DataConfig, tok: TokenizerConfig, work_dir: Path) -> tuple[PreparedData, dict[str, Any]]:
    """Resolve and decode the corpus, split it by works, build the tokenizer and write one shard per split.

    Returns the prepared data and a report (corpus notes, works per split, token counts, timings).
    """
    timings = {}
    started = time.perf_counter()
    resolver = make_resolver(data)
    docs, notes = load_corpus(data, resolver)
    splits = split_documents(docs, data.split_seed, data.validation_fraction, data.test_fraction)
    _check_split(splits, data)
    timings["corpus_s"] = time.perf_counter() - started
    log.info(f"[data] {len(docs)} works, {sum(len(d.text) for d in docs) / 1e6:.1f}M characters; "
             + ", ".join(f"{k}: {len(v)} works" for k, v in splits.items()))

    started = time.perf_counter()
    tokenizer = build_tokenizer(tok, splits["train"], resolver)
    with atomic_dir(work_dir / "tokenizer") as tmp:
        tokenizer.save_pretrained(tmp)
    timings["tokenizer_s"] = time.perf_counter() - started

    started = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(work_dir / "tokenizer")  # what every later step and user loads
    for name in SPLITS:
        write_shard(work_dir / "shards" / f"{name}.bin", encode(tokenizer, splits[name]), len(tokenizer))
    prepared = load_prepared(work_dir)
    timings["shards_s"] = time.perf_counter() - started
    log.info(f"[data] tokenizer of {len(tokenizer)} ids; tokens: "
             + ", ".join(f"{k} {len(v) / 1e6:.2f}M" for k, v in prepared.shards.items()))

    report = {
        "corpus": {"manifest": str(data.manifest), "works": len(docs), "characters": sum(len(d.text) for d in docs),
                   "notes": notes},
        "split": {name: {"works": [d.path for d in split], "characters": sum(len(d.text) for d in split),
                         "tokens": int(len(prepared.shards[name]))} for name, split in splits.items()},
        "tokenizer": {"kind": tok.kind, "vocab_size": len(tokenizer)},
        "timings_s": timings,
    }
    return prepared, report


def load_prepared(work_dir: Path) -> PreparedData:
    """The tokenizer and the checked token shards that ``prepare_data`` wrote to ``work_dir``."""
    tokenizer = AutoTokenizer.from_pretrained(work_dir / "tokenizer")
    shards = {name: read_shard(work_dir / "shards" / f"{name}.bin", len(tokenizer)) for name in SPLITS}
    return PreparedData(tokenizer, shards)
