"""The GPU recipe's attention: every SDPA call of the compiled training loss is causal, unmasked and has the configured
dropout (on every transformers version; 5.17's ``sdpa`` passes a dense mask under torch.compile); ``sdpa_causal``
gives the logits of transformers' ``sdpa`` in eval mode."""

from __future__ import annotations

import functools
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from transformers import GPT2LMHeadModel

from reproduce.config.compose import compose_config
from reproduce.config.schema import RecipeConfig
from reproduce.model.gpt2 import CausalLM, gpt2_config

SMALL = ["model.n_layer=2", "model.n_embd=64", "model.n_head=2", "model.n_positions=32", "tokenizer.vocab_size=300",
         "model.vocab_size=300"]  # ruGPT-3 small's recipe (dropout 0.1, its kernel), shrunk


def _gpu_recipe(*overrides: str) -> RecipeConfig:
    return compose_config("reproduce", ["experiment=rugpt3_small_paper", *SMALL, *overrides])


def _sdpa_calls_of_compiled_loss(cfg: RecipeConfig, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of every scaled_dot_product_attention call in the graph that torch.compile hands its
    backend when the recipe's module computes a training loss (backend swapped for one that records and runs it)."""
    calls: list[dict[str, Any]] = []

    def record(graph: torch.fx.GraphModule, example_inputs: list[torch.Tensor]) -> Any:
        calls.extend(dict(node.kwargs, positional=len(node.args)) for node in graph.graph.nodes
                     if node.op == "call_function" and node.target is F.scaled_dot_product_attention)
        return graph.forward

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend=record))
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(gpt2_config(cfg.model, 1, 2)).train()
    module = CausalLM(model, cfg.stages["stage1"].optim, 1, cfg.trainer)
    windows = torch.randint(0, cfg.model.vocab_size, (2, cfg.model.n_positions + 1))
    module.loss(model, windows).backward()
    torch._dynamo.reset()
    return calls


def test_compiled_training_loss_calls_causal_sdpa_without_a_mask(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _gpu_recipe()
    assert cfg.trainer.compile and cfg.model.attn_pdrop == 0.1
    calls = _sdpa_calls_of_compiled_loss(cfg, monkeypatch)
    assert len(calls) == cfg.model.n_layer
    for call in calls:
        assert call["positional"] == 3 and call.get("attn_mask") is None, call  # query, key, value; no mask
        assert call["is_causal"] is True and call["dropout_p"] == cfg.model.attn_pdrop, call


def test_the_recorder_sees_a_mask_where_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """The trace is able to fail: an explicit mask shows up in the recorded calls."""
    cfg = _gpu_recipe()
    calls = []

    def record(graph: torch.fx.GraphModule, example_inputs: list[torch.Tensor]) -> Any:
        calls.extend(dict(node.kwargs) for node in graph.graph.nodes if node.target is F.scaled_dot_product_attention)
        return graph.forward

    model = GPT2LMHeadModel(gpt2_config(cfg.model, 1, 2)).train()
    model.set_attn_implementation("sdpa")
    windows = torch.randint(1, cfg.model.vocab_size, (2, 9))
    mask = torch.ones_like(windows)
    mask[0, :3] = 0  # left padding: no plain causal mask can express it
    torch._dynamo.reset()
    torch.compile(lambda m, w, a: m(input_ids=w, attention_mask=a).logits, backend=record)(model, windows, mask)
    torch._dynamo.reset()
    assert calls and all(call["attn_mask"] is not None for call in calls)


def test_sdpa_causal_gives_the_logits_of_sdpa_in_eval_mode() -> None:
    cfg = _gpu_recipe()
    assert cfg.model.attn_implementation == "sdpa_causal"
    torch.manual_seed(0)
    ours = GPT2LMHeadModel(gpt2_config(cfg.model, 1, 2)).eval()
    theirs = GPT2LMHeadModel(gpt2_config(cfg.model, 1, 2)).eval()
    theirs.set_attn_implementation("sdpa")
    theirs.load_state_dict(ours.state_dict())
    windows = torch.randint(0, cfg.model.vocab_size, (3, cfg.model.n_positions))
    with torch.no_grad():
        torch.testing.assert_close(ours(input_ids=windows).logits, theirs(input_ids=windows).logits, rtol=0, atol=0)


def test_sdpa_causal_refuses_to_decode_with_a_cache() -> None:
    model = GPT2LMHeadModel(gpt2_config(_gpu_recipe().model, 1, 2)).eval()
    with pytest.raises(ValueError, match="attn_implementation='sdpa' to decode with a cache"):
        model.generate(torch.tensor([[5, 6, 7]]), max_new_tokens=2, do_sample=False)
