"""bench/gpu_check.sh --tiny: the GPU check's three parts run on this CPU with a micro model and corpus, from the
offline bundle (bench/gpu_bundle.py --smoke: its packages on the path, its data as the mirror), write their facts as
they go, and leave the repository's results alone; a wrong part or bundle is one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reproduce.core.io import read_json
from reproduce.core.paths import SOURCE_ROOT
from tests.helpers import run

SCRIPT = SOURCE_ROOT / "bench" / "gpu_check.sh"


def _run(*args: str, tmp: Path, bundle: Path | None = None) -> subprocess.CompletedProcess:
    """gpu_check.sh with ``args``; with ``bundle``, its packages and data are the bundle's (GPU_BUNDLE)."""
    env = {"PYTHON": sys.executable, "GPU_CHECK_LOG": str(tmp / "console.log"), "OUT": str(tmp / "out"),
           "PYTHONPATH": str(SOURCE_ROOT), "GPU_SITE": str(tmp / "site")}
    if bundle is not None:
        env["GPU_BUNDLE"] = str(bundle)
    (tmp / "out").mkdir(exist_ok=True)
    return run(["bash", str(SCRIPT), *args], code=None, timeout=600, env=env)


@pytest.mark.slow
def test_tiny_gpu_check_runs_every_part_from_the_offline_bundle(tmp_path: Path, gpu_bundle: Path) -> None:
    committed = (SOURCE_ROOT / "results" / "perf" / "gpu_mfu.json").read_bytes()
    out = _run("--tiny", "--root", str(tmp_path / "root"), tmp=tmp_path, bundle=gpu_bundle)
    assert out.returncode == 0, out.stdout[-3000:]
    assert (tmp_path / "site" / "site" / "lm_eval").is_dir() and (tmp_path / "site" / "data" / "ruslit").is_dir()
    check = read_json(tmp_path / "root" / "results" / "gpu_check" / "check.json")
    parts = check["parts"]
    assert check["tiny"] and [parts[p]["ok"] for p in ("a_mfu", "b_recipe", "c_engines")] == [True, True, True]

    mfu = read_json(tmp_path / "root" / "results" / "perf" / "gpu_mfu.json")
    variants = {tuple(run["variant"]) for run in mfu["runs"] if run["path"] == "package"}
    assert {(), ("model.attn_implementation=sdpa",), ("model.pad_vocab_multiple=1",)} <= variants
    assert any(run["opt_in"] for run in mfu["runs"]) and {run["path"] for run in mfu["runs"]} == {"package", "bare"}
    package = next(run for run in mfu["runs"] if run["path"] == "package" and not run["variant"])
    assert any("scaled_dot_product" in name for name in package["attention_kernels"])

    recipe = parts["b_recipe"]
    train = recipe["train"]
    assert train["first_checkpoint_step"] < train["stopped_at_step"] < train["final_step"]
    assert train["final_step"] == recipe["stages"]["stage1"]["steps"]  # resumed, and every step trained
    assert set(recipe["test_bits_per_byte"]) == set(recipe["rublimp"]) == {"gpu_check", "mini"}
    assert "zero_shot.md" in recipe["paper_tables"]
    export = tmp_path / "root" / "runs" / "gpu_check" / "models" / "stage2"
    assert read_json(export / "config.json")["vocab_size"] == 400  # padded to 448 in training, sliced back

    engines = parts["c_engines"]
    assert engines["ddp"]["export_vs_checkpoint"]["same_tensors"]
    assert engines["ddp"]["stopped_at_step"] < engines["ddp"]["final_step"]
    assert "needs CUDA" in engines["fsdp"]  # Lightning's FSDP runs on GPUs only

    assert {p.name for p in (tmp_path / "out").iterdir()} >= {"check.json", "gpu_mfu.json", "summary.json",
                                                              "gpu_check_results.tar.gz", "console.log"}
    assert (SOURCE_ROOT / "results" / "perf" / "gpu_mfu.json").read_bytes() == committed


def test_an_unknown_part_is_one_line(tmp_path: Path) -> None:
    out = _run("--tiny", "--parts", "a,d", "--root", str(tmp_path / "root"), tmp=tmp_path)
    assert out.returncode != 0 and out.stdout.strip().splitlines() == ["error: --parts=a,d: choose from a,b,c"]


def test_a_bundle_folder_without_the_archives_is_one_line(tmp_path: Path) -> None:
    out = _run("--tiny", "--root", str(tmp_path / "root"), tmp=tmp_path, bundle=tmp_path / "nothing")
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        f"error: GPU_BUNDLE={tmp_path / 'nothing'} holds no site.tar.xz and data.tar.xz; build it with "
        "bench/gpu_bundle.py --out"]
