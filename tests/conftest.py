"""Shared fixtures: the read-only data mirror (../shared/data) and a micro configuration of the recipe."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reproduce.compose import compose_config
from reproduce.config import ModelConfig
from reproduce.paths import CONF_DIR, default_mirror

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

MIRROR = default_mirror()
CP1251_WORK = "ruslit/poems/Pushkin/Руслан и Людмила.txt"


@pytest.fixture(scope="session")
def mirror() -> Path:
    assert MIRROR is not None, "tests need the data mirror ../shared/data beside the project"
    return MIRROR


def micro_manifest(path: Path, n_works: int = 24) -> Path:
    """A manifest of a few short Chekhov stories plus the cp1251 poem."""
    lines = (CONF_DIR / "manifests" / "ruslit.tsv").read_text(encoding="utf-8").splitlines()
    header = [line for line in lines if line.startswith(("#", "path\t"))]
    rows = [line for line in lines if line.startswith("ruslit/prose/Chekhov/")][:n_works]
    rows += [line for line in lines if line.startswith(CP1251_WORK)]
    path.write_text("\n".join(header + rows) + "\n", encoding="utf-8")
    return path


def micro_overrides(tmp: Path, run_name: str = "micro") -> list[str]:
    """A whole recipe in seconds: tiny corpus, vocabulary and model, a few steps per stage; outputs under tmp."""
    return [
        f"data.sources.ruslit.manifest={micro_manifest(tmp / 'manifest.tsv')}",
        "data.shard_tokens=50000", "data.workers=1",
        f"data.cache_dir={tmp / 'cache'}",
        "data.allow_download=false",
        "data.validation_fraction=0.05",
        "data.test_fraction=0.1",
        "tokenizer.vocab_size=384",
        "model.n_layer=2", "model.n_embd=64", "model.n_head=2", "model.n_positions=256",  # the eval items fit
        "stages.stage1.context=32", "stages.stage1.epochs=0.2", "stages.stage1.batch_size=16",
        "stages.stage1.micro_batch_size=8", "stages.stage1.validate_every_steps=10",
        "stages.stage2.context=64", "stages.stage2.epochs=0.1", "stages.stage2.batch_size=8",
        "stages.stage2.micro_batch_size=8", "stages.stage2.validate_every_steps=10",
        "eval.perplexity.max_tokens=4096", "eval.limit=4", "eval.stages=[stage1,stage2]",
        f"run_name={run_name}", f"paper.runs=[{run_name}]",
        f"paths.results={tmp / 'results'}", f"paths.runs={tmp / 'runs'}", f"paths.paper={tmp / 'paper'}",
        f"paths.prepared={tmp / 'prepared'}",
    ]


def tiny_model_config(vocab_size: int, n_positions: int) -> ModelConfig:
    """The mini model config shrunk to one 32-wide layer, for tests that build a model by hand."""
    return compose_config("reproduce", ["model.n_layer=1", "model.n_embd=32", "model.n_head=2",
                                        f"model.n_positions={n_positions}", f"model.vocab_size={vocab_size}"]).model
