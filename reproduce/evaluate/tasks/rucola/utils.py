"""RuCoLA acceptability as zero-shot multiple choice: plain Python, where lm-eval would compile a Jinja template per
document."""

from __future__ import annotations

QUESTION = "Вопрос: Это предложение грамматически правильное?"
CHOICES = ["Нет", "Да"]  # index = the `acceptable` label (0 unacceptable, 1 acceptable)


def doc_to_text(doc: dict) -> str:
    return f"Предложение: {doc['sentence']}\n{QUESTION}\nОтвет:"


def doc_to_choice(doc: dict) -> list[str]:
    """The answers; lm-eval's target delimiter (a space) makes the continuations " Нет" and " Да"."""
    return CHOICES


def matthews(items: list[tuple[int, int]]) -> float:
    """Matthews correlation of (gold, prediction) pairs, as lm-eval's ``matthews_corrcoef`` aggregation computes it."""
    from sklearn.metrics import matthews_corrcoef

    golds, predictions = zip(*items, strict=True)
    return float(matthews_corrcoef(golds, predictions))
