"""The local RuBLiMP lm-eval task against a hand-computed answer on three items."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, GPT2LMHeadModel

from reproduce.data.tokenizer import train_bbpe
from reproduce.evaluate.harness import group_accuracy, run_lm_eval
from reproduce.evaluate.lm_eval_tasks import write_rublimp_tasks
from reproduce.model import gpt2_config
from tests.conftest import tiny_model_config

ITEMS = [  # (grammatical source_sentence, ungrammatical target_sentence)
    ("Кошка спит на окне.", "Кошка спят на окне."),
    ("Мы читали книгу.", "Мы читала книгу."),
    ("Он пришёл домой поздно.", "Он пришла домой поздно."),
]


def _sentence_logprob(model, tokenizer, sentence: str) -> float:
    ids = [tokenizer.eos_token_id] + tokenizer(sentence)["input_ids"]  # scored after </s>, as the harness does
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([ids])).logits[0, :-1], -1)
    return sum(logp[i, t].item() for i, t in enumerate(ids[1:]))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model")
    lines = [s for pair in ITEMS for s in pair] * 5 + ["Кошка спит. Мы читали. Он пришёл."] * 5
    tokenizer = train_bbpe(lines, vocab_size=300, min_frequency=1)
    torch.manual_seed(3)
    GPT2LMHeadModel(gpt2_config(tiny_model_config(len(tokenizer), n_positions=32), 1, 2)).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_rublimp_task_scores_minimal_pairs_as_by_hand(model_dir: Path, tmp_path: Path) -> None:
    csv_path = tmp_path / "toy_phenomenon.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "source_sentence", "target_sentence"])
        writer.writerows((i, good, bad) for i, (good, bad) in enumerate(ITEMS))
    include = write_rublimp_tasks({"toy_phenomenon": csv_path}, tmp_path / "tasks")
    raw = run_lm_eval(model_dir, include, ["rublimp"], batch_size=2, dtype="float32")
    summary = group_accuracy(raw, "rublimp")
    model = GPT2LMHeadModel.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    by_hand = [_sentence_logprob(model, tokenizer, g) > _sentence_logprob(model, tokenizer, b) for g, b in ITEMS]
    assert summary["n_pairs"] == 3
    assert summary["per_phenomenon"] == {"toy_phenomenon": pytest.approx(sum(by_hand) / 3)}
    assert summary["mean"] == pytest.approx(sum(by_hand) / 3)
