"""Configs give ruGPT-3's exact parameter counts; our loss equals transformers'; the LR schedule's shape."""

from __future__ import annotations

import csv

import pytest
import torch
from pytorch_lightning.strategies import FSDPStrategy
from transformers import GPT2LMHeadModel
from transformers.models.gpt2.modeling_gpt2 import GPT2Block

from reproduce.config.compose import compose_config
from reproduce.core.arithmetic import ARCHITECTURE_KEYS, gpt2_parameters
from reproduce.core.paths import CONF_DIR, SOURCE_ROOT
from reproduce.model.gpt2 import causal_lm_loss, copy_learned_positions, exact_parameters, gpt2_config, warmup_cosine
from reproduce.train.stage import build_strategy
from tests.helpers import tiny_model_config

# results/published/architectures.csv (PUBLISHED.md §2): each released model's config.json and parameter count.
PUBLISHED = {f"rugpt3_{row['model']}": row for row in csv.DictReader(
    (SOURCE_ROOT / "results" / "published" / "architectures.csv").open(encoding="utf-8"))}
SIZES = sorted(p.stem for p in (CONF_DIR / "model").glob("rugpt3_*.yaml"))  # our ruGPT-3 sizes: their YAMLs


def test_the_published_sizes_have_configs() -> None:
    assert set(PUBLISHED) <= set(SIZES) and {"rugpt3_small", "rugpt3_medium", "rugpt3_large"} <= set(PUBLISHED)


@pytest.mark.parametrize("name", SIZES)
def test_size_configs_have_the_published_parameter_counts(name: str) -> None:
    """Every conf/model/rugpt3_* builds the model its counts say; a size with published numbers has exactly them."""
    config = gpt2_config(compose_config("reproduce", [f"model={name}"]).model, bos_token_id=1, eos_token_id=2)
    parameters = exact_parameters(config)
    assert parameters == gpt2_parameters(compose_config("reproduce", [f"model={name}"]).model)
    if name in PUBLISHED:
        assert {key: getattr(config, key) for key in ARCHITECTURE_KEYS} == {
            key: int(PUBLISHED[name][key]) for key in ARCHITECTURE_KEYS}
        assert parameters == int(PUBLISHED[name]["parameters"])


def test_loss_matches_transformers_on_the_same_weights() -> None:
    torch.manual_seed(0)
    config = gpt2_config(compose_config("reproduce", ["tokenizer.vocab_size=300"]).model, 1, 2)
    model = GPT2LMHeadModel(config).eval()
    windows = torch.randint(0, 300, (3, 17))
    ours = causal_lm_loss(model, windows)
    # transformers shifts labels itself: score tokens 1..16 given 0..15, exactly our windows[:, 1:].
    logits = model(input_ids=windows).logits[:, :-1]
    reference = torch.nn.functional.cross_entropy(logits.reshape(-1, 300), windows[:, 1:].reshape(-1))
    theirs = model(input_ids=windows, labels=windows).loss
    assert torch.allclose(ours, reference, atol=1e-5) and torch.allclose(ours, theirs, atol=1e-5)


def test_warmup_then_cosine_to_min() -> None:
    values = [warmup_cosine(s, total=100, warmup=10, min_ratio=0.1) for s in range(101)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[10:], values[11:], strict=False))
    assert values[100] == pytest.approx(0.1) and values[55] == pytest.approx(0.55)


def test_new_positions_start_as_copies_of_the_learned_ones() -> None:
    model = GPT2LMHeadModel(gpt2_config(tiny_model_config(vocab_size=50, n_positions=20), 1, 2))
    before = model.transformer.wpe.weight.detach().clone()
    copy_learned_positions(model, learned=8, context=20)
    after = model.transformer.wpe.weight.detach()
    torch.testing.assert_close(after[:8], before[:8], rtol=0, atol=0)  # the learned positions stay
    torch.testing.assert_close(after[8:16], before[:8], rtol=0, atol=0)
    torch.testing.assert_close(after[16:20], before[:4], rtol=0, atol=0)


def test_fsdp_strategy_wraps_each_block_and_keeps_full_state_checkpoints() -> None:
    trainer = compose_config("reproduce", ["trainer=fsdp", "trainer.fsdp.sharding_strategy=SHARD_GRAD_OP",
                                           "trainer.fsdp.activation_checkpointing=true"]).trainer
    strategy = build_strategy(trainer)
    assert isinstance(strategy, FSDPStrategy) and strategy.sharding_strategy.name == "SHARD_GRAD_OP"
    assert strategy._state_dict_type == "full"
    assert strategy.kwargs["auto_wrap_policy"]._module_classes == {GPT2Block}
    assert strategy._activation_checkpointing_kwargs["auto_wrap_policy"]._module_classes == {GPT2Block}
    assert build_strategy(compose_config("reproduce", ["trainer=ddp"]).trainer) == "ddp"
