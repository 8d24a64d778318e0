"""`reproduce plan`: the arithmetic against hand computations and the published figures, the command end to end,
its one-line errors, and measured MFUs."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from reproduce.cli import main
from reproduce.commands.preflight import load
from reproduce.commands.table import COMMANDS
from reproduce.config.compose import compose_config
from reproduce.config.schema import RecipeConfig
from reproduce.core.arithmetic import gpt2_parameters
from reproduce.core.paths import CONF_DIR
from reproduce.recipe.plan import build_plan, plan_markdown
from tests.helpers import reproduce

ROOT = Path(__file__).resolve().parents[1]
LARGE = "experiment=rugpt3_large_paper"
N_LARGE = 760_300_032  # PUBLISHED.md §2


def _plan_config(tmp_path: Path, *overrides: str) -> RecipeConfig:
    """The plan command's checked config, its results (and so any gpu_mfu.json) under tmp_path."""
    return load(COMMANDS["plan"], [*overrides, f"paths.results={tmp_path / 'results'}"])


def _error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one stderr line of `reproduce plan <args>` run in-process, which must exit with code 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(["plan", *args])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in lines[0]
    return lines[0]


def test_parameter_formula_matches_every_architecture() -> None:
    models = json.loads((ROOT / "results" / "architectures.json").read_text(encoding="utf-8"))["models"]
    assert set(models) == {p.stem for p in (CONF_DIR / "model").glob("*.yaml")}
    for name, arch in models.items():
        assert gpt2_parameters(compose_config("reproduce", [f"model={name}"]).model) == arch["parameters"], name
    assert [models[f"rugpt3_{s}"]["parameters"] for s in ("small", "medium", "large")] == [
        125_231_616, 355_871_744, N_LARGE]


def test_large_paper_plan_matches_a_hand_computation_and_the_published_arithmetic(tmp_path: Path) -> None:
    plan = build_plan(_plan_config(tmp_path, LARGE))
    assert plan["parameters"] == N_LARGE and plan["world_size"] == 1
    stage1 = plan["stages"]["stage1"]
    windows = (80_000_000_000 - 1) // 1024  # 3 epochs over 80B tokens at 1024, batch 512
    steps = 3 * windows // 512
    assert (stage1["windows"], stage1["steps"]) == (windows, steps) == (78_124_999, 457_763)
    tokens = steps * 512 * 1024
    assert stage1["tokens"] == tokens == 239_999_647_744  # 240B, short of it by the last partial batch
    attention = 12 * 24 * 1024 * 1536  # 12·L·T·d per token
    assert stage1["flops"] == 6 * N_LARGE * tokens + attention * tokens
    assert stage1["flops"] == pytest.approx(1.2035e21, rel=1e-4)
    assert (stage1["batch_tokens"], stage1["micro_batch"], stage1["accumulation"]) == (524_288, 8, 64)

    # one GPU, unsharded: 16 bytes/parameter + 34·s·b·h per layer + s·b·V x 10 bytes
    memory = 16 * N_LARGE + 24 * 34 * 1024 * 8 * 1536 + 1024 * 8 * 50257 * 10
    assert stage1["memory_gib"]["total"] == pytest.approx(memory / 2**30)
    v100 = plan["devices"]["V100 SXM"]["stages"]["stage1"]
    assert v100["gpu_hours"] == pytest.approx(stage1["flops"] / (0.45 * 125e12) / 3600)
    assert v100["days"] == pytest.approx(v100["gpu_hours"] / 24) and v100["mfu_source"] == "assumed"
    assert plan["devices"]["V100 SXM"]["dtype"] == "fp16"  # no bf16 on a V100: its fp16 peak

    # "around 14 days on 128 GPUs for 1024 context" (stage 1): PUBLISHED.md §7 derives 6ND ≈ 1.09e21 FLOPs against
    # 1.94e22 FLOP of V100 fp16 capacity, "about 5.6%"; unrounded 6ND gives 5.66%, and with attention 6.2%.
    published = plan["published"]
    assert (published["stages"], published["gpu_hours"]) == (["stage1"], 128 * 14 * 24)
    capacity = 128 * 14 * 24 * 3600 * 125e12
    assert f"{6 * N_LARGE * tokens:.2e}" == "1.09e+21" and f"{capacity:.2e}" == "1.94e+22"
    assert published["implied_mfu_6nd"] == pytest.approx(6 * N_LARGE * tokens / capacity)
    assert abs(published["implied_mfu_6nd"] - 0.056) < 0.001  # "about 5.6%"
    assert published["implied_mfu"] == pytest.approx(stage1["flops"] / capacity)
    assert f"{published['implied_mfu']:.1%}" == "6.2%"
    assert "covering stage1 only, not stage2" in plan_markdown(plan)


def test_multinode_plan_needs_no_gpu_and_accumulates_once_with_the_templates_micro_batches(tmp_path: Path) -> None:
    comment = (CONF_DIR / "trainer" / "multinode.yaml").read_text(encoding="utf-8")
    micro = re.findall(r"stages\.stage\d\.micro_batch_size=\d+", comment)
    assert micro == ["stages.stage1.micro_batch_size=4", "stages.stage2.micro_batch_size=2"]
    cfg = _plan_config(tmp_path, LARGE, "trainer=multinode", *micro)  # no machine check: 128 GPUs on a CPU box
    plan = build_plan(cfg)
    assert plan["world_size"] == 128
    assert [(s["micro_batch"], s["accumulation"]) for s in plan["stages"].values()] == [(4, 1), (2, 1)]
    hours = plan["devices"]["V100 SXM"]["stages"]["stage1"]["gpu_hours"]
    assert plan["devices"]["V100 SXM"]["stages"]["stage1"]["days"] == pytest.approx(hours / 128 / 24)

    sharded = build_plan(_plan_config(tmp_path, LARGE, "trainer=fsdp"))["stages"]["stage1"]["memory_gib"]
    assert sharded["weights"] + sharded["gradients_and_optimizer"] == pytest.approx(16 * N_LARGE / 8 / 2**30)


def test_plan_command_prints_the_table_writes_the_plan_and_touches_no_data(tmp_path: Path) -> None:
    started = time.monotonic()
    out = reproduce("plan", LARGE, f"paths.results={tmp_path / 'results'}", f"paths.runs={tmp_path / 'runs'}",
                    cwd=tmp_path, code=None, timeout=60)
    seconds = time.monotonic() - started
    assert out.returncode == 0, out.stderr[-2000:]
    assert seconds < 10, f"reproduce plan took {seconds:.1f} s"
    assert "| stage1 | 1,024 | 240B | 457,763 |" in out.stdout and "| published (stage1) |" in out.stdout
    assert "V100 SXM: GPU-h / days" in out.stdout and "implied MFU 6.2%" in out.stdout
    folder = tmp_path / "results" / "plan"
    assert (folder / "rugpt3_large_paper.md").read_text(encoding="utf-8") == out.stdout
    saved = json.loads((folder / "rugpt3_large_paper.json").read_text(encoding="utf-8"))
    assert saved["stages"]["stage1"]["tokens"] == 239_999_647_744 and saved["meta"]["package"] == "reproduce"
    assert saved["config"]["model"]["name"] == "rugpt3_large" and saved["config"]["trainer"]["world_size"] == 1
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "results", "results/plan", "results/plan/rugpt3_large_paper.json", "results/plan/rugpt3_large_paper.md"]


@pytest.mark.parametrize("mfu", ["0", "1.5"])
def test_an_mfu_outside_zero_to_one_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], mfu: str) -> None:
    line = _error(capsys, LARGE, f"plan.mfu={mfu}", f"paths.results={tmp_path}")
    assert f"plan.mfu={float(mfu)}: must lie in (0, 1]" in line
    assert not list(tmp_path.iterdir())


def test_a_corpus_of_unknown_size_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    line = _error(capsys, f"paths.results={tmp_path}")  # mini: no data.json under tmp_path
    assert line == (f"error: plan.corpus_tokens is not set and {tmp_path / 'mini' / 'data.json'} does not exist: give "
                    "the corpus size, e.g. plan.corpus_tokens=80000000000, or run `reproduce prepare` first")
    (tmp_path / "mini").mkdir()
    (tmp_path / "mini" / "data.json").write_text('{"split": {"train": {"tokens": 100000}}}', encoding="utf-8")
    plan = build_plan(load(COMMANDS["plan"], [f"paths.results={tmp_path}"]))
    assert plan["corpus_tokens"] == 100_000 and plan["stages"]["stage1"]["windows"] == 99_999 // 128


@pytest.mark.parametrize("text", ["{not json", '{"device": "NVIDIA H200"}',
                                  '{"device": "NVIDIA H200", "runs": [{"model": "rugpt3_large", "mfu": 2}]}'])
def test_a_malformed_gpu_mfu_file_is_one_line_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        text: str) -> None:
    path = tmp_path / "perf" / "gpu_mfu.json"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    assert f"error: {path}: not a GPU MFU file (" in _error(capsys, LARGE, f"paths.results={tmp_path}")
    main(["plan", LARGE, f"paths.results={tmp_path}", "plan.use_measured=false"])  # ignored when not used
    assert "45.0% assumed on every device" in capsys.readouterr().out


def test_a_measured_mfu_replaces_the_assumed_one_for_its_device_model_and_context(tmp_path: Path) -> None:
    run = {"model": "rugpt3_large", "context": 1024, "micro_batch": 8, "path": "package", "variant": [],
           "tokens_per_second": 1e4}  # as bench/gpu_mfu.py writes them
    measured = {"meta": {}, "device": "NVIDIA H200", "runs": [
        {**run, "mfu": 0.52}, {**run, "micro_batch": 4, "mfu": 0.6},  # another micro-batch than the stage's
        {**run, "path": "bare", "mfu": 0.7}, {**run, "variant": ["trainer.compile=true"], "mfu": 0.65},
        {**run, "model": "rugpt3_small", "mfu": 0.3}]}
    path = tmp_path / "results" / "perf" / "gpu_mfu.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(measured), encoding="utf-8")
    plan = build_plan(_plan_config(tmp_path, LARGE))
    h200 = plan["devices"]["H200 SXM"]["stages"]
    assert (h200["stage1"]["mfu"], h200["stage1"]["mfu_source"]) == (0.52, "measured on NVIDIA H200")
    assert (h200["stage2"]["mfu"], h200["stage2"]["mfu_source"]) == (0.45, "assumed")  # 2048 was not measured
    assert h200["stage1"]["gpu_hours"] == pytest.approx(plan["stages"]["stage1"]["flops"] / (0.52 * 989.4e12) / 3600)
    assert all(s["mfu_source"] == "assumed" for d in ("V100 SXM", "A100", "H100 SXM")
               for s in plan["devices"][d]["stages"].values())
    text = plan_markdown(plan)
    assert "stage1 52.0% measured, stage2 45.0% assumed" in text and "52.0% measured on NVIDIA H200" in text
    unused = build_plan(_plan_config(tmp_path, LARGE, "plan.use_measured=false"))
    assert unused["devices"]["H200 SXM"]["stages"]["stage1"]["mfu_source"] == "assumed"
