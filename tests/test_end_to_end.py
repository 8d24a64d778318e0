"""The whole recipe on a micro configuration, through the console script as `make reproduce` runs it; then the
same recipe as separate commands (prepare, train, eval, paper), and what a run may and may not overwrite."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from transformers import AutoModelForCausalLM, AutoTokenizer

from reproduce.core.checksums import sums_problem
from reproduce.core.io import read_json
from reproduce.core.paths import SOURCE_ROOT
from tests.helpers import CP1251_WORK, micro_overrides, reproduce

pytestmark = pytest.mark.slow  # the whole micro recipe through the console script, then again as four commands


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("e2e")
    shutil.copytree(SOURCE_ROOT / "results" / "published", tmp / "results" / "published")
    out = reproduce(*micro_overrides(tmp), cwd=tmp)
    assert "[stage1] step" in out.stdout and "tok/s" in out.stdout and "ETA" in out.stdout
    assert "it/s" not in out.stderr and "%|" not in out.stderr  # no third-party progress bars
    return tmp


def test_results_record_metrics_and_provenance(run_dir: Path) -> None:
    summary = read_json(run_dir / "results" / "micro" / "summary.json")
    assert [(r["stage"], r["context"]) for r in summary["perplexity"]] == [
        ("stage1", 32), ("stage1", 64), ("stage2", 32), ("stage2", 64)]
    assert all(r["perplexity"] > 1 and r["bits_per_byte"] > 0 for r in summary["perplexity"])
    assert summary["unigram"]["tokens"] == summary["perplexity"][0]["tokens"]
    by_position = read_json(run_dir / "results" / "micro" / "loss_by_position.json")
    tokens = summary["unigram"]["tokens"]
    assert by_position["windows"] == {"32": tokens // 32, "64": tokens // 64}
    for row in summary["perplexity"]:  # the mean over positions is the mean over tokens: each window is full
        losses = by_position["stages"][row["stage"]][str(row["context"])]
        assert len(losses) == row["context"]
        assert sum(losses) / len(losses) == pytest.approx(row["nll_per_token"], rel=1e-6)
        assert sum(losses[: len(losses) // 2]) / (len(losses) // 2) == pytest.approx(row["nll_positions_first_half"])
    for stage in ("stage1", "stage2"):
        assert summary["rublimp"][stage]["n_pairs"] == 45 * 4
        assert len(summary["rublimp"][stage]["per_phenomenon"]) == 45
        suite = summary["suite"][stage]
        assert [suite[task]["n"] for task in ("xwinograd_ru_local", "parus_crowd_majority", "rucola_indomain_dev")] \
            == [4, 4, 4] and "mcc" in suite["rucola_indomain_dev"]
    samples = read_json(run_dir / "results" / "micro" / "samples.json")
    assert set(samples["stages"]) == {"stage1", "stage2"} and samples["settings"]["seed"] == 1234
    assert all(len(rows) == 3 * 2 for rows in samples["stages"].values())  # three prompts, two samples each
    meta = summary["meta"]
    for key in ("package_version", "torch", "transformers", "lm_eval", "git_commit", "device", "dtype", "seed",
                "batch_size"):
        assert key in meta, key
    assert summary["stages"]["stage1"]["parameters"] == read_json(run_dir / "results" / "micro" / "train.json")[
        "stages"]["stage1"]["parameters"] > 0
    for name in ("curves.json", "data.json", "train.json", "lm_eval_ru_local_stage2.json", "samples.json",
                 "config.yaml"):
        assert (run_dir / "results" / "micro" / name).is_file()
    assert read_json(run_dir / "results" / "architectures.json")["models"]["rugpt3_large"]["parameters"] == 760_300_032


def test_training_records_throughput_and_mfu_where_the_peak_is_known(run_dir: Path) -> None:
    """tokens/s in train.json and in each stage's metrics.csv; on a CPU (no peak in the table) no MFU at all."""
    train = read_json(run_dir / "results" / "micro" / "train.json")["stages"]
    for name, record in train.items():
        assert record["device"] == "cpu" and record["peak_flops"] is None and record["mfu"] is None
        assert record["median_window_tokens_per_second"] > 0 and record["median_window_mfu"] is None
        assert record["flops_per_token"] == 6 * record["parameters"] + 12 * 2 * record["context"] * 64  # micro model
        (csv,) = (run_dir / "runs" / "micro" / "logs" / name).glob("*/metrics.csv")
        header = csv.read_text(encoding="utf-8").splitlines()[0].split(",")
        assert {"train_loss", "tokens_per_second", "val_loss"} <= set(header) and "mfu" not in header


def test_split_keeps_test_works_out_of_training_and_records_the_cp1251_work(run_dir: Path) -> None:
    data = read_json(run_dir / "results" / "micro" / "data.json")
    test, train = set(data["split"]["test"]["works"]), set(data["split"]["train"]["works"])
    assert test and not test & train and not set(data["split"]["validation"]["works"]) & train
    assert {"id": f"ruslit:{CP1251_WORK}", "line": None, "action": "decoded",
            "reason": "file is cp1251, not UTF-8"} in data["corpus"]["notes"]


def test_stage2_starts_from_stage1(run_dir: Path) -> None:
    curves = read_json(run_dir / "results" / "micro" / "curves.json")
    first = {s: next(p for p in curves["train"] if p["stage"] == s) for s in ("stage1", "stage2")}
    last1 = [p for p in curves["train"] if p["stage"] == "stage1"][-1]
    assert first["stage2"]["tokens"] > 0 and first["stage2"]["step"] == 10  # a fresh cursor and schedule
    assert first["stage2"]["loss"] < first["stage1"]["loss"] - 0.5  # not a fresh initialisation
    assert abs(first["stage2"]["loss"] - last1["loss"]) < 1.0


def test_exported_models_load_with_transformers(run_dir: Path) -> None:
    for stage in ("stage1", "stage2"):
        folder = run_dir / "runs" / "micro" / "models" / stage
        assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.bin"))
        model = AutoModelForCausalLM.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert model.config.n_positions == 256 and tokenizer.eos_token == "</s>" and tokenizer.pad_token == "<pad>"


def test_paper_is_built(run_dir: Path) -> None:
    for name in ("tables/architectures.md", "tables/perplexity.tex", "figures/loss_vs_tokens.pdf",
                 "figures/loss_vs_tokens.png", "figures/loss_by_position.png", "README.md"):
        assert (run_dir / "paper" / name).stat().st_size > 0, name


def test_progress_lines_are_logged_to_the_run(run_dir: Path) -> None:
    log = (run_dir / "runs" / "micro" / "reproduce.log").read_text(encoding="utf-8")
    assert " == " in log.splitlines()[0] and "run_name=micro" in log.splitlines()[0]
    assert "[stage1] step" in log and "[eval] micro-stage2 rublimp: acc" in log


def test_another_config_in_the_same_run_name_is_refused(run_dir: Path) -> None:
    results = run_dir / "results" / "micro"
    before = {p.name: p.read_bytes() for p in results.iterdir()}
    out = reproduce(*micro_overrides(run_dir), "model.n_layer=3", cwd=run_dir, code=2)
    assert out.stderr.strip() == (f"error: {results} holds results of another config (model.n_layer: 2 -> 3); "
                                  "choose another run_name=..., or pass overwrite=true to replace them")
    assert {p.name: p.read_bytes() for p in results.iterdir()} == before


@pytest.fixture(scope="module")
def steps_dir(run_dir: Path) -> Path:
    """The same recipe as four commands, in the same folders under another run name (its paper/ apart: a rebuild
    replaces the whole folder)."""
    overrides = [f"paths.paper={run_dir / 'paper_steps'}" if a.startswith("paths.paper=") else a
                 for a in micro_overrides(run_dir, run_name="steps")] + ["stages.stage1.print_every_s=0.001"]
    for command in ("prepare", "train", "eval", "paper"):
        args = [a for a in overrides if a.startswith(("paths.", "paper."))] if command == "paper" else overrides
        out = reproduce(command, *args, cwd=run_dir)
    assert "[paper] wrote 45 files" in out.stdout
    return run_dir


def test_commands_one_by_one_give_the_whole_recipes_numbers(steps_dir: Path) -> None:
    whole = read_json(steps_dir / "results" / "micro" / "summary.json")
    steps = read_json(steps_dir / "results" / "steps" / "summary.json")
    for key in ("perplexity", "unigram", "rublimp"):
        assert steps[key] == whole[key], key
    log = (steps_dir / "runs" / "steps" / "reproduce.log").read_text(encoding="utf-8")
    assert "[stage1] step 1/" in log and "loss nan" not in log  # the first progress line has a loss


def test_overwrite_replaces_the_changed_step_and_what_follows(steps_dir: Path) -> None:
    results, runs = steps_dir / "results" / "steps", steps_dir / "runs" / "steps"
    data_json = (results / "data.json").read_bytes()
    (runs / "models" / ".stage1.killed.tmp").mkdir()  # what a killed export leaves behind
    (results / ".summary.json.killed.tmp").write_text("{")
    args = [*micro_overrides(steps_dir, run_name="steps"), "data.split_seed=99"]
    out = reproduce("prepare", *args, cwd=steps_dir, code=2)
    assert "(data.split_seed: 1234 -> 99)" in out.stderr and (results / "summary.json").is_file()
    reproduce("prepare", *args, "overwrite=true", cwd=steps_dir)
    assert (results / "data.json").read_bytes() != data_json  # another split
    for stale in ("train.json", "curves.json", "summary.json", "lm_eval_ru_local_stage1.json"):
        assert not (results / stale).exists(), stale  # the changed step's later steps are gone
    assert not (runs / "models").exists() and not (runs / "checkpoints").exists()
    assert not list(steps_dir.rglob(".*.tmp"))
    out = reproduce("eval", *args, cwd=steps_dir, code=2)  # the recorded config matches, but nothing is trained
    assert "no train output for this config" in out.stderr


def test_contamination_report_covers_every_benchmark_and_reaches_the_paper(run_dir: Path) -> None:
    report = read_json(run_dir / "results" / "micro" / "contamination.json")
    assert set(report["sets"]) == {"rublimp", "xwinograd_ru", "parus", "rucola", "test_works"}
    assert report["n"] == 13 and report["train_tokens"] > 0
    assert report["sets"]["parus"]["items"] == 500 and report["sets"]["rucola"]["items"] == 983
    assert all(0 <= row["contaminated"] <= row["checked"] <= row["items"] for row in report["sets"].values())
    assert "rublimp" in (run_dir / "paper" / "tables" / "contamination.md").read_text(encoding="utf-8")


def test_eval_of_a_run_directory_scores_every_stage_the_way_the_recipe_did(run_dir: Path) -> None:
    """`reproduce eval model=runs/<run>`: each exported stage on the suite (the recipe's own numbers again) and the
    sliding-window perplexity of the run's test works, under results/eval/<run>-<stage>/."""
    reproduce("eval", "model=runs/micro", "eval.limit=4", "eval.tasks=[rublimp,parus_crowd_majority]",
              "eval.perplexity.stride=32", cwd=run_dir)
    recipe = read_json(run_dir / "results" / "micro" / "summary.json")["suite"]
    for stage in ("stage1", "stage2"):
        folder = run_dir / "results" / "eval" / f"micro-{stage}"
        metrics = read_json(folder / "ru_local.json")["metrics"]
        for task in ("rublimp", "parus_crowd_majority"):
            assert metrics[task] == recipe[stage][task], (stage, task)
        perplexity = read_json(folder / "perplexity.json")
        assert perplexity["context"] == 256 and perplexity["stride"] == 32 and perplexity["n_texts"] > 0


def test_plan_counts_the_steps_and_tokens_training_counted(run_dir: Path) -> None:
    """`reproduce plan` of the same config (its corpus: the run's train split) and the trained stages agree: both
    count with reproduce/core/arithmetic.py."""
    reproduce("plan", *micro_overrides(run_dir), cwd=run_dir)
    plan = read_json(run_dir / "results" / "plan" / "micro.json")["stages"]
    trained = read_json(run_dir / "results" / "micro" / "train.json")["stages"]
    assert {name: (s["steps"], s["tokens"]) for name, s in plan.items()} == {
        name: (s["steps"], s["tokens"]) for name, s in trained.items()}


def test_a_changed_result_gives_differs_naming_the_metric(run_dir: Path, tmp_path: Path) -> None:
    """`reproduce compare` of the micro run against a copy of its own results: identical; against a copy with one
    metric changed: differs, exit code 3, one line naming it, the results kept."""
    results = run_dir / "results" / "micro"
    reference = tmp_path / "reference"
    shutil.copytree(results, reference)
    out = reproduce("compare", f"reference={reference}", *micro_overrides(run_dir), cwd=run_dir)
    assert ": identical" in out.stdout
    summary = read_json(reference / "summary.json")
    summary["perplexity"][-1]["bits_per_byte"] += 0.01
    (reference / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    out = reproduce("compare", f"reference={reference}", *micro_overrides(run_dir), cwd=run_dir, code=3)
    line = "stage2 bits_per_byte @64"
    assert out.stderr.strip() == (f"differs: 1 metric(s) outside their tolerance: {line} (results kept in {results}; "
                                  "verdict.json has every row)")
    assert read_json(results / "verdict.json")["metrics"][line]["verdict"] == "differs"


def test_exports_carry_a_model_card_with_the_runs_scores(run_dir: Path) -> None:
    """README.md of each export: the Hub's metadata (parsed back with huggingface_hub) and every score of the stage
    as summary.json records it; the card is not in the export's SHA256SUMS, which still verifies."""
    summary = read_json(run_dir / "results" / "micro" / "summary.json")
    for stage in ("stage1", "stage2"):
        folder = run_dir / "runs" / "micro" / "models" / stage
        card = ModelCard.load(folder / "README.md")
        data = card.data
        assert (data.language, data.license, data.library_name, data.pipeline_tag) == (
            "ru", "mit", "transformers", "text-generation")
        assert data.base_model == ("micro-stage1" if stage == "stage2" else None) and data.datasets == ["ruslit"]
        scores = {(r.metric_type, r.metric_config or r.dataset_name): r.metric_value for r in data.eval_results}
        expected = {(key, f"context={row['context']}"): row[key] for row in summary["perplexity"]
                    if row["stage"] == stage for key in ("perplexity", "bits_per_byte")}
        expected |= {(metric, task): value for task, metrics in summary["suite"][stage].items()
                     if not task.startswith("rublimp_") for metric, value in metrics.items() if metric != "n"}
        assert scores == expected
        assert "zmitrovich2023family" in card.text and "README.md" not in (folder / "SHA256SUMS").read_text()
        assert sums_problem(folder) is None
