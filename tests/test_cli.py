"""The console entry point: wrong overrides and bad settings fail fast with one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reproduce.errors import UserError
from reproduce.pipeline import check_config
from tests.conftest import compose_config

REPRODUCE = [sys.executable, "-m", "reproduce.cli"]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*REPRODUCE, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_unknown_config_option_names_the_override(tmp_path: Path) -> None:
    out = _run("model=rugpt3_huge", cwd=tmp_path)
    assert out.returncode != 0
    assert "model/rugpt3_huge" in out.stderr and "rugpt3_large" in out.stderr  # lists the available options


def test_misspelt_key_names_the_key(tmp_path: Path) -> None:
    out = _run("stages.stage1.contxt=64", cwd=tmp_path)
    assert out.returncode != 0 and "stages.stage1.contxt" in out.stderr


def test_user_error_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    out = _run("data.manifest=/nonexistent/manifest.tsv", f"paths.work_dir={tmp_path / 'w'}", cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: manifest /nonexistent/manifest.tsv not found: check the data config's `manifest` key"
    ]
    assert not (tmp_path / "w" / "shards").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("stages.stage1.batch_size=30", "stages.stage1.batch_size=30 is not a multiple"),
        ("stages.stage2.context=512", "stages.stage2.context=512 exceeds model.n_positions=256"),
        ("stages.stage2.init_from=stage3", "stages.stage2.init_from='stage3': not an earlier stage"),
        ("+trainer.max_steps=5", "trainer.max_steps is set by each stage"),
        ("eval.rublimp.stages=[stage9]", "eval.rublimp.stages: no stage 'stage9'"),
        ("tokenizer.kind=sentencepiece", "tokenizer.kind='sentencepiece'"),
    ],
)
def test_settings_that_cannot_run_fail_before_any_work(override: str, message: str) -> None:
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("(", r"\(")):
        check_config(compose_config("reproduce", override.split()))


@pytest.mark.parametrize("size", ["small", "medium", "large"])
def test_paper_experiments_compose_and_pass_the_checks(size: str) -> None:
    cfg = compose_config("reproduce", [f"experiment=rugpt3_{size}_paper"])
    check_config(cfg)
    assert cfg.model.n_positions == 2048 and cfg.tokenizer.kind == "released"
    assert [s.context for s in cfg.stages.values()] == [1024, 2048]
    assert [s.epochs for s in cfg.stages.values()] == [3, 1]
    assert cfg.stages.stage2.init_from == "stage1"
