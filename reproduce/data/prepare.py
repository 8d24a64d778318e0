"""Corpus -> split -> tokenizer -> token shards, each step written to the run's work folder."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from reproduce.data.corpus import Document, load_document
from reproduce.data.manifest import Resolver, read_manifest
from reproduce.data.shards import read_shard, write_shard
from reproduce.data.split import SPLITS, split_documents
from reproduce.data.tokenizer import load_bpe_files, train_bbpe
from reproduce.errors import UserError
from reproduce.io import atomic_dir
from reproduce.paths import default_mirror, project_path


@dataclass
class PreparedData:
    tokenizer: PreTrainedTokenizerFast
    tokenizer_dir: Path
    shards: dict[str, np.ndarray]  # split -> token memmap
    report: dict[str, Any]  # corpus, split and tokenizer facts for the results


def make_resolver(data_cfg: Any) -> Resolver:
    mirror = data_cfg.get("mirror") or default_mirror()
    return Resolver(data_cfg["cache_dir"], mirror, allow_download=data_cfg.get("allow_download", True))


def load_corpus(data_cfg: Any, resolver: Resolver) -> tuple[list[Document], list[dict[str, str]]]:
    """Every manifest file decoded and cleaned; undecodable files are skipped with a recorded warning."""
    entries = read_manifest(project_path(data_cfg["manifest"]))
    docs, notes = [], []
    for entry in entries:
        doc = load_document(entry.path, resolver.resolve(entry))
        if doc is None:
            notes.append({"path": entry.path, "action": "skipped", "reason": "neither UTF-8 nor cp1251 Russian text"})
            warnings.warn(f"{entry.path}: skipped, cannot be decoded as UTF-8 or cp1251", stacklevel=2)
        elif doc.encoding != "utf-8":
            notes.append({"path": entry.path, "action": "decoded", "reason": f"file is {doc.encoding}, not UTF-8"})
        if doc is not None and doc.text:
            docs.append(doc)
    if not docs:
        raise UserError(f"{data_cfg['manifest']}: no usable documents")
    return docs, notes


def build_tokenizer(tok_cfg: Any, train_docs: list[Document], resolver: Resolver) -> PreTrainedTokenizerFast:
    if tok_cfg["kind"] == "bbpe":
        lines = (line for doc in train_docs for line in doc.text.split("\n"))
        return train_bbpe(lines, tok_cfg["vocab_size"], tok_cfg["min_frequency"])
    if tok_cfg["kind"] == "released":
        files = {Path(e.path).name: resolver.resolve(e) for e in read_manifest(project_path(tok_cfg["manifest"]))}
        return load_bpe_files(files["vocab.json"], files["merges.txt"])
    raise UserError(f"tokenizer.kind={tok_cfg['kind']!r}: use 'bbpe' (train one) or 'released' (load a manifest's)")


def encode(tokenizer: PreTrainedTokenizerFast, docs: list[Document]) -> np.ndarray:
    """Each document's ids followed by </s>, concatenated."""
    eos = tokenizer.eos_token_id
    encodings = tokenizer.backend_tokenizer.encode_batch([d.text for d in docs], add_special_tokens=False)
    return np.concatenate([np.append(np.asarray(e.ids, dtype=np.int64), eos) for e in encodings])


def prepare_data(cfg: Any, work_dir: Path) -> PreparedData:
    """Resolve and decode the corpus, split it by works, build the tokenizer and write one shard per split."""
    timings = {}
    started = time.perf_counter()
    resolver = make_resolver(cfg.data)
    docs, notes = load_corpus(cfg.data, resolver)
    splits = split_documents(docs, cfg.data.split_seed, cfg.data.validation_fraction, cfg.data.test_fraction)
    timings["corpus_s"] = time.perf_counter() - started
    print(f"[data] {len(docs)} works, {sum(len(d.text) for d in docs) / 1e6:.1f}M characters; "
          + ", ".join(f"{k}: {len(v)} works" for k, v in splits.items()), flush=True)

    started = time.perf_counter()
    tokenizer = build_tokenizer(cfg.tokenizer, splits["train"], resolver)
    tokenizer_dir = work_dir / "tokenizer"
    with atomic_dir(tokenizer_dir) as tmp:
        tokenizer.save_pretrained(tmp)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)  # what every later step and user loads
    timings["tokenizer_s"] = time.perf_counter() - started

    started = time.perf_counter()
    shards = {}
    for name in SPLITS:
        path = work_dir / "shards" / f"{name}.bin"
        write_shard(path, encode(tokenizer, splits[name]), len(tokenizer))
        shards[name] = read_shard(path, len(tokenizer))
    timings["shards_s"] = time.perf_counter() - started
    print(f"[data] tokenizer of {len(tokenizer)} ids; tokens: "
          + ", ".join(f"{k} {len(v) / 1e6:.2f}M" for k, v in shards.items()), flush=True)

    report = {
        "corpus": {"manifest": str(cfg.data.manifest), "works": len(docs), "characters": sum(len(d.text) for d in docs),
                   "notes": notes},
        "split": {name: {"works": [d.path for d in split], "characters": sum(len(d.text) for d in split),
                         "tokens": int(len(shards[name]))} for name, split in splits.items()},
        "tokenizer": {"kind": cfg.tokenizer.kind, "vocab_size": len(tokenizer)},
        "timings_s": timings,
    }
    return PreparedData(tokenizer, tokenizer_dir, shards, report)
