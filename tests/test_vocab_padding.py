"""Vocabulary padding (model.pad_vocab_multiple): the padded model's loss and gradients are the unpadded model's, the
padding rows stay zero, and an export has exactly the unpadded shapes and logits, loadable without the package."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AttentionInterface, AutoModelForCausalLM, GPT2LMHeadModel

from reproduce.model.attention import SDPA_CAUSAL
from reproduce.model.gpt2 import (
    causal_lm_loss,
    chunked_causal_lm_loss,
    gpt2_config,
    pad_vocabulary,
    padded_vocabulary,
    save_export,
)
from tests.helpers import tiny_model_config

VOCAB, CONTEXT = 97, 16


def _models() -> tuple[GPT2LMHeadModel, GPT2LMHeadModel]:
    """A model (no dropout) and a copy of it padded to a multiple of 64 rows."""
    torch.manual_seed(0)
    model = GPT2LMHeadModel(gpt2_config(tiny_model_config(VOCAB, CONTEXT), 1, 2)).eval()
    padded = copy.deepcopy(model)
    pad_vocabulary(padded, 64)
    return model, padded


def test_padding_rounds_up_and_leaves_the_random_generator_alone() -> None:
    assert padded_vocabulary(50257, 64) == 50304 and padded_vocabulary(50304, 64) == 50304
    assert padded_vocabulary(50264, 64) == 50304 and padded_vocabulary(97, 1) == 97
    model, _ = _models()
    state = torch.get_rng_state()
    pad_vocabulary(model, 64)
    assert torch.equal(torch.get_rng_state(), state)
    assert model.config.vocab_size == 128 and model.lm_head.weight is model.transformer.wte.weight
    assert not model.transformer.wte.weight[VOCAB:].any()


@pytest.mark.parametrize("chunk", [None, 7])  # the plain loss, and the chunked one with uneven chunks
def test_padded_loss_and_gradients_equal_the_unpadded_models(chunk: int | None) -> None:
    model, padded = _models()
    windows = torch.randint(0, VOCAB, (3, CONTEXT + 1), generator=torch.Generator().manual_seed(1))
    if chunk is None:
        expected, loss = causal_lm_loss(model, windows), causal_lm_loss(padded, windows, vocab=VOCAB)
    else:
        expected, loss = (chunked_causal_lm_loss(model, windows, chunk),
                          chunked_causal_lm_loss(padded, windows, chunk, vocab=VOCAB))
    expected.backward()
    loss.backward()
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-6)
    theirs = dict(model.named_parameters())
    for name, parameter in padded.named_parameters():
        grad = parameter.grad
        if name == "transformer.wte.weight":
            assert not grad[VOCAB:].any()  # the padding rows get no gradient
            grad = grad[:VOCAB]
        torch.testing.assert_close(grad, theirs[name].grad, rtol=1e-5, atol=1e-7, msg=name)


def _shapes(folder: Path) -> dict[str, list[int]]:
    with safe_open(folder / "model.safetensors", "pt") as f:
        return {key: f.get_slice(key).get_shape() for key in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)


def test_export_has_the_unpadded_shapes_and_logits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, padded = _models()
    padded.set_attn_implementation(SDPA_CAUSAL)
    with torch.no_grad():  # a trained model: real rows moved away from the unpadded copy's
        for parameter in padded.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))
        padded.transformer.wte.weight[VOCAB:] = 0
    save_export(padded, tmp_path / "padded", VOCAB)
    model.save_pretrained(tmp_path / "plain")
    assert padded.config.vocab_size == 128  # the training model keeps its padding
    assert _shapes(tmp_path / "padded") == _shapes(tmp_path / "plain")
    config = json.loads((tmp_path / "padded" / "config.json").read_text(encoding="utf-8"))
    assert config["vocab_size"] == VOCAB and SDPA_CAUSAL not in json.dumps(config)
    windows = torch.randint(0, VOCAB, (2, CONTEXT))
    with torch.no_grad():
        expected = padded(input_ids=windows).logits[..., :VOCAB]
    monkeypatch.delitem(AttentionInterface._global_mapping, SDPA_CAUSAL)  # loads as any process would
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "padded").eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=windows).logits, expected, rtol=1e-5, atol=1e-6)
