"""Token shards: a self-describing header, then uint16 token ids, read back as a memory map.

Header (64 bytes, little-endian): magic b"RUGPT3TK", format version (u32), header size (u32),
vocabulary size (u32), reserved (u32), token count (u64), sha256 of the token bytes (32 bytes).
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np

from reproduce.errors import UserError
from reproduce.io import atomic_path

MAGIC = b"RUGPT3TK"
VERSION = 1
_HEADER = struct.Struct("<8sIIIIQ32s")
HEADER_SIZE = _HEADER.size
DTYPE = np.dtype("<u2")


def write_shard(path: str | Path, tokens: np.ndarray, vocab_size: int) -> None:
    """Write tokens (all < vocab_size <= 65,536) with their header, atomically."""
    if vocab_size > np.iinfo(DTYPE).max + 1:
        raise UserError(f"vocabulary of {vocab_size} ids does not fit the uint16 shard format (at most 65,536)")
    data = np.ascontiguousarray(tokens, dtype=DTYPE)
    if data.size and int(data.max()) >= vocab_size:
        raise ValueError(f"token id {int(data.max())} >= vocab size {vocab_size}")
    payload = data.tobytes()
    header = _HEADER.pack(MAGIC, VERSION, HEADER_SIZE, vocab_size, 0, data.size, hashlib.sha256(payload).digest())
    with atomic_path(path) as tmp:
        tmp.write_bytes(header + payload)


def read_shard(path: str | Path, vocab_size: int | None = None, verify: bool = True) -> np.memmap:
    """Open a shard as a read-only memmap after checking magic, version, size, vocabulary and checksum."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(HEADER_SIZE)
    except OSError as exc:
        raise UserError(f"{path}: cannot read token shard ({exc.strerror}); re-run data preparation") from None
    if len(raw) < HEADER_SIZE or raw[:8] != MAGIC:
        raise UserError(f"{path}: not a token shard (bad magic); delete it and re-run data preparation")
    _, version, header_size, vocab, _, count, digest = _HEADER.unpack(raw)
    if version != VERSION or header_size != HEADER_SIZE:
        raise UserError(f"{path}: shard format version {version}, this code reads {VERSION}; re-run data preparation")
    if path.stat().st_size != HEADER_SIZE + count * DTYPE.itemsize:
        raise UserError(f"{path}: truncated shard (header says {count} tokens); delete it and re-run data preparation")
    if vocab_size is not None and vocab != vocab_size:
        raise UserError(f"{path}: shard was made with a {vocab}-token vocabulary, the tokenizer has {vocab_size}")
    tokens = np.memmap(path, dtype=DTYPE, mode="r", offset=HEADER_SIZE, shape=(count,))
    if verify and hashlib.sha256(tokens.tobytes()).digest() != digest:
        raise UserError(f"{path}: token checksum mismatch (corrupt shard); delete it and re-run data preparation")
    return tokens
