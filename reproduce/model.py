"""The model: transformers' GPT2LMHeadModel in a LightningModule, with AdamW and a warmup-cosine schedule."""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from reproduce.config import ModelConfig, OptimConfig

# Keys of the model config passed to GPT2Config as they are.
ARCH_KEYS = ("n_layer", "n_embd", "n_head", "n_positions", "vocab_size", "activation_function",
             "resid_pdrop", "embd_pdrop", "attn_pdrop", "layer_norm_epsilon", "initializer_range")


def gpt2_config(model: ModelConfig, bos_token_id: int, eos_token_id: int) -> GPT2Config:
    """GPT2Config from a typed model config."""
    return GPT2Config(bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                      attn_implementation=model.attn_implementation,
                      **{key: getattr(model, key) for key in ARCH_KEYS})


def parameter_count(config: GPT2Config) -> int:
    """Exact parameter count, computed on the meta device (no memory allocated)."""
    with torch.device("meta"):
        return sum(p.numel() for p in GPT2LMHeadModel(config).parameters())


def copy_learned_positions(model: GPT2LMHeadModel, learned: int, context: int) -> None:
    """Positions ``learned .. context - 1`` start as the learned positions ``0 .. learned - 1``, repeated: the
    position embeddings a longer context adds begin where the earlier ones ended up, not at random (Longformer's
    initialisation, Beltagy et al. 2020, section 5)."""
    with torch.no_grad():
        table = model.transformer.wpe.weight
        for start in range(learned, context, learned):
            n = min(learned, context - start)
            table[start : start + n] = table[:n]


def causal_lm_loss(model: GPT2LMHeadModel, windows: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over windows of context+1 tokens."""
    logits = model(input_ids=windows[:, :-1]).logits
    return F.cross_entropy(logits.float().flatten(0, 1), windows[:, 1:].flatten())


def warmup_cosine(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """LR multiplier: linear warmup to 1, then cosine decay to ``min_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class NonFiniteLoss(Exception):
    """A training loss of nan or inf; raised before the optimizer step, so no checkpoint holds its update."""

    def __init__(self, value: float, step: int):
        super().__init__(f"loss {value} at step {step}")
        self.value, self.step = value, step


class CausalLM(pl.LightningModule):
    """Trains a GPT2LMHeadModel on packed windows; the optimizer and schedule come from a stage's ``optim``."""

    def __init__(self, model: GPT2LMHeadModel, optim: OptimConfig, total_steps: int):
        super().__init__()
        self.model, self.optim, self.total_steps = model, optim, total_steps
        self.loss_window: list[float] = []  # train losses since the last curve point

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = causal_lm_loss(self.model, batch)
        # the mean over ranks: every rank records the whole batch's curve, and all stop together on nan or inf
        value = self.trainer.strategy.reduce(loss.detach(), reduce_op="mean").item()
        if not math.isfinite(value):
            raise NonFiniteLoss(value, self.global_step)
        self.loss_window.append(value)
        self.log("train_loss", value, on_step=True, on_epoch=False, batch_size=batch.shape[0])
        return loss

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("val_loss", causal_lm_loss(self.model, batch), batch_size=batch.shape[0], sync_dist=True)

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW with weight decay on matrices only (not biases, LayerNorms), as Megatron-style recipes do."""
        decay = [p for p in self.model.parameters() if p.ndim >= 2]
        no_decay = [p for p in self.model.parameters() if p.ndim < 2]
        o = self.optim
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": o.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=o.lr, betas=tuple(o.betas), eps=o.eps,
        )
        warmup = max(1, round(o.warmup_fraction * self.total_steps))
        min_ratio = o.min_lr / o.lr
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, self.total_steps, warmup, min_ratio)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
