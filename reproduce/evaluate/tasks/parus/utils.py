"""PARus (Russian COPA) from the raw crowd file: one document per item, labelled by the crowd's majority vote.

assign_PARus.tsv holds three vote rows per test item (the benchmark's gold test labels are hidden), so the label
here is the majority of three crowd votes: an approximation of gold. ``process_docs`` reproduces the mirror's derived
parus_test_human_majority.jsonl exactly. The prompt and choices are lm-eval's COPA ones (super_glue/copa/utils.py)
with the connectives in Russian.
"""

from __future__ import annotations

from collections import Counter

import datasets

QUESTIONS = {"Что стало причиной этого?": "cause", "Что случилось в результате?": "effect"}
CONNECTIVES = {"cause": "потому что", "effect": "поэтому"}
ITEM = ("INPUT:premise", "INPUT:sent1", "INPUT:sent2", "INPUT:question")
VOTE = "OUTPUT:variant"


def majority(votes: list[str]) -> int:
    """The choice (0 or 1) with more votes; a tie is an error (every item has three votes)."""
    (top, n_top), *rest = Counter(votes).most_common()
    if rest and rest[0][1] == n_top:
        raise ValueError(f"tied crowd votes {votes}")
    return int(top)


def crowd_majority(rows: list[dict]) -> list[dict]:
    """The vote rows grouped by item (premise, sent1, sent2, question) in first-seen order, one document each:
    premise, choice1, choice2, question (cause/effect), label (the majority vote) and votes (in file order)."""
    votes: dict[tuple[str, ...], list[str]] = {}
    for row in rows:
        votes.setdefault(tuple(str(row[key]) for key in ITEM), []).append(str(row[VOTE]))
    docs = []
    for (premise, sent1, sent2, question), item_votes in votes.items():
        if question not in QUESTIONS:
            raise ValueError(f"unknown PARus question {question!r}; known: {sorted(QUESTIONS)}")
        docs.append({"premise": premise, "choice1": sent1, "choice2": sent2, "question": QUESTIONS[question],
                     "label": majority(item_votes), "votes": item_votes})
    return docs


def process_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    return datasets.Dataset.from_list(crowd_majority(list(dataset)))


def lowercase_first(choice: str) -> str:
    return choice[0].lower() + choice[1:]


def doc_to_text(doc: dict) -> str:
    """The premise without its final period, then the connective: "Я потерялся поэтому"."""
    return doc["premise"].strip().removesuffix(".") + " " + CONNECTIVES[doc["question"]]


def doc_to_choice(doc: dict) -> list[str]:
    """Both alternatives, first letter lowercased; lm-eval's target delimiter adds the one space before them."""
    return [lowercase_first(doc["choice1"]), lowercase_first(doc["choice2"])]
