"""Token shards: a self-describing header, then uint16 token ids, read back as a memory map; and a split's
shards read as one token stream without loading them.

Header (64 bytes, little-endian): magic b"RUGPT3TK", format version (u32), header size (u32),
vocabulary size (u32), reserved (u32), token count (u64), sha256 of the token bytes (32 bytes).
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from reproduce.core.errors import UserError
from reproduce.core.io import atomic_path

MAGIC = b"RUGPT3TK"
VERSION = 1
_HEADER = struct.Struct("<8sIIIIQ32s")
HEADER_SIZE = _HEADER.size
DTYPE = np.dtype("<u2")
MAX_VOCAB = int(np.iinfo(DTYPE).max) + 1  # the most ids a shard can hold: 65,536


def write_shard(path: str | Path, tokens: np.ndarray | Iterable[np.ndarray], vocab_size: int) -> str:
    """Write tokens (all < vocab_size <= 65,536), given whole or as consecutive pieces, with their header,
    atomically; returns the sha256 of the token bytes."""
    if vocab_size > MAX_VOCAB:
        raise UserError(f"vocabulary of {vocab_size} ids does not fit the uint16 shard format (at most 65,536)")
    pieces = [tokens] if isinstance(tokens, np.ndarray) else tokens
    digest, count = hashlib.sha256(), 0
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        f.write(bytes(HEADER_SIZE))
        for piece in pieces:
            data = np.ascontiguousarray(piece, dtype=DTYPE)
            if data.size and int(data.max()) >= vocab_size:
                raise ValueError(f"token id {int(data.max())} >= vocab size {vocab_size}")
            digest.update(memoryview(data).cast("B"))
            f.write(memoryview(data).cast("B"))
            count += data.size
        f.seek(0)
        f.write(_HEADER.pack(MAGIC, VERSION, HEADER_SIZE, vocab_size, 0, count, digest.digest()))
        f.flush()
        os.fsync(f.fileno())
    return digest.hexdigest()


def shard_header(path: str | Path) -> tuple[int, str] | None:
    """(token count, sha256 hex of the tokens) from a whole shard's header; None if the file is not a whole shard
    (absent, bad magic, truncated)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(HEADER_SIZE)
    except OSError:
        return None
    if len(raw) < HEADER_SIZE or raw[:8] != MAGIC:
        return None
    count, digest = _HEADER.unpack(raw)[5:]
    return (count, digest.hex()) if path.stat().st_size == HEADER_SIZE + count * DTYPE.itemsize else None


def _sha256(tokens: np.ndarray) -> bytes:
    """The digest of a memory map's bytes, read a block at a time (no copy of the shard in memory)."""
    digest, view = hashlib.sha256(), memoryview(tokens).cast("B")
    for start in range(0, len(view), 1 << 24):
        digest.update(view[start : start + (1 << 24)])
    return digest.digest()


def read_shard(path: str | Path, vocab_size: int | None = None, verify: bool = True) -> np.memmap:
    """Open a shard as a read-only memmap after checking magic, version, size, vocabulary and checksum."""
    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a FIFO would block the open (found by tests/test_fuzz.py)
            raise UserError(f"{path}: not a regular file, so not a token shard")
        with path.open("rb") as f:
            raw = f.read(HEADER_SIZE)
    except OSError as exc:
        raise UserError(f"{path}: cannot read token shard ({exc.strerror})") from None
    if len(raw) < HEADER_SIZE or raw[:8] != MAGIC:
        raise UserError(f"{path}: not a token shard (bad magic)")
    _, version, header_size, vocab, _, count, digest = _HEADER.unpack(raw)
    if version != VERSION or header_size != HEADER_SIZE:
        raise UserError(f"{path}: shard format version {version}, this code reads {VERSION}")
    if path.stat().st_size != HEADER_SIZE + count * DTYPE.itemsize:
        raise UserError(f"{path}: truncated shard (header says {count} tokens)")
    if vocab_size is not None and vocab != vocab_size:
        raise UserError(f"{path}: shard was made with a {vocab}-token vocabulary, the tokenizer has {vocab_size}")
    tokens = np.memmap(path, dtype=DTYPE, mode="r", offset=HEADER_SIZE, shape=(count,))
    if verify and _sha256(tokens) != digest:
        raise UserError(f"{path}: token checksum mismatch (corrupt shard)")
    return tokens


class ShardedTokens:
    """A split's shards as one read-only token stream: ``len`` and contiguous slices, read from memory maps."""

    def __init__(self, paths: Sequence[str | Path], vocab_size: int | None = None, verify: bool = True):
        if not paths:
            raise UserError("no token shards given; re-run data preparation")
        with ThreadPoolExecutor(min(8, len(paths))) as pool:  # hashlib releases the GIL: checksums in parallel
            self.shards = list(pool.map(lambda p: read_shard(p, vocab_size, verify), paths))
        self.paths = [Path(p) for p in paths]
        self.starts = np.cumsum([0] + [len(s) for s in self.shards])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("ShardedTokens takes contiguous slices only")
        start, stop, _ = key.indices(len(self))
        if stop <= start:
            return np.empty(0, dtype=DTYPE)
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        if stop <= self.starts[first + 1]:  # within one shard: a view of the memory map
            return self.shards[first][start - self.starts[first] : stop - self.starts[first]]
        pieces, at = [], start
        for i in range(first, len(self.shards)):
            if at >= stop:
                break
            low, high = at - self.starts[i], min(stop, self.starts[i + 1]) - self.starts[i]
            pieces.append(self.shards[i][low:high])
            at = int(self.starts[i]) + high
        return np.concatenate(pieces)

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """Consecutive pieces of at most ``size`` tokens covering the stream once (for scans and counts)."""
        for shard in self.shards:
            for start in range(0, len(shard), size):
                yield shard[start : start + size]

    def bincount(self, minlength: int) -> np.ndarray:
        """How often each id occurs, one chunk at a time."""
        counts = np.zeros(minlength, dtype=np.int64)
        for chunk in self.chunks(1 << 24):
            counts += np.bincount(chunk, minlength=minlength)[:minlength]
        return counts
