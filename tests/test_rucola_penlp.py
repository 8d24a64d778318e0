"""The RuCoLA PenLP threshold suite (reproduce/evaluate/penlp.py) against an independent computation with transformers
alone, written from RuCoLA's models_lp/model_score.py and threshold_classification.ipynb, on 200 real RuCoLA
sentences; the same through the console script on a tasks folder of its own; and its bad inputs."""

from __future__ import annotations

import csv
import hashlib
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, GPT2LMHeadModel

from reproduce.core.errors import UserError
from reproduce.core.io import read_json
from reproduce.data.tokenizer import train_bbpe
from reproduce.evaluate.penlp import choose_threshold, score_penlp
from reproduce.model.gpt2 import gpt2_config
from tests.helpers import reproduce, tiny_model_config

pytestmark = pytest.mark.slow  # whole RuCoLA splits scored by a tiny model, twice, and through the console script

SPLITS = ("train", "in_domain", "out_of_domain")
COLUMNS = ["id", "sentence", "acceptable", "error_type", "detailed_source"]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def data(mirror: Path, tmp_path_factory) -> dict[str, Path]:
    """120 train and 2 x 40 dev sentences of the mirror's RuCoLA files (200 in all; the mirror has no out-of-domain
    file, so in-domain dev sentences stand in for it: the computation is what is tested)."""
    folder = tmp_path_factory.mktemp("rucola") / "eval" / "rucola"
    folder.mkdir(parents=True)
    train, dev = _rows(mirror / "eval/rucola/in_domain_train.csv"), _rows(mirror / "eval/rucola/in_domain_dev.csv")
    files = {}
    for split, rows in zip(SPLITS, (train[:120], dev[:40], dev[40:80]), strict=True):
        files[split] = folder / f"{split}.csv"
        with files[split].open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    return files


@pytest.fixture(scope="module")
def model_dir(data: dict[str, Path], tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model")
    sentences = [row["sentence"] for path in data.values() for row in _rows(path)]
    tokenizer = train_bbpe(sentences * 3, vocab_size=600, min_frequency=2)
    torch.manual_seed(3)
    GPT2LMHeadModel(gpt2_config(tiny_model_config(len(tokenizer), n_positions=128), 1, 2)).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _mcc(gold: list[int], pred: list[int]) -> float:
    pairs = list(zip(gold, pred, strict=True))
    tp, tn, fp, fn = pairs.count((1, 1)), pairs.count((0, 0)), pairs.count((0, 1)), pairs.count((1, 0))
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return (tp * tn - fp * fn) / denominator if denominator else 0.0


def independent(model_dir: Path, files: dict[str, Path],
                dtype: torch.dtype = torch.float64) -> tuple[dict[str, list[float]], dict[str, float]]:
    """RuCoLA's computation, sentence by sentence: model_score.py's lp (the mean loss of transformers' GPT-2 with
    labels = inputs, times -n) and pen_lp; the notebook's threshold (100 points from the train minimum to its
    maximum, the first best train MCC rounded to 2 decimals) and the dev MCC and accuracy. In float64 by default
    (float32's own rounding of a sentence's loss is about 1e-5 of a PenLP near -40); in float32 as model_score.py
    computes it, with transformers' loss."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = GPT2LMHeadModel.from_pretrained(model_dir).to(dtype).eval()
    pen, labels = {}, {}
    for split, path in files.items():
        pen[split], labels[split] = [], []
        for row in _rows(path):
            text = row["sentence"][0].upper() + row["sentence"][1:]
            ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))
            tensor = torch.tensor([ids])
            with torch.no_grad():
                if dtype == torch.float32:  # model_score.py itself: transformers' loss (computed in float32)
                    loss = float(model(tensor, labels=tensor).loss)
                else:  # the same mean next-token loss over tokens 2..n, in float64
                    logp = torch.log_softmax(model(tensor).logits[0, :-1].double(), dim=-1)
                    loss = -float(logp[torch.arange(len(ids) - 1), tensor[0, 1:]].mean())
            lp = loss * -1.0 * len(ids)
            pen[split].append(lp / ((5 + len(ids)) ** 0.8 / (5 + 1) ** 0.8))
            labels[split].append(int(row["acceptable"]))
    train = np.array(pen["train"])
    is_acceptable = np.array(labels["train"]) == 1
    neg = train[~is_acceptable].mean() > train[is_acceptable].mean()

    def predict(scores: list[float], threshold: float) -> list[int]:
        return [0 if (s > threshold if neg else s < threshold) else 1 for s in scores]

    best_mcc, best = -10.0, -1.0
    for threshold in np.linspace(min(pen["train"]), max(pen["train"]), 100):
        mcc = round(_mcc(labels["train"], predict(pen["train"], threshold)), 2)
        if mcc > best_mcc:
            best_mcc, best = mcc, threshold
    metrics = {"threshold": best}
    for split, suffix in (("in_domain", ""), ("out_of_domain", "_out_of_domain")):
        predicted = predict(pen[split], best)
        metrics["mcc" + suffix] = _mcc(labels[split], predicted)
        metrics["acc" + suffix] = sum(p == g for p, g in zip(predicted, labels[split], strict=True)) / len(predicted)
    return pen, metrics


@pytest.fixture(scope="module")
def expected(model_dir: Path, data: dict[str, Path]) -> tuple[dict[str, list[float]], dict[str, float]]:
    return independent(model_dir, data)


def test_penlp_threshold_and_mcc_agree_with_an_independent_computation(model_dir, data, expected) -> None:
    scores, metrics = expected
    ours = score_penlp(str(model_dir), data, batch_size=16, dtype="float64", device="cpu")
    assert sum(len(v) for v in ours.scores.values()) == 200
    for split in SPLITS:
        assert np.abs(ours.scores[split] - np.array(scores[split])).max() <= 1e-6, split
    for key, value in metrics.items():
        assert abs(ours.metrics[key] - value) <= 1e-6, key
    train_min = min(scores["train"])
    assert metrics["threshold"] != train_min and metrics["mcc"] != 0  # a threshold inside the range was chosen
    assert ours.metrics["n"] == 80 and ours.details["sentences"] == {"train": 120, "in_domain": 40,
                                                                       "out_of_domain": 40}


def test_float32_scores_agree_to_float32_rounding(model_dir, data) -> None:
    """The default dtype, batched, against the same computation one sentence at a time: within 1e-6 relative."""
    scores, _ = independent(model_dir, data, torch.float32)
    ours = score_penlp(str(model_dir), data, batch_size=16, dtype="float32", device="cpu")
    for split in SPLITS:
        np.testing.assert_allclose(ours.scores[split], scores[split], rtol=1e-6, atol=0)


def _tasks_folder(root: Path, data: dict[str, Path]) -> tuple[Path, Path]:
    """A tasks folder of one PenLP benchmark over the test's files, and a mirror holding them (sha256 checked)."""
    tasks, mirror = root / "tasks", root / "mirror"
    (tasks / "rucola").mkdir(parents=True)
    rows, spec = [], {}
    for split, path in data.items():
        relative = f"eval/rucola/{split}.csv"
        (mirror / relative).parent.mkdir(parents=True, exist_ok=True)
        (mirror / relative).write_bytes(path.read_bytes())
        rows.append(f"{relative}\t{hashlib.sha256(path.read_bytes()).hexdigest()}\thttps://example.invalid/{split}")
        spec[split] = relative
    (tasks / "rucola" / "manifest.tsv").write_text("path\tsha256\turl\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (tasks / "rucola" / "benchmark.yaml").write_text(
        "penlp:\n" + "".join(f"  {split}: {path}\n" for split, path in spec.items()), encoding="utf-8")
    suite = "rucola_penlp:\n  scorer: penlp\n  benchmarks: [rucola]\n  tasks: [rucola_penlp]\n"
    (tasks / "suites.yaml").write_text(suite, encoding="utf-8")
    return tasks, mirror


def _cli(tmp: Path, tasks: Path, *args: str, code: int = 0) -> subprocess.CompletedProcess:
    return reproduce("eval", *args, cwd=tmp, code=code, timeout=600, env={"REPRODUCE_TASKS_DIR": str(tasks)})


def test_the_suite_through_the_console_script(model_dir, data, expected, tmp_path: Path) -> None:
    tasks, mirror = _tasks_folder(tmp_path, data)
    common = (f"model={model_dir}", "suite=rucola_penlp", f"data.mirror={mirror}",
              f"data.cache_dir={tmp_path / 'cache'}", "data.allow_download=false", "eval.name=tiny")
    _cli(tmp_path, tasks, *common, "eval.batch_size=32", "eval.dtype=float64")
    result = read_json(tmp_path / "results" / "eval" / "tiny" / "rucola_penlp.json")
    _, metrics = expected
    assert set(result["metrics"]) == {"rucola_penlp"}
    for key, value in metrics.items():
        assert abs(result["metrics"]["rucola_penlp"][key] - value) <= 1e-6, key
    assert result["meta"]["suite"] == "rucola_penlp" and result["penlp"]["alpha"] == 0.8
    assert set(result["meta"]["task_files"]) >= {f"mirror:eval/rucola/{split}.csv" for split in SPLITS}
    (mirror / "eval/rucola/train.csv").unlink()  # the threshold's split is gone: one line, nothing written
    out = _cli(tmp_path / "results", tasks, *common, code=2)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs the train split, on which the PenLP threshold is chosen" in lines[0]
    assert not (tmp_path / "results" / "results").exists()


def test_a_train_split_of_one_label_cannot_choose_a_threshold() -> None:
    with pytest.raises(UserError, match="needs acceptable and unacceptable sentences"):
        choose_threshold(np.array([-3.0, -2.0]), np.array([1, 1]))


def test_the_threshold_search_compares_mccs_rounded_to_two_decimals() -> None:
    """As the notebook: the first threshold whose train MCC, rounded to 2 decimals, is highest; here that is not the
    threshold of the highest unrounded MCC."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = rng.normal(0, 1, 300) + 0.4 * labels
    grid = np.linspace(scores.min(), scores.max(), 100)
    rounded = [round(_mcc(labels.tolist(), (scores >= t).astype(int).tolist()), 2) for t in grid]
    exact = [_mcc(labels.tolist(), (scores >= t).astype(int).tolist()) for t in grid]
    threshold, higher_is_worse, train_mcc = choose_threshold(scores, labels)
    assert not higher_is_worse and train_mcc == max(rounded)
    assert threshold == grid[rounded.index(max(rounded))] != grid[int(np.argmax(exact))]
