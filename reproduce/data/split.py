"""Train/validation/test split by whole works, seeded, so no paragraph of a test work is trained on."""

from __future__ import annotations

import numpy as np

from reproduce.data.corpus import Document

SPLITS = ("train", "validation", "test")


def split_documents(
    docs: list[Document], seed: int, validation_fraction: float, test_fraction: float
) -> dict[str, list[Document]]:
    """Assign whole works to splits in a seeded order until each held-out split has its share of characters.

    A work that would overshoot a held-out split's target by more than half of it goes to train instead,
    so one long novel cannot swallow the test set.
    """
    ordered = sorted(docs, key=lambda d: d.path)
    total = sum(len(d.text) for d in ordered)
    targets = {"test": test_fraction * total, "validation": validation_fraction * total}
    sizes = dict.fromkeys(targets, 0.0)
    out: dict[str, list[Document]] = {name: [] for name in SPLITS}
    for i in np.random.default_rng(seed).permutation(len(ordered)):
        doc = ordered[int(i)]
        for name, target in targets.items():
            if sizes[name] < target and sizes[name] + len(doc.text) <= 1.5 * target:
                out[name].append(doc)
                sizes[name] += len(doc.text)
                break
        else:
            out["train"].append(doc)
    return out
