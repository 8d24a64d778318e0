"""Train/validation/test split by whole documents (for RusLit: works), seeded, so no paragraph of a test document is
trained on."""

from __future__ import annotations

import numpy as np

SPLITS = ("train", "validation", "test")
TRAIN, VALIDATION, TEST = range(3)


def assign_splits(characters: np.ndarray, seed: int, validation_fraction: float, test_fraction: float) -> np.ndarray:
    """The split of each document (its index in ``SPLITS``), given their lengths in stream order.

    Documents are visited in a seeded order; each held-out split takes documents until it has its share of the
    characters. A document that would overshoot a held-out split's target by more than half of it goes to train
    instead, so one long novel cannot swallow the test set. Needs the lengths only, never the texts.
    """
    total = int(characters.sum())
    targets = ((TEST, test_fraction * total), (VALIDATION, validation_fraction * total))
    sizes = {TEST: 0, VALIDATION: 0}
    split = np.full(len(characters), TRAIN, dtype=np.int8)
    for i in np.random.default_rng(seed).permutation(len(characters)):
        size = int(characters[i])
        for name, target in targets:
            if sizes[name] < target and sizes[name] + size <= 1.5 * target:
                split[i] = name
                sizes[name] += size
                break
    return split


def seeded_order(count: int, seed: int) -> np.ndarray:
    """Each document's place in ``assign_splits``' seeded visiting order (the inverse of its permutation): prepare
    writes the documents of a chunk in this order, a shuffle buffer as large as a chunk."""
    rank = np.empty(count, dtype=np.int64)
    rank[np.random.default_rng(seed).permutation(count)] = np.arange(count)
    return rank
