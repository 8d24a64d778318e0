"""A prepared set: token shards per split, their index, the tokenizer and a manifest, in a folder named by a hash of
everything that determines it, so that any run with the same data and tokenizer settings reuses it.

Layout of ``<paths.prepared>/<hash>/``::

    manifest.json           what made it (the hashed inputs), per split: shards (file, tokens, sha256) and counts;
                            skipped documents; written last, so its presence means the set is complete
    documents.tsv           per document: ordinal, id, source, split, characters, tokens, copies, status
    tokenizer/              the tokenizer every later step loads (Hugging Face files)
    <split>/shard-00000.bin token shards of exactly ``data.shard_tokens`` tokens (the last one holds the rest)
    <split>/index.npy       int64 rows (document, shard, offset in shard, length) for every copy of a document
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from reproduce.config.schema import RecipeConfig, TokenizerConfig
from reproduce.core.checksums import sha256_of
from reproduce.core.errors import UserError
from reproduce.core.io import MAX_INPUT, open_input, open_input_text, read_json
from reproduce.core.paths import config_file
from reproduce.data.corpus import CLEANING_VERSION
from reproduce.data.eval_items import set_manifest
from reproduce.data.manifest import Resolver, make_resolver, read_manifest
from reproduce.data.shards import ShardedTokens
from reproduce.data.sources import open_source
from reproduce.data.split import SPLITS

FORMAT_VERSION = 1  # bump when the layout or the token stream's construction changes
MANIFEST = "manifest.json"
DOCUMENTS = "documents.tsv"
INDEX = "index.npy"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt")


@dataclass
class PreparedData:
    folder: Path
    tokenizer: PreTrainedTokenizerFast
    shards: dict[str, ShardedTokens]  # split -> its shards as one token stream
    manifest: dict[str, Any]

    def documents(self, split: str) -> Iterator[tuple[str, np.ndarray]]:
        """(id, tokens without the closing </s>) of each document of a split, in shard order (first copies only)."""
        ids = {int(row["document"]): row["id"] for row in read_documents(self.folder) if row["split"] == split}
        with open_input(self.folder / split / INDEX) as f:
            index = np.load(f)
        seen: set[int] = set()
        stream = self.shards[split]
        shard_tokens = self.manifest["inputs"]["shard_tokens"]
        for doc, shard, offset, length in index:
            if doc in seen:
                continue
            seen.add(int(doc))
            start = int(shard) * shard_tokens + int(offset)
            yield ids[int(doc)], stream[start : start + int(length) - 1]


def read_documents(folder: Path) -> Iterator[dict[str, str]]:
    with open_input_text(folder / DOCUMENTS, MAX_INPUT, newline="") as f:
        yield from csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")


def _manifest_rows(manifest: Path) -> list[list[str]]:
    return [[e.path, e.sha256] for e in read_manifest(manifest)]


def tokenizer_fingerprint(tok: TokenizerConfig) -> dict[str, Any]:
    """What determines the tokenizer: a trained BBPE's settings, the released files' checksums, or the checkpoint."""
    if tok.kind == "bbpe":
        return {"kind": "bbpe", "vocab_size": tok.vocab_size, "min_frequency": tok.min_frequency,
                "sample_characters": tok.sample_characters}
    if tok.kind == "released":
        return {"kind": "released", "vocab_size": tok.vocab_size, "files": _manifest_rows(config_file(tok.manifest))}
    local = Path(tok.name_or_path).expanduser()
    files = [[name, sha256_of(local / name)] for name in TOKENIZER_FILES if (local / name).is_file()]
    return {"kind": "pretrained", "name_or_path": tok.name_or_path, "files": files or None}


def prepared_inputs(cfg: RecipeConfig, resolver: Resolver | None = None) -> dict[str, Any]:
    """Everything that determines the prepared set (the hash is taken over it); never where files come from, how many
    workers run, or anything printed."""
    resolver = resolver or make_resolver(cfg.data)
    data = cfg.data
    sources = {name: {**open_source(name, source).fingerprint(resolver), "clean": source.clean,
                      "weight": source.weight} for name, source in data.sources.items()}
    contamination = cfg.contamination
    drop = None
    if contamination.drop:
        drop = {"n": contamination.n, "min_tokens": contamination.min_tokens,
                "sets": {name: {**dataclasses.asdict(texts), "manifest": _manifest_rows(set_manifest(name, texts))}
                         for name, texts in sorted(contamination.sets.items())}}
    return {"format": FORMAT_VERSION, "cleaning": CLEANING_VERSION, "sources": sources,
            "split": {"seed": data.split_seed, "validation_fraction": data.validation_fraction,
                      "test_fraction": data.test_fraction},
            "max_line_chars": data.max_line_chars, "shard_tokens": data.shard_tokens,
            "tokenizer": tokenizer_fingerprint(cfg.tokenizer), "drop_contaminated": drop}


def inputs_hash(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def prepared_folder(cfg: RecipeConfig, inputs: dict[str, Any] | None = None) -> Path:
    return Path(cfg.paths.prepared) / inputs_hash(inputs or prepared_inputs(cfg))


def prepared_lock(folder: Path) -> Path:
    """The lock file beside a prepared set that one ``prepare`` at a time holds (``prepared/.<hash>.lock``)."""
    return folder.parent / f".{folder.name}.lock"


REMAKE = ("delete the folder and run `reproduce prepare` with the run's overrides: it is made again, the same bytes, "
          "and nothing else of the run is lost")


def load_prepared(folder: Path, verify: bool = True) -> PreparedData:
    """The tokenizer and the checked shards of a complete prepared set; one line (with the way to remake it) for a
    damaged one."""
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise UserError(f"{folder}: no complete prepared set ({MANIFEST} missing); run `reproduce prepare`")
    try:
        manifest = read_json(manifest_path)
        listed = {name: manifest["splits"][name]["shards"] for name in SPLITS}
        shard_files = {name: [folder / shard["file"] for shard in shards] for name, shards in listed.items()}
        expected = {name: [(int(shard["tokens"]), str(shard["sha256"])) for shard in shards]
                    for name, shards in listed.items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{manifest_path}: unreadable ({type(exc).__name__}: {exc}); {REMAKE}") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer", trust_remote_code=False)
    except Exception as exc:  # tokenizers' Rust parser raises a bare Exception for a damaged tokenizer.json
        raise UserError(f"{folder / 'tokenizer'}: unreadable tokenizer ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:160] if str(exc) else ''}); {REMAKE}") from None
    for name in SPLITS:
        if not (folder / name / INDEX).is_file():
            raise UserError(f"{folder / name / INDEX}: missing (the {name} split's document index); {REMAKE}")
    try:  # every use: each shard's size and header against the manifest; with verify, its tokens' sha256 too
        shards = {name: ShardedTokens(files, len(tokenizer), verify, expected[name])
                  for name, files in shard_files.items()}
    except UserError as exc:
        raise UserError(f"{exc}; {REMAKE}") from None
    return PreparedData(folder, tokenizer, shards, manifest)


def run_prepared(cfg: RecipeConfig) -> PreparedData:
    """The prepared set a run's ``prepare`` step chose (runs/<run>/prepared.json)."""
    pointer = cfg.layout.prepared_pointer
    if not pointer.is_file():
        raise UserError(f"{pointer} not found: run `reproduce prepare` with the same overrides first")
    try:
        folder = Path(read_json(pointer)["folder"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{pointer}: unreadable ({type(exc).__name__}); run `reproduce prepare` with the run's "
                        "overrides to write it again") from None
    return load_prepared(folder)
