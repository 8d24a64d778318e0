"""RuBLiMP's prompt and scoring functions: plain Python, where lm-eval would compile a Jinja template per document."""

import random

import datasets

# Each phenomenon's pairs in one fixed shuffled order, so that lm-eval's `limit` (the first items) takes a seeded
# subset of every phenomenon (the benchmarks during training score a few of each). A full evaluation scores the same
# pairs in any order, and lm-eval batches them by length, not by this order.
ORDER_SEED = 1234


class Rows(list):
    """A Dataset's rows as plain dicts that still answer ``features`` (lm-eval reads the column names from it)."""

    def __init__(self, dataset: datasets.Dataset):
        super().__init__(dataset.to_list())
        self.features = dataset.features


def rows(dataset: datasets.Dataset) -> Rows:
    """The pairs converted in one pass (lm-eval reads a Dataset row by row through its formatter, at about 45 µs a
    row: measured, about a tenth of RuBLiMP's evaluation time on the mini model), in the ``ORDER_SEED`` order."""
    pairs = Rows(dataset)
    random.Random(ORDER_SEED).shuffle(pairs)
    return pairs


def no_context(doc: dict) -> str:
    return ""


def minimal_pair(doc: dict) -> list[str]:
    """The grammatical sentence first (the target is choice 0), then its ungrammatical twin."""
    return [doc["source_sentence"], doc["target_sentence"]]


def process_results(doc: dict, results: list[tuple[float, bool]]) -> dict[str, float]:
    """Right only when the grammatical sentence is strictly more likely; a tie is reported, not scored as right."""
    good, bad = results[0][0], results[1][0]
    return {"acc": float(good > bad), "tie": float(good == bad)}
