"""Russian SuperGLUE prompts and the RCB macro-F1: plain Python, where lm-eval would compile a Jinja template per
document. Each prompt is lm-eval's English SuperGLUE one (lm_eval/tasks/super_glue/) in Russian; the fields are those of
the Hub dataset RussianNLP/russian_super_glue (its parquet export). lm-eval's default target delimiter, a space, comes
before every choice: the scored continuation of "…\\nОтвет:" is " да", not "да".
"""

from __future__ import annotations

CONNECTIVES = {"cause": "потому что", "effect": "поэтому"}  # PARus `question`, as in COPA: cause / effect


def _sentence(text: str) -> str:
    """The text with one final full stop (kept when it already ends with . ! ? or …)."""
    text = text.strip()
    return text if text.endswith((".", "!", "?", "…")) else text + "."


def _question(text: str) -> str:
    """The text ending with a question mark (DaNetQA questions mostly have one already; BoolQ's have none)."""
    text = text.strip()
    return text if text.endswith("?") else text + "?"


def _lowercase_first(text: str) -> str:
    text = text.strip()
    return text[:1].lower() + text[1:]


# PARus (COPA): the premise without its final full stop, then the connective; the choices are the alternatives with
# their first letter lowercased. The same prompt as the package's offline parus_crowd_majority task (tasks/parus/).
def parus_text(doc: dict) -> str:
    return doc["premise"].strip().removesuffix(".") + " " + CONNECTIVES[doc["question"]]


def parus_choice(doc: dict) -> list[str]:
    return [_lowercase_first(doc["choice1"]), _lowercase_first(doc["choice2"])]


# RCB (CB): label 0 entailment, 1 contradiction, 2 neutral.
def rcb_text(doc: dict) -> str:
    return f"{doc['premise'].strip()}\nВопрос: {_sentence(doc['hypothesis'])} Верно, неверно или неизвестно?\nОтвет:"


# TERRa (RTE): label 0 entailment, 1 not_entailment.
def terra_text(doc: dict) -> str:
    return f"{doc['premise'].strip()}\nВопрос: {_sentence(doc['hypothesis'])} Верно или неверно?\nОтвет:"


# DaNetQA (BoolQ): label 0 False, 1 True.
def danetqa_text(doc: dict) -> str:
    return f"{doc['passage'].strip()}\nВопрос: {_question(doc['question'])}\nОтвет:"


# RWSD (WSC): label 1 when span2_text (the pronoun or its phrase) refers to span1_text. Unlike lm-eval's WSC the
# pronoun is not starred in the text: RWSD's span2_text is often a phrase and its word index is not always exact.
def rwsd_text(doc: dict) -> str:
    return (
        f"Текст: {doc['text'].strip()}\n"
        f"Вопрос: В тексте выше «{doc['span2_text'].strip()}» относится к «{doc['span1_text'].strip()}»?\n"
        "Ответ:"
    )


# RUSSE (WiC): label 1 when `word` has the same sense in both sentences. The word is the dataset's lemma (`word`),
# not WiC's sentence1[start1:end1] surface form.
def russe_text(doc: dict) -> str:
    return (
        f"Предложение 1: {doc['sentence1'].strip()}\n"
        f"Предложение 2: {doc['sentence2'].strip()}\n"
        f"Вопрос: Слово «{doc['word'].strip()}» употреблено в одном и том же значении в двух предложениях выше?\n"
        "Ответ:"
    )


# MuSeRC (MultiRC): one document per (paragraph, question, answer); label 1 when the answer is correct. The choices are
# in label order (нет, да); lm-eval's multirc lists (yes, no) against the same 0/1 label.
def muserc_text(doc: dict) -> str:
    return f"{doc['paragraph'].strip()}\nВопрос: {doc['question'].strip()}\nОтвет:"


def muserc_choice(doc: dict) -> list[str]:
    answer = doc["answer"].strip()
    return [f"{answer}\nОтвет верный? нет", f"{answer}\nОтвет верный? да"]


RCB_CLASSES = (0, 1, 2)  # entailment, contradiction, neutral


def macro_f1(items: list[tuple[int, int]]) -> float:
    """RCB's "Avg. F1": the mean over its three classes of each class's F1 (0 for a class neither gold nor predicted),
    with sklearn as lm-eval's CB does (super_glue/cb/aggregate.py). lm-eval's multiple-choice `f1` items are
    (gold, prediction) pairs."""
    from sklearn.metrics import f1_score

    golds, predictions = zip(*items, strict=True)
    return float(f1_score(golds, predictions, labels=list(RCB_CLASSES), average="macro", zero_division=0.0))
