"""The local XWinograd-ru, PARus and RuCoLA lm-eval tasks: three items each scored by lm-eval against the same items
scored by hand (log-probabilities of the exact token sequences lm-eval's HFLM builds), and the real mirrored files
loaded through lm-eval's TaskManager.

Each three-item set holds a twin pair whose gold answers are opposite, so exactly one of the twins is right and the
hand accuracy is 1/3 or 2/3 whatever the random model prefers: a wrong label, context or continuation shows.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from lm_eval.tasks import TaskManager, get_task_dict
from transformers import AutoTokenizer, GPT2LMHeadModel

from reproduce.data.tokenizer import train_bbpe
from reproduce.evaluate.harness import model_arguments, run_lm_eval
from reproduce.evaluate.lm_eval_tasks import write_tasks
from reproduce.evaluate.suites import resolve_benchmark
from reproduce.model.gpt2 import gpt2_config
from tests.helpers import tiny_model_config

N_POSITIONS = 256

# XWinograd: (sentence, tokens, pronoun token index, candidates [(text, is_correct)]); the twin rows share a sentence
# with the correct candidate swapped. The third row has NLTK's `` '' quote tokens, and "он" occurs in "слону" first.
ELEPHANT = "Мальчик отдал слону яблоко, потому что он был голоден."
ELEPHANT_TOKENS = ["Мальчик", "отдал", "слону", "яблоко", ",", "потому", "что", "он", "был", "голоден", "."]
SHOUT = 'Аня крикнула Оле "стой!", потому что она увидела машину.'
SHOUT_TOKENS = ["Аня", "крикнула", "Оле", "``", "стой", "!", "''", ",", "потому", "что", "она", "увидела", "машину",
                "."]
XWINOGRAD_ROWS = [
    ("ru", ELEPHANT, ELEPHANT_TOKENS, 7, [("Мальчик", False), ("слон", True)]),
    ("en", "The boy gave the elephant an apple because it was hungry.", ["The", "boy"], 0, [("a", True), ("b", False)]),
    ("ru", ELEPHANT, ELEPHANT_TOKENS, 7, [("Мальчик", True), ("слон", False)]),
    ("ru", SHOUT, SHOUT_TOKENS, 10, [("Аня", True), ("Оля", False)]),
]
# by hand: (context of candidate 1, context of candidate 2, shared continuation, index of the correct candidate)
XWINOGRAD_BY_HAND = [
    ("Мальчик отдал слону яблоко, потому что Мальчик", "Мальчик отдал слону яблоко, потому что слон",
     " был голоден.", 1),
    ("Мальчик отдал слону яблоко, потому что Мальчик", "Мальчик отдал слону яблоко, потому что слон",
     " был голоден.", 0),
    ('Аня крикнула Оле "стой!", потому что Аня', 'Аня крикнула Оле "стой!", потому что Оля', " увидела машину.", 0),
]

# PARus: vote rows (premise, sent1, sent2, question, vote), the items' rows interleaved as in the crowd file.
# The twins have the same alternatives in swapped order and the majority on different texts.
LOST, MAP, CASH = "Я потерялся.", "Я развернул карту.", "Я пересчитал деньги."
HEART, FEAR, ROLE = "Сердце актёра отчаянно билось перед выступлением.", "Он боялся сцены.", "Он помнил свою роль."
EFFECT, CAUSE = "Что случилось в результате?", "Что стало причиной этого?"
PARUS_VOTES = [
    (LOST, CASH, MAP, EFFECT, 1), (HEART, FEAR, ROLE, CAUSE, 0), (LOST, MAP, CASH, EFFECT, 1),
    (LOST, CASH, MAP, EFFECT, 0), (HEART, FEAR, ROLE, CAUSE, 1), (LOST, MAP, CASH, EFFECT, 1),
    (LOST, CASH, MAP, EFFECT, 1), (HEART, FEAR, ROLE, CAUSE, 0), (LOST, MAP, CASH, EFFECT, 0),
]
PARUS_BY_HAND = [  # (context, continuations, majority label), items in first-seen order
    ("Я потерялся поэтому", [" я пересчитал деньги.", " я развернул карту."], 1),
    ("Сердце актёра отчаянно билось перед выступлением потому что", [" он боялся сцены.", " он помнил свою роль."], 0),
    ("Я потерялся поэтому", [" я развернул карту.", " я пересчитал деньги."], 1),
]

# RuCoLA: (sentence, acceptable); the first two are twins with opposite labels.
RUCOLA_ROWS = [
    ("Иван вчера не позвонил.", 1),
    ("Иван вчера не позвонил.", 0),
    ("У многих туристов, кто посещают Кемер весной, есть шанс застать снег.", 0),
]
RUCOLA_QUESTION = "\nВопрос: Это предложение грамматически правильное?\nОтвет:"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model")
    lines = [ELEPHANT, SHOUT, LOST, MAP, CASH, HEART, FEAR, ROLE, "поэтому потому что Оля слон",
             "Предложение:" + RUCOLA_QUESTION + " Нет Да"] + [s for s, _ in RUCOLA_ROWS]
    # " Нет" and " Да" one token each, so that the context, not their length, decides between them
    tokenizer = train_bbpe(lines * 5 + ["Ответ: Нет", "Ответ: Да"] * 20, vocab_size=400, min_frequency=1)
    torch.manual_seed(12)  # RuCoLA: predictions 1, 1, 0 (acc 2/3, mcc 0.5)
    GPT2LMHeadModel(gpt2_config(tiny_model_config(len(tokenizer), n_positions=N_POSITIONS), 1, 2)).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def scorer(model_dir: Path):
    """log p(continuation | context) over the token sequences lm-eval's HFLM builds (api/model.py, loglikelihood
    and _encode_pair): an empty context becomes the prefix token </s>; otherwise the context's trailing spaces move to
    the continuation, and the continuation's tokens are those of context + continuation after the context's."""
    model = GPT2LMHeadModel.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def loglikelihood(context: str, continuation: str) -> float:
        if context == "":
            context_ids, continuation_ids = [tokenizer.eos_token_id], tokenizer.encode(continuation)
        else:
            n_spaces = len(context) - len(context.rstrip())
            if n_spaces:
                context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
            whole, context_ids = tokenizer.encode(context + continuation), tokenizer.encode(context)
            continuation_ids = whole[len(context_ids):]
        ids = context_ids + continuation_ids
        assert len(ids) <= N_POSITIONS, "the sequence would be truncated"
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ids[:-1]])).logits[0].double(), -1)
        return sum(logp[len(context_ids) - 1 + i, t].item() for i, t in enumerate(continuation_ids))

    return loglikelihood


def _evaluate(model_dir: Path, tmp_path: Path, benchmark: str, task: str, data: Path) -> dict:
    include = write_tasks([resolve_benchmark(benchmark, lambda entry: data)], tmp_path / "tasks")
    args = model_arguments(model_dir, batch_size=2, dtype="float32", device="cpu", prefix_token="eos")
    raw = run_lm_eval(args, include, [task])
    assert raw["n-samples"][task]["effective"] == 3
    return raw["results"][task]


def _prediction(lls: list[float]) -> int:
    return int(np.argmax(lls))  # lm-eval's argmax: the first of equal log-likelihoods


def test_xwinograd_task_scores_as_by_hand(model_dir: Path, scorer, tmp_path: Path) -> None:
    data = tmp_path / "xwinograd.tsv"
    with data.open("w", encoding="utf-8") as f:
        for language, sentence, tokens, pronoun, candidates in XWINOGRAD_ROWS:
            spec = [tokens[pronoun], [pronoun, pronoun + 1], [tokens[pronoun]]]
            cands = [[text, [0, 1], [text], correct] for text, correct in candidates]
            f.write("\t".join([language, "test", "?", sentence, json.dumps(tokens), json.dumps(spec),
                               json.dumps(cands)]) + "\n")
    results = _evaluate(model_dir, tmp_path, "xwinograd_ru", "xwinograd_ru_local", data)
    right = [_prediction([scorer(c1, rest), scorer(c2, rest)]) == gold for c1, c2, rest, gold in XWINOGRAD_BY_HAND]
    assert right[0] != right[1]
    assert results["acc,none"] == pytest.approx(sum(right) / 3)


def test_parus_task_scores_crowd_majority_as_by_hand(model_dir: Path, scorer, tmp_path: Path) -> None:
    data = tmp_path / "assign_PARus.tsv"
    with data.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=";")
        writer.writerow(["INPUT:sent1", "INPUT:sent2", "INPUT:premise", "INPUT:question", "OUTPUT:variant",
                         "HINT:text", "ASSIGNMENT:assignment_id"])
        writer.writerows((s1, s2, premise, question, vote, "", f"a{i}")
                         for i, (premise, s1, s2, question, vote) in enumerate(PARUS_VOTES))
    results = _evaluate(model_dir, tmp_path, "parus", "parus_crowd_majority", data)
    right = [_prediction([scorer(context, c) for c in choices]) == gold for context, choices, gold in PARUS_BY_HAND]
    assert right[0] != right[2]
    assert results["acc,none"] == pytest.approx(sum(right) / 3)


def _mcc(gold: list[int], pred: list[int]) -> float:
    pairs = list(zip(gold, pred, strict=True))
    tp, tn = pairs.count((1, 1)), pairs.count((0, 0))
    fp, fn = pairs.count((0, 1)), pairs.count((1, 0))
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0


def test_rucola_task_scores_acc_and_mcc_as_by_hand(model_dir: Path, scorer, tmp_path: Path) -> None:
    data = tmp_path / "in_domain_dev.csv"
    with data.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "sentence", "acceptable", "error_type", "detailed_source"])
        writer.writerows((i, s, label, "0" if label else "Syntax", "test") for i, (s, label) in enumerate(RUCOLA_ROWS))
    results = _evaluate(model_dir, tmp_path, "rucola", "rucola_indomain_dev", data)
    gold = [label for _, label in RUCOLA_ROWS]
    pred = [_prediction([scorer(f"Предложение: {s}{RUCOLA_QUESTION}", a) for a in (" Нет", " Да")])
            for s, _ in RUCOLA_ROWS]
    assert results["acc,none"] == pytest.approx(sum(g == p for g, p in zip(gold, pred, strict=True)) / 3)
    assert results["mcc,none"] == pytest.approx(_mcc(gold, pred))
    assert len(set(pred)) == 2, "the seed should give both answers, so that mcc is not trivially 0"


# The real mirrored files, through lm-eval's TaskManager (no model).

@pytest.fixture(scope="module")
def real_tasks(mirror: Path, tmp_path_factory) -> dict:
    found = [resolve_benchmark(name, lambda entry: mirror / entry.path) for name in ("xwinograd_ru", "parus", "rucola")]
    include = write_tasks(found, tmp_path_factory.mktemp("real") / "tasks")
    manager = TaskManager(include_path=str(include), include_defaults=False)
    return get_task_dict(["xwinograd_ru_local", "parus_crowd_majority", "rucola_indomain_dev"], manager)


def test_real_xwinograd_loads_all_rows(real_tasks: dict) -> None:
    task = real_tasks["xwinograd_ru_local"]
    docs = list(task.eval_docs)
    assert len(docs) == 315
    assert all(d["sentence"].count("_") == 1 and d["answer"] in ("1", "2") for d in docs)
    first = docs[0]
    stem = "Члены городского совета отказали организаторам митинга в разрешении, потому что "
    assert task.doc_to_choice(first) == [stem + "Члены городского совета", stem + "организаторам митинга"]
    assert task.doc_to_target(first) == "опасались насилия." and task.doc_to_text(first) == 0
    assert task.fewshot_context(first, num_fewshot=0) == task.doc_to_choice(first)
    # the quirks: pronoun ranges that cover the next punctuation; `` '' quote tokens
    assert docs[129]["sentence"].endswith("поэтому он передумал и включил _.")
    assert '_ окрик "чур я спереди" прозвучал раньше.' in docs[175]["sentence"]


def test_real_parus_is_the_derived_majority_file(real_tasks: dict, mirror: Path) -> None:
    task = real_tasks["parus_crowd_majority"]
    docs = list(task.eval_docs)
    derived = [json.loads(line) for line in (mirror / "eval/parus/parus_test_human_majority.jsonl")
               .read_text(encoding="utf-8").splitlines()]
    assert len(docs) == 500
    assert docs == derived
    assert task.fewshot_context(docs[1], num_fewshot=0) == "Я потерялся поэтому"
    assert task.doc_to_choice(docs[1]) == ["я пересчитал наличные деньги.", "я развернул карту."]


def test_real_rucola_loads_the_dev_set(real_tasks: dict) -> None:
    task = real_tasks["rucola_indomain_dev"]
    docs = list(task.eval_docs)
    assert len(docs) == 983
    assert sum(d["acceptable"] for d in docs) == 733
    assert task.fewshot_context(docs[0], num_fewshot=0) == f"Предложение: Иван вчера не позвонил.{RUCOLA_QUESTION}"
    assert task.doc_to_choice(docs[0]) == ["Нет", "Да"] and task.doc_to_target(docs[0]) == 1
