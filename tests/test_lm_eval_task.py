"""The local RuBLiMP lm-eval task against a hand-computed answer on three items: per item, the log-likelihood lm-eval
computes is that of the exact token sequence (prefix token + sentence, no leading space), and a tie is not right."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import lm_eval
import pytest
import torch
from lm_eval.tasks import TaskManager
from transformers import AutoTokenizer, GPT2LMHeadModel

from reproduce.data.tokenizer import train_bbpe
from reproduce.evaluate.benchmarks import TASKS_DIR
from reproduce.evaluate.harness import PackageHFLM, model_arguments, run_lm_eval, task_metrics
from reproduce.evaluate.lm_eval_tasks import write_tasks
from reproduce.evaluate.suites import resolve_benchmark
from reproduce.model.gpt2 import gpt2_config
from tests.helpers import tiny_model_config

ITEMS = [  # (grammatical source_sentence, ungrammatical target_sentence)
    ("Кошка спит на окне.", "Кошка спят на окне."),
    ("Мы читали книгу.", "Мы читала книгу."),
    ("Он пришёл домой поздно.", "Он пришла домой поздно."),
]
TASK = "rublimp_verb_acc_object"  # one phenomenon's task, here over the three items


def sentence_logprob(model: GPT2LMHeadModel, prefix: int, ids: list[int]) -> float:
    """log p(ids | prefix), summed, from one forward pass over exactly [prefix, *ids]."""
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=torch.tensor([[prefix, *ids]])).logits[0, :-1].double(), -1)
    return sum(logp[i, t].item() for i, t in enumerate(ids))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model")
    lines = [s for pair in ITEMS for s in pair] * 5 + ["Кошка спит. Мы читали. Он пришёл."] * 5
    tokenizer = train_bbpe(lines, vocab_size=300, min_frequency=1)
    torch.manual_seed(3)
    GPT2LMHeadModel(gpt2_config(tiny_model_config(len(tokenizer), n_positions=32), 1, 2)).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tasks(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("rublimp")
    csv_path = tmp / "toy_phenomenon.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "source_sentence", "target_sentence"])
        writer.writerows((i, good, bad) for i, (good, bad) in enumerate(ITEMS))
    return write_tasks([resolve_benchmark("rublimp", lambda entry: csv_path)], tmp / "tasks")


def test_each_items_loglikelihood_is_that_of_the_exact_sentence(model_dir: Path, tasks: Path) -> None:
    args = model_arguments(model_dir, 2, "float32", "cpu", "eos")
    out = lm_eval.simple_evaluate(model=PackageHFLM(**args), tasks=[TASK], log_samples=True, bootstrap_iters=0,
                                  task_manager=TaskManager(include_path=str(tasks), include_defaults=False))
    model = GPT2LMHeadModel.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    samples = out["samples"][TASK]
    assert sorted(s["doc"]["source_sentence"] for s in samples) == sorted(good for good, _ in ITEMS)
    for sample in samples:
        good, bad = next(pair for pair in ITEMS if pair[0] == sample["doc"]["source_sentence"])
        scored = [ll for ll, _ in sample["filtered_resps"]]
        by_hand = [sentence_logprob(model, tokenizer.eos_token_id, tokenizer(s)["input_ids"]) for s in (good, bad)]
        assert scored == pytest.approx(by_hand, abs=1e-4)
        spaced = sentence_logprob(model, tokenizer.eos_token_id, tokenizer(" " + good)["input_ids"])
        assert scored[0] != pytest.approx(spaced, abs=1e-3)  # what lm-eval's default delimiter would have scored
        assert sample["acc"] == float(by_hand[0] > by_hand[1])


def test_rublimp_accuracy_and_group_as_by_hand(model_dir: Path, tasks: Path) -> None:
    raw = run_lm_eval(model_arguments(model_dir, 2, "float32", "cpu", "eos"), tasks, [TASK])
    metrics = task_metrics(raw)[TASK]
    model = GPT2LMHeadModel.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    right = [sentence_logprob(model, tokenizer.eos_token_id, tokenizer(g)["input_ids"])
             > sentence_logprob(model, tokenizer.eos_token_id, tokenizer(b)["input_ids"]) for g, b in ITEMS]
    assert 0 < sum(right) < 3  # the items tell a right scorer from one that always says yes or no
    assert metrics == {"acc": pytest.approx(sum(right) / 3), "tie": 0.0, "n": 3}
    assert raw["device"] == "cpu"


def _utils():
    spec = importlib.util.spec_from_file_location("rublimp_utils", TASKS_DIR / "rublimp" / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    return utils


def test_a_limit_takes_a_seeded_subset_of_each_phenomenon() -> None:
    """lm-eval's limit takes the first items: the pairs come in one fixed shuffled order, all of them, the same each
    time, so that the first 8 are a seeded sample rather than the file's head."""
    import datasets

    utils = _utils()
    pairs = datasets.Dataset.from_list([{"id": i, "source_sentence": f"a{i}", "target_sentence": f"b{i}"}
                                        for i in range(1000)])
    first, again = utils.rows(pairs), utils.rows(pairs)
    assert [r["id"] for r in first] == [r["id"] for r in again] and sorted(r["id"] for r in first) == list(range(1000))
    assert max(r["id"] for r in first[:8]) > 100 and first.features == pairs.features


def test_a_tie_is_reported_and_not_scored_as_right() -> None:
    utils = _utils()
    assert utils.process_results({}, [(-5.0, False), (-5.0, False)]) == {"acc": 0.0, "tie": 1.0}
    assert utils.process_results({}, [(-4.0, False), (-5.0, False)]) == {"acc": 1.0, "tie": 0.0}
    assert utils.process_results({}, [(-6.0, False), (-5.0, False)]) == {"acc": 0.0, "tie": 0.0}
