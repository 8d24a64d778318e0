"""RuCoLA's acceptability baseline for GPT models, as the RuCoLA paper ran it on ruGPT-3 (arXiv 2210.12814; its
EMNLP 2022 submission, emnlp2022-submit/RuCoLA @ 729337f194e211e6fc18cbb8bf2e17e074c6661f): each sentence's
penalised log-probability (PenLP, Lau et al. 2020), a threshold on it chosen on the train split, and the MCC and
accuracy of that threshold on the in-domain and out-of-domain dev splits.

- ``models_lp/model_score.py``: the first character is uppercased; the sentence is tokenized without special tokens
  and scored with no prefix, so its first token is not predicted; ``lp = -loss * n`` where ``loss`` is the mean
  next-token loss over tokens 2..n and ``n`` the sentence's token count;
  ``pen_lp = lp / ((5 + n)**0.8 / (5 + 1)**0.8)``.
- ``models_lp/threshold_classification.ipynb``: 100 thresholds evenly spaced from the train split's lowest to its
  highest score; a sentence is acceptable when its score is at least the threshold (at most, when the unacceptable
  train sentences score higher on average); the threshold whose train MCC, rounded to two decimals, is highest
  (the first of equals) is kept. The notebook's ten folds do not change it: each fold searches the whole train split.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from reproduce.core.errors import UserError
from reproduce.core.io import open_input_text
from reproduce.evaluate.benchmarks import PENLP_SPLITS

ALPHA = 0.8  # model_score.py: penalty = ((5+text_len)**0.8 / (5+1)**0.8)
N_THRESHOLDS = 100  # threshold_classification.ipynb: np.linspace(min, max, 100) over the train scores
MCC_DECIMALS = 2  # the notebook compares round(matthews_corrcoef(...), 2) while it searches
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64,
          "auto": "auto"}  # eval.dtype


@dataclass(frozen=True)
class Split:
    sentences: list[str]
    labels: list[int]


def read_split(path: Path) -> Split:
    """A RuCoLA CSV (columns sentence, acceptable)."""
    try:
        with open_input_text(path, newline="") as f:
            rows = [(row["sentence"], int(row["acceptable"])) for row in csv.DictReader(f)]
    except (KeyError, ValueError, TypeError) as exc:
        raise UserError(f"{path}: not a RuCoLA file (columns sentence, acceptable 0/1: {exc}); check the data "
                        "file") from None
    return Split([s for s, _ in rows], [label for _, label in rows])


def sentence_text(sentence: str) -> str:
    """The sentence as model_score.py scores it: its first character uppercased."""
    return sentence[:1].upper() + sentence[1:]


def penalty(n_tokens: int, alpha: float = ALPHA) -> float:
    """Lau et al.'s length penalty ((5 + |s|) / (5 + 1))**alpha, written as model_score.py computes it."""
    return (5 + n_tokens) ** alpha / (5 + 1) ** alpha


@torch.no_grad()
def log_probabilities(model: torch.nn.Module, ids: list[list[int]], batch_size: int) -> list[float]:
    """``lp`` of each token sequence as model_score.py: ``n / (n - 1)`` times the summed log-probability of tokens
    2..n given the tokens before them (the mean loss over those tokens times ``-n``). Batched by length."""
    device = next(model.parameters()).device
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    out = [0.0] * len(ids)
    for start in range(0, len(order), batch_size):
        batch = [ids[i] for i in order[start : start + batch_size]]
        width = len(batch[0])
        tokens = torch.tensor([seq + [0] * (width - len(seq)) for seq in batch], device=device)
        mask = torch.tensor([[1] * len(seq) + [0] * (width - len(seq)) for seq in batch], device=device)
        logits = model(input_ids=tokens, attention_mask=mask).logits[:, :-1]
        logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # float32 at least, float64 kept
        nll = F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none") * mask[:, 1:]
        sums = nll.double().sum(dim=1).tolist()
        for row, (i, seq) in enumerate(zip(order[start : start + batch_size], batch, strict=True)):
            out[i] = -sums[row] * len(seq) / (len(seq) - 1)
    return out


def predict(scores: np.ndarray, threshold: float, higher_is_worse: bool) -> np.ndarray:
    """1 (acceptable) or 0 for each score, as the notebook's ``np.where(vec<th, 0, 1)`` (``vec>th`` when the
    unacceptable sentences score higher)."""
    return np.where(scores > threshold, 0, 1) if higher_is_worse else np.where(scores < threshold, 0, 1)


def choose_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, bool, float]:
    """The notebook's threshold on the train split: (threshold, higher_is_worse, its rounded train MCC)."""
    from sklearn.metrics import matthews_corrcoef  # imported here: 0.7 s that training (runner's import) never needs

    if len(set(labels.tolist())) < 2:
        raise UserError("rucola_penlp: the train split needs acceptable and unacceptable sentences to choose the "
                        "threshold; check the train data file")
    higher_is_worse = bool(scores[labels == 0].mean() > scores[labels == 1].mean())
    best_mcc, best = -10.0, -1.0
    for threshold in np.linspace(scores.min(), scores.max(), N_THRESHOLDS):
        mcc = round(matthews_corrcoef(labels, predict(scores, threshold, higher_is_worse)), MCC_DECIMALS)
        if mcc > best_mcc:
            best_mcc, best = mcc, float(threshold)
    return best, higher_is_worse, best_mcc


@dataclass(frozen=True)
class PenLPResult:
    metrics: dict[str, float]  # mcc, acc (in-domain dev), mcc_out_of_domain, acc_out_of_domain, threshold, n
    details: dict[str, Any]  # what the results file records besides the metrics
    scores: dict[str, np.ndarray]  # each split's PenLP, sentence by sentence (for tests; not written)


def score_penlp(model_source: str, files: dict[str, Path], batch_size: int, dtype: str, device: str) -> PenLPResult:
    """The PenLP threshold classifier of a causal LM on the RuCoLA files ``files`` (each of ``PENLP_SPLITS``)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    splits = {name: read_split(files[name]) for name in PENLP_SPLITS}
    for name, split in splits.items():
        if not split.sentences:
            raise UserError(f"{files[name]}: no sentences in {PENLP_SPLITS[name]}; check the data file")
    tokenizer = AutoTokenizer.from_pretrained(model_source, trust_remote_code=False)
    model = AutoModelForCausalLM.from_pretrained(model_source, dtype=DTYPES[dtype], trust_remote_code=False)
    model = model.to(device).eval()
    context = getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
    scores = {}
    for name, split in splits.items():
        ids = tokenizer([sentence_text(s) for s in split.sentences], add_special_tokens=False)["input_ids"]
        for sentence, seq in zip(split.sentences, ids, strict=True):
            if not 2 <= len(seq) <= context:
                raise UserError(f"rucola_penlp: {sentence[:60]!r} has {len(seq)} tokens; PenLP needs 2 to the "
                                f"model's context ({context})")
        lps = log_probabilities(model, ids, batch_size)
        scores[name] = np.array([lp / penalty(len(seq)) for lp, seq in zip(lps, ids, strict=True)])
    labels = {name: np.array(split.labels, dtype=int) for name, split in splits.items()}
    threshold, higher_is_worse, train_mcc = choose_threshold(scores["train"], labels["train"])
    from sklearn.metrics import matthews_corrcoef
    metrics: dict[str, float] = {}
    for name, suffix in (("in_domain", ""), ("out_of_domain", "_out_of_domain")):
        predicted = predict(scores[name], threshold, higher_is_worse)
        metrics[f"mcc{suffix}"] = float(matthews_corrcoef(labels[name], predicted))
        metrics[f"acc{suffix}"] = float((predicted == labels[name]).mean())
    metrics |= {"threshold": threshold, "n": len(labels["in_domain"]) + len(labels["out_of_domain"])}
    details = {"alpha": ALPHA, "thresholds_searched": N_THRESHOLDS, "train_mcc_rounded": train_mcc,
               "unacceptable_score_higher": higher_is_worse, "sentences": {k: len(v) for k, v in labels.items()}}
    return PenLPResult(metrics, details, scores)
