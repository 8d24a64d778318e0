"""Token shards: round trip, and loud failures on every kind of mismatch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reproduce.core.errors import UserError
from reproduce.data.shards import HEADER_SIZE, read_shard, write_shard


def test_round_trip(tmp_path: Path) -> None:
    tokens = np.random.default_rng(0).integers(0, 50257, size=1000)
    write_shard(tmp_path / "s.bin", tokens, 50257)
    back = read_shard(tmp_path / "s.bin", 50257)
    assert back.dtype == np.uint16 and np.array_equal(back, tokens)
    assert (tmp_path / "s.bin").stat().st_size == HEADER_SIZE + 2 * tokens.size
    assert [p.name for p in tmp_path.iterdir()] == ["s.bin"]  # no temporary left behind


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b"NOTASHRD" + b[8:], "bad magic"),
        (lambda b: b[:-2], "truncated"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "checksum"),
        (lambda b: b[:8] + (2).to_bytes(4, "little") + b[12:], "version"),
    ],
)
def test_damaged_shards_fail_loudly(tmp_path: Path, damage, message: str) -> None:
    write_shard(tmp_path / "s.bin", np.arange(100), 128)
    path = tmp_path / "s.bin"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(UserError, match=message):
        read_shard(path, 128)


def test_vocabulary_mismatch_and_limits(tmp_path: Path) -> None:
    write_shard(tmp_path / "s.bin", np.arange(100), 128)
    with pytest.raises(UserError, match="128-token vocabulary, the tokenizer has 256"):
        read_shard(tmp_path / "s.bin", 256)
    with pytest.raises(UserError, match="uint16"):
        write_shard(tmp_path / "big.bin", np.arange(10), 70000)
    with pytest.raises(ValueError, match="token id"):
        write_shard(tmp_path / "bad.bin", np.array([5, 300]), 256)
    with pytest.raises(UserError, match="cannot read"):
        read_shard(tmp_path / "absent.bin")
