"""Packed training sequences and their deterministic order.

The token stream is cut into windows of ``context + 1`` tokens at a stride of ``context`` (inputs and
shifted targets share one token). The order of windows is a function of (seed, epoch) alone:
sample ``k`` of a stage is window ``permutation(seed, k // n)[k % n]``. A run resumed at sample ``k``,
a run on another world size, and a re-run all see the same windows in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from reproduce.core.arithmetic import windows


class PackedSequences(Dataset):
    """Windows of ``context + 1`` consecutive tokens from a token array."""

    def __init__(self, tokens: np.ndarray, context: int):
        if len(tokens) < context + 1:
            raise ValueError(f"{len(tokens)} tokens cannot fill one window of {context + 1}")
        self.tokens, self.context = tokens, context

    def __len__(self) -> int:
        return windows(len(self.tokens), self.context)

    def __getitem__(self, index: int) -> torch.Tensor:
        start = index * self.context
        return torch.from_numpy(self.tokens[start : start + self.context + 1].astype(np.int64))


def epoch_permutation(num_windows: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(num_windows)


class StageOrder(Sampler[int]):
    """Samples ``start..total-1`` of a stage's global order; this rank takes every ``world``-th micro-batch."""

    def __init__(
        self, num_windows: int, total: int, seed: int, micro_batch: int, rank: int = 0, world: int = 1, start: int = 0
    ):
        step = micro_batch * world
        if start % step or total % step:
            raise ValueError(f"start {start} and total {total} must be multiples of micro_batch*world={step}")
        self.num_windows, self.total, self.seed = num_windows, total, seed
        self.micro_batch, self.rank, self.world, self.start = micro_batch, rank, world, start

    def __iter__(self) -> Iterator[int]:
        perm, perm_epoch = None, -1
        for k in range(self.start, self.total):
            if (k // self.micro_batch) % self.world != self.rank:
                continue
            epoch = k // self.num_windows
            if epoch != perm_epoch:
                perm, perm_epoch = epoch_permutation(self.num_windows, self.seed, epoch), epoch
            yield int(perm[k % self.num_windows])

    def __len__(self) -> int:
        """The whole stage's samples for this rank, also when resumed at ``start``: Lightning restores its batch
        counter from the checkpoint and ends the epoch when that counter reaches the loader's length."""
        return self.total // self.world
