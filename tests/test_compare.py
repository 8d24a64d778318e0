"""Did it reproduce? The verdict of a run against a reference, with tolerances from the seed spread: identical,
within seed spread, or differs (exit code 3, one line naming the metrics, the results kept)."""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from pathlib import Path

import pytest

from reproduce.config.compose import compose_config
from reproduce.core.errors import UserError
from reproduce.core.paths import SOURCE_ROOT
from reproduce.recipe.compare import (
    _git_summary,
    environment_table,
    environments,
    headline,
    keep_reference,
    load_reference,
)
from tests.helpers import reproduce

SUMMARY = {"run": "r", "perplexity": [{"stage": "stage2", "context": 256, "perplexity": 140.0, "bits_per_byte": 1.34,
                                       "tokens": 65536, "ratio_to_unigram": 0.138}],
           "unigram": {"perplexity": 1016.0, "bits_per_byte": 1.877, "tokens": 65536},
           "stages": {"stage2": {"parameters": 2615424, "tokens": 40960, "steps": 20}},
           "suite": {"stage2": {"rublimp": {"acc": 0.7264, "tie": 0.0, "n": 45000},
                                "rublimp_add_new_suffix": {"acc": 0.8, "n": 1000}}}}


def _write(folder: Path, changes: dict[str, float]) -> None:
    """A summary.json with the perplexity, the unigram's and RuBLiMP's accuracy changed by the given amounts."""
    summary = json.loads(json.dumps(SUMMARY))
    summary["perplexity"][0]["perplexity"] += changes.get("perplexity", 0.0)
    summary["suite"]["stage2"]["rublimp"]["acc"] += changes.get("acc", 0.0)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")


def _compare(root: Path, *args: str) -> subprocess.CompletedProcess:
    return reproduce("compare", "run_name=r", f"paths.results={root / 'results'}", f"paths.runs={root / 'runs'}", *args,
                     cwd=root, code=None, timeout=120)


def test_headline_metrics_leave_subtasks_and_counts_out() -> None:
    assert headline(SUMMARY) == {"stage2 perplexity @256": 140.0, "stage2 bits_per_byte @256": 1.34,
                                 "unigram perplexity": 1016.0, "unigram bits_per_byte": 1.877,
                                 "stage2 rublimp acc": 0.7264, "stage2 rublimp tie": 0.0}


def test_identical_within_seed_spread_and_differs(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _write(tmp_path / "reference", {})
    for seed, shift in ((1, 0.4), (2, -0.3), (3, 0.1)):  # the seed runs: a spread of perplexity and accuracy
        _write(results / f"r_seed{seed}", {"perplexity": shift, "acc": shift / 100})
    std = statistics.stdev([140.0, 140.4, 139.7, 140.1])

    _write(results / "r", {})
    out = _compare(tmp_path, f"reference={tmp_path / 'reference'}")
    assert out.returncode == 0, out.stderr
    assert "[verdict] r against" in out.stdout and ": identical" in out.stdout

    _write(results / "r", {"perplexity": 2.9 * std})  # inside 3 standard deviations
    out = _compare(tmp_path, f"reference={tmp_path / 'reference'}")
    assert out.returncode == 0 and ": within seed spread" in out.stdout, out.stderr
    verdict = json.loads((results / "r" / "verdict.json").read_text(encoding="utf-8"))
    row = verdict["metrics"]["stage2 perplexity @256"]
    assert row["verdict"] == "within seed spread" and row["tolerance"] == pytest.approx(3 * std)
    assert verdict["seed_runs"] == ["reference", "r_seed1", "r_seed2", "r_seed3"]
    assert verdict["metrics"]["unigram perplexity"]["verdict"] == "identical"  # no spread, and none needed
    spread = json.loads((results / "r" / "seed_spread.json").read_text(encoding="utf-8"))
    assert spread["metrics"]["stage2 perplexity @256"]["std"] == pytest.approx(std)

    _write(results / "r", {"acc": 0.05})  # far outside the accuracy's spread
    out = _compare(tmp_path, f"reference={tmp_path / 'reference'}")
    assert out.returncode == 3 and out.stderr.strip().splitlines() == [
        f"differs: 1 metric(s) outside their tolerance: stage2 rublimp acc (results kept in {results / 'r'}; "
        "verdict.json has every row)"]
    assert (results / "r" / "summary.json").is_file()


def test_a_missing_reference_is_one_line(tmp_path: Path) -> None:
    _write(tmp_path / "results" / "r", {})
    out = _compare(tmp_path, f"reference={tmp_path / 'nowhere'}")
    assert out.returncode == 2 and "compare.reference=" in out.stderr and "neither a results folder" in out.stderr
    out = _compare(tmp_path)  # outside the checkout: no committed results, no copy taken before a run
    assert out.returncode == 2 and "no reference to compare with" in out.stderr
    assert not (tmp_path / "results" / "r" / "verdict.json").exists()


def test_the_default_reference_is_git_else_the_copy_taken_before_the_run(tmp_path: Path) -> None:
    cfg = compose_config("reproduce", [f"paths.results={tmp_path / 'results'}", f"paths.runs={tmp_path / 'runs'}",
                                       "run_name=r"])
    _write(tmp_path / "results" / "r", {"perplexity": 1.0})
    keep_reference(cfg)  # what a recipe run does before it rewrites its results
    _write(tmp_path / "results" / "r", {"perplexity": 2.0})
    summary, source = load_reference(cfg)
    assert summary["perplexity"][0]["perplexity"] == 141.0 and source.endswith("runs/r/reference/summary.json")
    committed = SOURCE_ROOT / "results" / "mini" / "summary.json"
    found = _git_summary("HEAD", committed)
    if found is None:
        pytest.skip("not a git checkout")
    assert found[0] == json.loads(subprocess.run(["git", "show", "HEAD:results/mini/summary.json"], cwd=SOURCE_ROOT,
                                                 capture_output=True, text=True, check=True).stdout)
    assert found[1].startswith("git ") and found[1].endswith(":results/mini/summary.json")
    with pytest.raises(UserError, match="neither a results folder nor a git revision"):
        load_reference(compose_config("reproduce", ["compare.reference=no-such-revision", "run_name=r",
                                                    f"paths.results={tmp_path / 'results'}"]))
    shutil.rmtree(tmp_path / "runs")


def test_the_paper_shows_the_seed_spread_beside_the_reference_seed(tmp_path: Path) -> None:
    """With results/mini/seed_spread.json, the perplexity and zero-shot tables carry mean ± std over the seeds, each
    cell traced to its fields, and the figures draw the spread."""
    from reproduce.paper.build import render_paper
    from tests.paper_fixture import copy_results
    from tests.test_paper_trace import untraced

    root = copy_results(tmp_path)
    metrics = {"stage2 perplexity @256": {"mean": 140.5, "std": 0.75, "runs": 4},
               "stage2 rublimp acc": {"mean": 0.7251, "std": 0.0012, "runs": 4}}
    (root / "mini" / "seed_spread.json").write_text(json.dumps({"runs": ["reference", "mini_seed1"], "sigmas": 3.0,
                                                                "metrics": metrics}), encoding="utf-8")
    files, tables = render_paper(root, ["mini"])
    by_name = {t.name: t for t in tables}
    perplexity = next(r for r in by_name["perplexity"].rows if r[:2] == ["mini", "stage2"] and r[3] == "256")
    assert perplexity[-1] == "140.50 ± 0.75 (4 runs)"
    over_seeds = next(r for r in by_name["zero_shot"].rows if r[1] == "stage2, over seeds")
    assert over_seeds[2] == "0.725 ± 0.001 (4 runs)"
    assert untraced(tables, root) == []
    assert "mini/seed_spread.json" in files["README.md"].decode()


ENV = {"python": "3.11.7", "torch": "2.13.0+cpu", "transformers": "5.24.0", "tokenizers": "0.23.3", "lm_eval": "0.4.13",
       "pytorch_lightning": "2.6.6", "numpy": "2.4.6", "cpu_model": "AMD EPYC 9R14", "cpu_capability": "AVX512",
       "gpu": None, "torch_threads": 2, "dtype": "32-true", "seed": 1234, "git_commit": "a" * 40}


@pytest.mark.parametrize(("run_env", "overall", "expected", "finding"), [
    ({}, "identical", "identical", "identical expected (the same environment), and identical"),
    ({"git_commit": "b" * 40}, "within seed spread", "identical",
     "within seed spread although the environment is the same: a finding in its own right, non-determinism or a "
     "code change; the code changed (aaaaaaaaaaaa -> bbbbbbbbbbbb)"),
    ({}, "differs", "identical", "differs although the environment is the same: a finding in its own right, "
     "non-determinism or a code change; the same commit"),
    ({"cpu_capability": "AVX2", "transformers": "5.25.0"}, "within seed spread", "last digits may differ",
     "last digits may differ (another transformers, cpu_capability)"),
    ({"torch_threads": 4}, "identical", "last digits may differ", "last digits may differ (another threads), yet "
     "identical"),
    ({"numpy": None, "gpu": "NVIDIA H100"}, "within seed spread", "last digits may differ",
     "last digits may differ (another numpy, GPU)"),
    ({"seed": 1}, "within seed spread", "within seed spread", "within seed spread expected (another seed)"),
])
def test_the_environment_says_what_a_verdict_means(run_env: dict, overall: str, expected: str, finding: str) -> None:
    env = environments({"meta": ENV}, {"meta": {**ENV, **run_env}}, overall)
    assert (env["expected"], env["finding"]) == (expected, finding)
    assert env["reference"]["cpu_capability"] == "AVX512" and env["run"]["torch"] == "2.13.0+cpu"
    assert env["unrecorded"] == []


def test_an_environment_one_side_does_not_record_is_named(tmp_path: Path) -> None:
    old = {k: v for k, v in ENV.items() if k not in ("numpy", "cpu_model", "gpu")}  # a reference made before 0.2.0
    env = environments({"meta": old}, {"meta": ENV}, "identical")
    assert env["unrecorded"] == ["numpy", "cpu_model", "gpu"] and env["differs"] == []
    assert env["finding"] == "identical (the recorded environment is the same; numpy, CPU, GPU not recorded on both "\
                             "sides)"
    table = environment_table(env)
    assert "| CPU | — | AMD EPYC 9R14 | not recorded |" in table and "| threads | 2 | 2 |  |" in table
    env = environments({"meta": old}, {"meta": {**ENV, "git_commit": "b" * 40}}, "within seed spread")
    assert env["finding"] == ("within seed spread with the recorded environment the same; numpy, CPU, GPU not "
                              "recorded on both sides: they may explain it, else it is a finding (non-determinism or "
                              "a code change; the code changed (aaaaaaaaaaaa -> bbbbbbbbbbbb))")


def test_the_verdict_shows_both_environments(tmp_path: Path) -> None:
    results = tmp_path / "results"
    _write(tmp_path / "reference", {})
    _write(results / "r", {})
    for folder, env in ((tmp_path / "reference", ENV), (results / "r", {**ENV, "cpu_capability": "AVX2"})):
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        (folder / "summary.json").write_text(json.dumps({**summary, "meta": {"package": "reproduce", **env}}))
    out = _compare(tmp_path, f"reference={tmp_path / 'reference'}")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].endswith(": identical; last digits may differ (another cpu_capability), yet "
                                               "identical")
    assert "| cpu_capability | AVX512 | AVX2 | differs |" in out.stdout
    verdict = json.loads((results / "r" / "verdict.json").read_text(encoding="utf-8"))
    assert verdict["environment"]["differs"] == ["cpu_capability"]
    assert verdict["environment"]["reference"]["cpu_capability"] == "AVX512"
    assert verdict["environment"]["run"]["cpu_capability"] == "AVX2"
