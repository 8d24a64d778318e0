"""The fast training step: the chunked loss equals the plain cross-entropy and its gradient, and the fast
configuration (torch.compile, chunked loss, fused AdamW, causal SDPA without a mask, a padded vocabulary) trains along
the plain one's loss curve."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils.data import Subset
from transformers import GPT2LMHeadModel

from reproduce.config.compose import compose_config
from reproduce.config.schema import RecipeConfig
from reproduce.data.sequences import PackedSequences
from reproduce.model.gpt2 import CausalLM, causal_lm_loss, chunked_causal_lm_loss, gpt2_config, pad_vocabulary
from reproduce.train.progress import ProgressAndCurves
from reproduce.train.stage import StageData, stage_trainer
from tests.helpers import tiny_model_config

VOCAB, CONTEXT = 97, 16


def _model(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    return GPT2LMHeadModel(gpt2_config(tiny_model_config(VOCAB, CONTEXT), 1, 2)).train()


def _gradients(model: GPT2LMHeadModel) -> dict[str, torch.Tensor]:
    return {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("chunk", [7, 32, 1000])  # uneven chunks, exact ones, one chunk for all tokens
def test_chunked_loss_equals_cross_entropy_and_its_gradient(chunk: int) -> None:
    windows = torch.randint(0, VOCAB, (3, CONTEXT + 1), generator=torch.Generator().manual_seed(chunk))
    plain, chunked = _model(), _model()
    for model in (plain, chunked):
        model.eval()  # no dropout: both losses see the same activations
    expected = causal_lm_loss(plain, windows)
    expected.backward()
    loss = chunked_causal_lm_loss(chunked, windows, chunk)
    loss.backward()
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-6)
    theirs, ours = _gradients(plain), _gradients(chunked)
    for name in theirs:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-5, atol=1e-7, msg=name)
    with torch.no_grad():  # evaluation takes the chunked path without gradients
        torch.testing.assert_close(chunked_causal_lm_loss(chunked, windows, chunk), expected.detach(),
                                   rtol=1e-6, atol=1e-6)


def _curve(cfg: RecipeConfig, tokens: np.ndarray) -> list[float]:
    """Train stage 1 of ``cfg`` on ``tokens`` through the stage's own Trainer and module; the loss at every step."""
    stage = cfg.stages["stage1"]
    train = PackedSequences(tokens, stage.context)
    steps = 6
    data = StageData(train, Subset(train, [0, 1]), steps * stage.batch_size, cfg.seed, stage.micro_batch_size,
                     stage.batch_size)
    progress = ProgressAndCurves("stage1", stage.batch_size * stage.context, steps, 1, 1e9, 1)
    trainer = stage_trainer(stage, cfg.trainer, steps, steps, [progress], None)
    torch.manual_seed(cfg.seed)
    model = GPT2LMHeadModel(gpt2_config(cfg.model, 1, 2))
    pad_vocabulary(model, cfg.model.pad_vocab_multiple)  # as run_stage builds it
    trainer.fit(CausalLM(model, stage.optim, steps, cfg.trainer, cfg.model.vocab_size), datamodule=data)
    return [point["loss"] for point in progress.train]


@pytest.mark.slow  # compiled and plain training side by side
def test_fast_configuration_follows_the_plain_loss_curve() -> None:
    """Without dropout (compiled code draws its masks from another generator), the curves agree to float tolerance."""
    overrides = ["model.n_layer=2", "model.n_embd=32", "model.n_head=2", f"model.n_positions={CONTEXT}",
                 f"model.vocab_size={VOCAB}", "model.resid_pdrop=0", "model.embd_pdrop=0", "model.attn_pdrop=0",
                 f"stages.stage1.context={CONTEXT}", "stages.stage1.batch_size=8", "stages.stage1.micro_batch_size=4",
                 "stages.stage1.optim.warmup_fraction=0"]
    plain = compose_config("reproduce", overrides)
    assert plain.model.attn_implementation == "sdpa" and plain.model.pad_vocab_multiple == 1
    fast = dataclasses.replace(
        plain, trainer=dataclasses.replace(plain.trainer, compile=True, fused_optimizer=True, loss="chunked",
                                           loss_chunk_tokens=24),
        model=dataclasses.replace(plain.model, attn_implementation="sdpa_causal", pad_vocab_multiple=64))
    tokens = np.tile(np.random.default_rng(0).integers(0, VOCAB, 50), 40).astype(np.uint16)  # a pattern to learn
    expected, curve = _curve(plain, tokens), _curve(fast, tokens)
    assert len(curve) == len(expected) == 6 and expected[-1] < expected[0]  # it learns
    np.testing.assert_allclose(curve, expected, rtol=2e-5)


@pytest.mark.slow  # compiled training under bf16
def test_fused_adamw_clips_under_mixed_precision() -> None:
    """Lightning's mixed-precision plugin refuses to clip for a fused AdamW (an fp16 guard); the module clips itself,
    so the GPU trainers' bf16-mixed + fused AdamW + clipping trains, along the unfused optimizer's curve."""
    overrides = ["model.n_layer=2", "model.n_embd=32", "model.n_head=2", f"model.n_positions={CONTEXT}",
                 f"model.vocab_size={VOCAB}", "model.resid_pdrop=0", "model.embd_pdrop=0", "model.attn_pdrop=0",
                 f"stages.stage1.context={CONTEXT}", "stages.stage1.batch_size=8", "stages.stage1.micro_batch_size=4",
                 "stages.stage1.optim.warmup_fraction=0", "stages.stage1.optim.grad_clip=1e-6",  # below Adam's eps
                 "trainer.precision=bf16-mixed"]
    unfused = compose_config("reproduce", overrides)
    fused = dataclasses.replace(unfused, trainer=dataclasses.replace(unfused.trainer, fused_optimizer=True))
    unclipped = compose_config("reproduce", [*overrides, "stages.stage1.optim.grad_clip=0"])
    tokens = np.tile(np.random.default_rng(0).integers(0, VOCAB, 50), 40).astype(np.uint16)
    expected, curve = _curve(unfused, tokens), _curve(fused, tokens)
    np.testing.assert_allclose(curve, expected, rtol=1e-3)
    assert not np.allclose(_curve(unclipped, tokens), expected, rtol=1e-3)  # the clipping took effect


def test_compile_mode_reaches_torch_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    """trainer.compile_mode is the mode torch.compile gets (null: torch's default)."""
    modes = []

    def compile_(fn: object, **kwargs: object) -> object:
        modes.append(kwargs.get("mode"))
        return fn

    monkeypatch.setattr(torch, "compile", compile_)
    cfg = compose_config("reproduce", ["trainer=gpu", "trainer.compile_mode=max-autotune-no-cudagraphs"])
    model = _model()
    CausalLM(model, cfg.stages["stage1"].optim, 1, cfg.trainer)
    CausalLM(model, cfg.stages["stage1"].optim, 1, compose_config("reproduce", ["trainer=gpu"]).trainer)
    assert modes == ["max-autotune-no-cudagraphs", None]
