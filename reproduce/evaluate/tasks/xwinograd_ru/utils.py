"""XWinograd-ru from the raw crosslingual_winograd rows, scored as lm-eval's own xwinograd tasks score theirs.

``process_docs`` turns each raw row into a Muennighoff/xwinograd document: the sentence with the pronoun replaced by
"_", the two candidates and the answer ("1" or "2"). ``doc_to_text``, ``doc_to_target`` and ``doc_to_choice`` are
lm-eval's xwinograd functions (lm_eval/tasks/xwinograd/utils.py, "multiple input" mode): each choice is the
sentence up to the blank with a candidate in its place, and both share the rest of the sentence as continuation.
"""

from __future__ import annotations

import json

import datasets

LANGUAGE = "ru"
# NLTK's Treebank tokenizer writes opening and closing double quotes as `` and ''; the sentence has the character.
QUOTE_TOKENS = {"``": ('"', "«", "“", "„"), "''": ('"', "»", "”")}
PUNCTUATION = set(".,;:!?…")


def token_spans(sentence: str, tokens: list[str]) -> list[tuple[int, int]]:
    """The [start, end) character span of each token, found by walking the tokens through the sentence in order
    (a pronoun such as "он" also occurs inside earlier words: a plain search from the start would find those)."""
    spans, pos = [], 0
    for token in tokens:
        found = [(i, i + len(form)) for form in (token, *QUOTE_TOKENS.get(token, ()))
                 if (i := sentence.find(form, pos)) >= 0]
        if not found:
            raise ValueError(f"token {token!r} not found after character {pos} of {sentence!r}")
        spans.append(min(found))
        pos = spans[-1][1]
    return spans


def blank_pronoun(sentence: str, tokens: list[str], pronoun: list) -> str:
    """The sentence with the pronoun's characters replaced by "_".

    The pronoun is given as [text, [start, end) token range, tokens]. In 16 Russian rows the range also covers the
    punctuation after the pronoun ("его." , "него,"); that punctuation is kept in the sentence, not blanked.
    """
    text, (first, last), _ = pronoun
    while last - first > 1 and all(ch in PUNCTUATION for ch in tokens[last - 1]):
        last -= 1
    spans = token_spans(sentence, tokens)
    start, end = spans[first][0], spans[last - 1][1]
    if sentence[start:end] not in (text, text.rstrip("".join(PUNCTUATION) + " ")):
        raise ValueError(f"pronoun {text!r} is not at characters {start}:{end} of {sentence!r}")
    return sentence[:start] + "_" + sentence[end:]


def to_doc(row: dict) -> dict:
    """One raw row as {sentence, option1, option2, answer}; exactly two candidates, exactly one of them correct."""
    candidates = json.loads(row["candidates"])
    correct = [i for i, candidate in enumerate(candidates) if candidate[3]]
    if len(candidates) != 2 or len(correct) != 1:
        raise ValueError(f"expected two candidates, one correct: {row['sentence']!r} {candidates}")
    sentence = blank_pronoun(row["sentence"], json.loads(row["tokens"]), json.loads(row["pronoun"]))
    return {"sentence": sentence, "option1": candidates[0][0], "option2": candidates[1][0],
            "answer": str(correct[0] + 1)}


def process_docs(dataset: datasets.Dataset) -> datasets.Dataset:
    """The Russian rows, each turned into a Muennighoff/xwinograd document."""
    russian = dataset.filter(lambda row: row["language"] == LANGUAGE)
    return russian.map(to_doc, remove_columns=russian.column_names)


def doc_to_text(doc: dict) -> int:
    """The index of the correct choice ("multiple input" mode: the choices are the contexts)."""
    return {"1": 0, "2": 1}[doc["answer"]]


def doc_to_target(doc: dict) -> str:
    """The continuation shared by both choices: the sentence after the blank (lm-eval adds the space delimiter)."""
    idx = doc["sentence"].index("_") + 1
    return doc["sentence"][idx:].strip()


def doc_to_choice(doc: dict) -> list[str]:
    """The sentence up to the blank, with each candidate in its place."""
    idx = doc["sentence"].index("_")
    return [doc["sentence"][:idx] + option for option in (doc["option1"], doc["option2"])]
