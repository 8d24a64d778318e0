"""TAPE's zero- and few-shot tasks (Taktasheva et al., 2022, arXiv 2210.12813): prompts, the original test items, TAPE's
fixed demonstration episodes, and the QA metrics. Plain Python, where lm-eval would compile a Jinja template per
document; README.md says where each choice comes from and what is ours.

Fields are those of the Hub dataset RussianNLP/tape (its `episodes` files; tape-benchmark-web's datasets.html). A test
item unchanged by TAPE's perturbations carries the dataset's own name in `perturbation`; the tasks score those only.
"""

from __future__ import annotations

import re
import string
from collections import Counter

from datasets import Dataset
from lm_eval.api.samplers import ContextSampler

EPISODES = 5  # TAPE samples five sets of k demonstrations from train for each k in {1, 4, 8}
OPTION = re.compile(r"\s*\(([A-D])\)\s*")  # RuWorldTree / RuOpenBookQA: "<stem> (A) ... (B) ... (C) ... (D) ..."
LETTERS = ["A", "B", "C", "D"]
PUNCTUATION = set(string.punctuation)  # what SQuAD's normalisation removes


def _originals(docs: Dataset, name: str, gold: str) -> Dataset:
    """The items TAPE left unperturbed (`perturbation` is the dataset's name); each must carry its gold field."""
    docs = docs.filter(lambda doc: doc["perturbation"] == name)
    if any(doc[gold] in (None, "", -1, []) for doc in docs):
        raise ValueError(f"TAPE {name}: items without a gold {gold!r} at this revision (hidden test labels?); see "
                         "reproduce/evaluate/tasks/tape/README.md")
    return docs


# Winograd: is `answer` what `reference` refers to in `text`? label 1 yes, 0 no.
def winograd_docs(docs: Dataset) -> Dataset:
    return _originals(docs, "winograd", "label")


def winograd_text(doc: dict) -> str:
    return (f"{doc['text'].strip()}\nВопрос: В этом тексте «{doc['reference'].strip()}» относится к "
            f"«{doc['answer'].strip()}»?\nОтвет:")


# RuWorldTree, RuOpenBookQA: four options inside `question`, the gold letter in `answer`.
def split_options(question: str) -> tuple[str, list[str]]:
    """The question's stem and its four options, in letter order."""
    stem, *rest = OPTION.split(question.strip())
    if rest[0::2] != LETTERS:
        raise ValueError(f"TAPE: options (A) to (D) not found in {question[:80]!r}")
    return stem.strip(), [option.strip() for option in rest[1::2]]


def _with_options(docs: Dataset, name: str) -> Dataset:
    def add(doc: dict) -> dict:
        stem, options = split_options(doc["question"])
        return {"stem": stem, "options": options, "gold": LETTERS.index(doc["answer"].strip())}

    return _originals(docs, name, "answer").map(add)


def ruworldtree_docs(docs: Dataset) -> Dataset:
    return _with_options(docs, "ru_worldtree")


def ruopenbookqa_docs(docs: Dataset) -> Dataset:
    return _with_options(docs, "ru_openbook")


def ruworldtree_text(doc: dict) -> str:  # lm-eval's ARC: "Question: {question}\nAnswer:"
    return f"Вопрос: {doc['stem']}\nОтвет:"


def ruopenbookqa_text(doc: dict) -> str:  # lm-eval's OpenBookQA: the stem, completed by each option
    return doc["stem"]


def macro_f1(items: list[tuple[int, int]]) -> float:
    """F1 averaged over the four answer letters (MERA's `f1_macro` for these tasks), from (gold, prediction) pairs."""
    from sklearn.metrics import f1_score

    golds, predictions = zip(*items, strict=True)
    return float(f1_score(golds, predictions, labels=list(range(len(LETTERS))), average="macro", zero_division=0.0))


# MultiQ: two Wikipedia passages and a multi-hop question; the golds are the `main_answers` segments.
def multiq_docs(docs: Dataset) -> Dataset:
    return _originals(docs, "multiq", "main_answers")


def multiq_text(doc: dict) -> str:
    return f"{doc['support_text'].strip()}\n{doc['main_text'].strip()}\nВопрос: {doc['question'].strip()}\nОтвет:"


def multiq_target(doc: dict) -> str:
    return doc["main_answers"][0]["segment"]


def multiq_results(doc: dict, results: list[str]) -> dict[str, float]:
    return qa_scores(results[0], [answer["segment"] for answer in doc["main_answers"]])


# CheGeKa: a Jeopardy!-style question in a category; one gold answer.
def chegeka_docs(docs: Dataset) -> Dataset:
    return _originals(docs, "chegeka", "answer")


def chegeka_text(doc: dict) -> str:  # MERA's CheGeKa prompt without its instruction
    return f'Категория "{doc["topic"].strip()}"\nВопрос: {doc["question"].strip()}\nОтвет:'


def chegeka_results(doc: dict, results: list[str]) -> dict[str, float]:
    return qa_scores(results[0], [doc["answer"]])


# Exact match and token F1 as SQuAD's official script (transformers' squad_metrics, which MERA's TAPE tasks use).
def normalize_answer(text: str) -> str:
    """Lowercased, without punctuation, English articles and extra whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in PUNCTUATION)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def qa_scores(prediction: str, golds: list[str]) -> dict[str, float]:
    """`em` and `f1` of a generated answer: the best over the golds."""
    return {"em": max(float(normalize_answer(prediction) == normalize_answer(g)) for g in golds),
            "f1": max(token_f1(prediction, g) for g in golds)}


# TAPE's demonstrations: the train items of one of its five episodes of k (lm-eval's num_fewshot).
class _Episode(ContextSampler):
    """The ``index``-th episode (by id) among those of exactly n train items; its items in file order. The train file
    lists each item's episodes in `episode`; an episode's size is its k."""

    index = 0

    def sample(self, n: int, eval_doc: dict | None = None, df: list | None = None, **kwargs: object) -> list[dict]:
        docs = list(self.df)
        sizes = Counter(e for doc in docs for e in doc["episode"])
        of_size = sorted(e for e, size in sizes.items() if size == n)
        if len(of_size) != EPISODES:
            raise ValueError(f"TAPE: the train file holds {len(of_size)} episodes of {n} demonstrations, not "
                             f"{EPISODES} (TAPE's k are 1, 4 and 8)")
        return [doc for doc in docs if of_size[self.index - 1] in doc["episode"]]


class Episode1(_Episode):
    index = 1


class Episode2(_Episode):
    index = 2


class Episode3(_Episode):
    index = 3


class Episode4(_Episode):
    index = 4


class Episode5(_Episode):
    index = 5
