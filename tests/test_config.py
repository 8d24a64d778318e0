"""The config checks: choice lists agree with their libraries, relations and sweeps are checked."""

from __future__ import annotations

import inspect
import re
import typing

import pytest
import pytorch_lightning as pl
import torch._inductor
from lightning_fabric.connector import _PRECISION_INPUT
from pytorch_lightning.accelerators import AcceleratorRegistry
from pytorch_lightning.strategies import StrategyRegistry
from torch.distributed.fsdp import ShardingStrategy
from transformers.activations import ACT2FN
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from reproduce.cli import sweep
from reproduce.commands import checks
from reproduce.config.compose import compose_config
from reproduce.core.errors import UserError
from reproduce.model.attention import SDPA_CAUSAL, register_attention


def _literal_values(annotation: object) -> set[str]:
    return {str(v) for arg in typing.get_args(annotation) for v in typing.get_args(arg)}


def test_choices_are_the_libraries_own() -> None:
    assert set(checks.PRECISIONS) - {"auto"} == _literal_values(_PRECISION_INPUT)  # 16/32/64 as int and str meet
    assert set(checks.ACCELERATORS) - {"gpu", "auto"} == set(AcceleratorRegistry.available_accelerators())
    assert set(checks.STRATEGIES) - {"auto"} <= set(StrategyRegistry.available_strategies())
    assert set(checks.SHARDING_STRATEGIES) <= set(ShardingStrategy.__members__)
    assert set(checks.ACTIVATIONS) <= set(ACT2FN)
    assert set(checks.ATTENTION) - {"eager", SDPA_CAUSAL} <= set(ALL_ATTENTION_FUNCTIONS.keys())  # transformers'
    register_attention()  # the package's own: a name transformers knows once registered
    assert SDPA_CAUSAL in checks.ATTENTION and SDPA_CAUSAL in ALL_ATTENTION_FUNCTIONS.keys()
    assert set(checks.COMPILE_MODES) <= set(torch._inductor.list_mode_options())
    trainer_args = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self"}
    assert set(checks.TRAINER_ARGS) <= trainer_args and set(checks.DERIVED_TRAINER_ARGS) <= trainer_args


def test_mini_model_takes_the_tokenizers_vocabulary() -> None:
    assert compose_config("reproduce", ["tokenizer.vocab_size=8192"]).model.vocab_size == 8192
    assert compose_config("reproduce", ["tokenizer=rugpt3"]).model.vocab_size == 50257


@pytest.mark.parametrize("override, message", [
    ("trainer.devices=2", "trainer.devices=2: 2 processes (trainer.devices x trainer.num_nodes) each take at least "
                          "stages.stage1.micro_batch_size=8 sequences, more than its batch_size=8"),
    ("trainer.num_nodes=3", "trainer.num_nodes=3: 3 processes"),
    ("stages.stage1.batch_size=12", "stages.stage1.batch_size=12: is not a multiple of micro_batch_size x devices"),
    ("eval.perplexity.max_tokens=100", "scores fewer tokens than one block of the largest context (256)"),
    ("data.test_fraction=0.995", "leaves nothing to train on"),
    ("stages.stage2.optim.grad_clip=0", "stages.stage2.optim.grad_clip=0.0: must be a positive number or null"),
    ("model.attn_pdrop=1", "model.attn_pdrop=1.0: must lie in [0, 1)"),
    ("model.pad_vocab_multiple=0", "model.pad_vocab_multiple=0: must be a positive number"),
    ("trainer.compile_mode=fast", "trainer.compile_mode='fast': choose one of default, reduce-overhead"),
])
def test_relations_between_values_are_checked(override: str, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        checks.check_config(compose_config("reproduce", [override]))


def test_null_where_allowed() -> None:
    checks.check_config(compose_config("reproduce", ["stages.stage2.optim.grad_clip=null", "eval.limit=null",
                                                     "eval.perplexity.max_tokens=null"]))


def test_sweep_expands_every_combination() -> None:
    assert sweep(["a=1,2", "b=x", "c=3,4"]) == [["a=1", "b=x", "c=3"], ["a=1", "b=x", "c=4"],
                                                 ["a=2", "b=x", "c=3"], ["a=2", "b=x", "c=4"]]


def test_the_micro_recipe_reads_the_committed_micro_corpus_offline_and_writes_only_under_its_folder(tmp_path) -> None:
    """experiment=micro: its manifest holds the rows micro_manifest selects from RusLit's; nothing is downloaded;
    every output folder is the one micro_overrides gives."""
    from reproduce.core.paths import config_file
    from tests.helpers import micro_manifest, micro_overrides

    cfg = compose_config("reproduce", micro_overrides(tmp_path, "m"))
    committed = config_file(cfg.data.sources["ruslit"].manifest).read_text(encoding="utf-8").splitlines()
    selected = micro_manifest(tmp_path / "manifest.tsv").read_text(encoding="utf-8").splitlines()
    assert [r for r in committed if not r.startswith("#")] == [r for r in selected if not r.startswith("#")]
    assert len(committed) == 4 + 25 and not cfg.data.allow_download and cfg.run_name == "m" and cfg.paper.runs == ["m"]
    outputs = [cfg.data.cache_dir, *(getattr(cfg.paths, key) for key in ("results", "runs", "paper", "prepared"))]
    assert all(str(path).startswith(str(tmp_path)) for path in outputs)
