"""Every tool of bench/ runs, in its smoke mode (a micro configuration, a temporary output file), as a subprocess the
way a user starts it, and leaves the committed results/perf/ alone. bench/gpu_check.py and gpu_check.sh run in
tests/test_gpu_check.py (--tiny, against the bundle built here)."""

from __future__ import annotations

import hashlib
import json
import math
import sys
import tarfile
from pathlib import Path

import pytest

from reproduce.core.paths import CONF_DIR, SOURCE_ROOT
from reproduce.data.manifest import read_manifest
from reproduce.evaluate.benchmarks import TASKS_DIR
from tests.helpers import MICRO_MANIFEST, micro_overrides, reproduce, run

BENCH = SOURCE_ROOT / "bench"
PERF = SOURCE_ROOT / "results" / "perf"
# Each tool and the test that runs it (the GPU check's parts run in tests/test_gpu_check.py).
TESTED = {"data_throughput.py", "eval_entries.py", "eval_throughput.py", "fail_fast.py", "gpu_bundle.py",
          "gpu_check.py", "gpu_mfu.py", "paper_build.py", "probe.py", "quality_floors.py", "stage2_positions.py",
          "train_throughput.py", "oldest_deps.py", "prepared_verify.py", "fuzz.py", "probe_fresh.py",
          "eval_curve.py"}
# Shorter stages than the micro recipe's: a model to measure, not to read numbers from.
SHORT = ["stages.stage1.epochs=0.02", "stages.stage2.epochs=0.02"]


def bench(name: str, *args: str, cwd: Path, timeout: float = 600) -> dict:
    """``python bench/<name> <args>`` in ``cwd``; asserts exit 0 and that results/perf/ is unchanged; the JSON it
    wrote to ``cwd``/out.json (empty when it writes none)."""
    committed = {p.name: p.read_bytes() for p in PERF.iterdir()}
    run([sys.executable, str(BENCH / name), *args], cwd=cwd, timeout=timeout)
    assert {p.name: p.read_bytes() for p in PERF.iterdir()} == committed
    out = cwd / "out.json"
    return json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}


@pytest.fixture(scope="module")
def micro_run(tmp_path_factory) -> tuple[Path, list[str]]:
    """A micro run, prepared and trained with short stages: its folder and overrides."""
    tmp = tmp_path_factory.mktemp("micro_run")
    overrides = [*micro_overrides(tmp), *SHORT]
    for command in ("prepare", "train"):
        reproduce(command, *overrides, cwd=tmp, timeout=600)
    return tmp, overrides


def test_every_bench_tool_has_a_smoke_test() -> None:
    assert {p.name for p in BENCH.glob("*.py")} == TESTED


def test_eval_entries_finds_the_suite_resolved_once_by_the_preflight_and_once_by_the_run(tmp_path: Path) -> None:
    out = run([sys.executable, str(BENCH / "eval_entries.py"), "--work", str(tmp_path), "--smoke"], cwd=tmp_path)
    lines = dict(line.split(": ", 1) for line in out.stdout.splitlines() if line.endswith(")"))
    assert lines["suites.py"].startswith("2 entries from 2 functions (")


def test_quality_floors_of_the_committed_mini_run(tmp_path: Path) -> None:
    summary = SOURCE_ROOT / "results" / "mini" / "summary.json"
    out = run([sys.executable, str(BENCH / "quality_floors.py"), str(summary)], cwd=tmp_path)
    assert "run mini" in out.stdout and "MISSED" not in out.stdout


def test_gpu_bundle_has_the_layout_gpu_check_sh_reads(gpu_bundle: Path) -> None:
    assert {p.name for p in gpu_bundle.iterdir()} == {"site.tar.xz", "data.tar.xz", "bundle.json"}
    with tarfile.open(gpu_bundle / "site.tar.xz") as site:
        names = site.getnames()
    tops = {name.split("/")[0] for name in names}
    assert {"hydra", "omegaconf", "lm_eval", "datasets", "multiprocess"} <= tops  # what gpu_check.sh looks for
    assert not any(name.startswith("lm_eval/tasks/") and name.count("/") > 2 for name in names)  # no task folders
    listed = {e.path: e.sha256 for m in [*CONF_DIR.glob("manifests/*.tsv"), *TASKS_DIR.glob("*/manifest.tsv")]
              for e in read_manifest(m)}
    with tarfile.open(gpu_bundle / "data.tar.xz") as data:
        files = {m.name: hashlib.sha256(data.extractfile(m).read()).hexdigest() for m in data if m.isfile()}
    assert all(listed.get(path) == sha for path, sha in files.items())  # laid out as the mirror, sha256 intact
    assert {e.path for e in read_manifest(MICRO_MANIFEST)} < set(files)  # the corpus, and the evaluation files
    assert any(path.startswith("eval/rublimp/") for path in files)
    bundle = json.loads((gpu_bundle / "bundle.json").read_text(encoding="utf-8"))
    assert bundle["smoke"] and bundle["data_files"] == len(files)


@pytest.mark.slow  # the whole paper/ rebuilt (test_paper.py checks its bytes too)
def test_paper_build_smoke_rebuilds_the_committed_paper(tmp_path: Path) -> None:
    result = bench("paper_build.py", "--smoke", "--out", str(tmp_path / "out.json"), cwd=tmp_path)
    assert len(result["seconds"]) == 1 and "identical_to_committed" in result  # bytes: CPU-dependent PNGs


def test_probe_smoke_is_clean_on_one_case_of_each_class(tmp_path: Path) -> None:
    result = bench("probe.py", "--smoke", "--out", str(tmp_path / "out.json"), cwd=tmp_path)
    assert result["verdicts"] == {"clean": result["cases"]}
    assert {row["class"] for row in result["rows"]} == {"names", "models", "values", "hydra", "eval inputs", "paper"}


@pytest.mark.slow
def test_fail_fast_smoke_refuses_its_settings_with_exit_code_2(tmp_path: Path) -> None:
    result = bench("fail_fast.py", "--smoke", "--out", str(tmp_path / "out.json"), cwd=tmp_path)
    assert result["all_exit_code_2"] and len(result["settings"]) == 3 and result["valid_run_first_step_s"] > 0


@pytest.mark.slow
def test_train_throughput_smoke_times_both_loops(tmp_path: Path) -> None:
    result = bench("train_throughput.py", "--smoke", "--out", str(tmp_path / "out.json"), cwd=tmp_path)
    (row,) = result["rows"]
    assert result["model"].startswith("micro (2 x 64") and result["steps"] == 4
    assert row["precision"] == "32-true" and row["package_tokens_per_s"] > 0 and row["bare_loop_tokens_per_s"] > 0


@pytest.mark.slow
def test_gpu_mfu_smoke_times_the_package_and_the_bare_loop(tmp_path: Path) -> None:
    result = bench("gpu_mfu.py", "--smoke", "--out", str(tmp_path / "out.json"), cwd=tmp_path)
    assert result["device"] == "cpu" and {r["path"] for r in result["runs"]} == {"package", "bare"}
    assert all(r["tokens_per_second"] > 0 for r in result["runs"])


@pytest.mark.slow
def test_data_throughput_smoke_prepares_the_micro_corpus_once_and_twice(tmp_path: Path) -> None:
    result = bench("data_throughput.py", "--smoke", "--out", str(tmp_path / "out.json"), cwd=tmp_path)
    assert result["command"].endswith("--smoke") and result["tokens_2x"] == 2 * result["tokens_1x"] > 0
    assert result["loader_tokens_per_second"] > 0 and result["peak_rss_bytes_2x"] > 0


@pytest.mark.slow
def test_stage2_positions_smoke_on_a_micro_run(micro_run: tuple[Path, list[str]], tmp_path: Path) -> None:
    _, overrides = micro_run
    result = bench("stage2_positions.py", "--smoke", "--run", "micro", "--out", str(tmp_path / "out.json"),
                   *[o for o in overrides if not o.startswith("run_name=")], cwd=tmp_path)
    (row,) = result["rows"]
    assert result["context"] == 64 and row["variant"] == "copy" and math.isfinite(row["perplexity"])


@pytest.mark.slow
def test_eval_throughput_smoke_on_a_micro_run(micro_run: tuple[Path, list[str]], tmp_path: Path) -> None:
    root, _ = micro_run
    result = bench("eval_throughput.py", "--smoke", "--model", str(root / "runs" / "micro" / "models" / "stage2"),
                   "--out", str(tmp_path / "out.json"), cwd=tmp_path)
    assert result["meta"]["rublimp_limit"] == 2 and result["rublimp"]["pairs"] == 2 * 45  # 45 phenomena
    assert set(result["ru_local"]["metrics"]) == {"rublimp", "xwinograd_ru_local", "parus_crowd_majority",
                                                  "rucola_indomain_dev"}


def test_oldest_deps_plans_the_lower_bounds_and_runs_the_tests_in_smoke_mode(tmp_path: Path) -> None:
    """The plan (each direct dependency at its declared lower bound), then this venv instead of a new one: one test
    file, no recipe; the record's fields."""
    result = bench("oldest_deps.py", "--smoke", "--out", str(tmp_path / "out.json"), "--work", str(tmp_path / "w"),
                   cwd=tmp_path)
    assert result["kind"] == "oldest" and result["smoke"] is True
    assert {"transformers==4.54", "pytorch-lightning==2.4", "lm-eval[hf]==0.4.13"} <= set(result["requested"])
    assert result["requested"][0].startswith("torch")  # TORCH_SPEC: the build on this machine's disk
    assert result["tests"]["passed"] > 0 and result["tests"]["failed"] == 0 and result["tests"]["exit_code"] == 0
    assert result["direct"]["transformers"] == result["installed"]["transformers"]


@pytest.mark.slow
def test_prepared_verify_smoke_times_the_verification_and_training(tmp_path: Path) -> None:
    result = bench("prepared_verify.py", "--smoke", "--out", str(tmp_path / "out.json"), cwd=tmp_path)
    assert result["smoke"] and result["meets_floor"] is None and result["training_tokens_per_second"] > 0
    assert result["load_with_sha256_s"] > 0 and result["verify_over_training"] > 0


def test_fuzz_smoke_tries_each_kind_without_a_failure(tmp_path: Path) -> None:
    result = bench("fuzz.py", "--smoke", "--out", str(tmp_path / "out.json"), cwd=tmp_path)
    assert result["failures"] == 0 and result["smoke"]
    assert {kind: r["cases"] > 0 for kind, r in result["kinds"].items()} == {"overrides": True, "damaged files": True,
                                                                              "console script": True}


def test_probe_fresh_smoke_is_clean_on_one_case_of_each_class(tmp_path: Path) -> None:
    result = bench("probe_fresh.py", "--smoke", "--out", str(tmp_path / "out.json"), cwd=tmp_path)
    assert result["verdicts"] == {"clean": result["cases"]}


@pytest.mark.slow
def test_eval_curve_smoke_trains_without_and_with_the_benchmarks(micro_run: tuple[Path, list[str]],
                                                                  tmp_path: Path) -> None:
    """On the micro run's prepared set (its prepare step reuses it): a point every 8 steps and at each stage's end."""
    _, overrides = micro_run
    prepared = [o for o in overrides if o.startswith(("paths.prepared=", "data.cache_dir="))]
    result = bench("eval_curve.py", "--smoke", "--out", str(tmp_path / "out.json"), *prepared, cwd=tmp_path,
                   timeout=900)
    assert result["smoke"] and [row["stage"] for row in result["rows"]] == ["stage1", "stage2"]
    assert all(row["points"] == 2 for row in result["rows"])
    assert result["overhead"] == result["seconds_with"] / result["seconds_without"] > 0
