"""The whole recipe on a micro configuration, through the console entry point, as `make reproduce` runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from reproduce.io import read_json
from reproduce.paths import PROJECT_ROOT
from tests.conftest import CP1251_WORK, micro_overrides


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("e2e")
    shutil.copytree(PROJECT_ROOT / "results" / "published", tmp / "results" / "published")
    out = subprocess.run([sys.executable, "-m", "reproduce.cli", *micro_overrides(tmp)], cwd=tmp,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "[stage1] step" in out.stdout and "tok/s" in out.stdout and "ETA" in out.stdout
    return tmp


def test_results_record_metrics_and_provenance(run_dir: Path) -> None:
    summary = read_json(run_dir / "results" / "micro" / "summary.json")
    assert [(r["stage"], r["context"]) for r in summary["perplexity"]] == [
        ("stage1", 32), ("stage1", 64), ("stage2", 32), ("stage2", 64)]
    assert all(r["perplexity"] > 1 and r["bits_per_byte"] > 0 for r in summary["perplexity"])
    assert summary["unigram"]["tokens"] == summary["perplexity"][0]["tokens"]
    for stage in ("stage1", "stage2"):
        assert summary["rublimp"][stage]["n_pairs"] == 45 * 4
        assert len(summary["rublimp"][stage]["per_phenomenon"]) == 45
    meta = summary["meta"]
    for key in ("package_version", "torch", "transformers", "lm_eval", "git_commit", "device", "dtype", "seed",
                "batch_size"):
        assert key in meta, key
    for name in ("curves.json", "data.json", "lm_eval_rublimp_stage2.json", "config.yaml"):
        assert (run_dir / "results" / "micro" / name).is_file()
    assert read_json(run_dir / "results" / "architectures.json")["models"]["rugpt3_large"]["parameters"] == 760_300_032


def test_split_keeps_test_works_out_of_training_and_records_the_cp1251_work(run_dir: Path) -> None:
    data = read_json(run_dir / "results" / "micro" / "data.json")
    test, train = set(data["split"]["test"]["works"]), set(data["split"]["train"]["works"])
    assert test and not test & train and not set(data["split"]["validation"]["works"]) & train
    assert {"path": CP1251_WORK, "action": "decoded", "reason": "file is cp1251, not UTF-8"} in data["corpus"]["notes"]


def test_stage2_starts_from_stage1(run_dir: Path) -> None:
    curves = read_json(run_dir / "results" / "micro" / "curves.json")
    first = {s: next(p for p in curves["train"] if p["stage"] == s) for s in ("stage1", "stage2")}
    last1 = [p for p in curves["train"] if p["stage"] == "stage1"][-1]
    assert first["stage2"]["tokens"] > 0 and first["stage2"]["step"] == 10  # a fresh cursor and schedule
    assert first["stage2"]["loss"] < first["stage1"]["loss"] - 0.5  # not a fresh initialisation
    assert abs(first["stage2"]["loss"] - last1["loss"]) < 1.0


def test_exported_models_load_with_transformers(run_dir: Path) -> None:
    for stage in ("stage1", "stage2"):
        folder = run_dir / "work" / "models" / stage
        assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.bin"))
        model = AutoModelForCausalLM.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert model.config.n_positions == 64 and tokenizer.eos_token == "</s>" and tokenizer.pad_token == "<pad>"


def test_paper_is_built(run_dir: Path) -> None:
    for name in ("tables/architectures.md", "tables/mini_results.tex", "figures/loss_vs_tokens.pdf",
                 "figures/loss_vs_tokens.png", "README.md"):
        assert (run_dir / "paper" / name).stat().st_size > 0, name
