"""The model: transformers' GPT2LMHeadModel in a LightningModule, with AdamW and a warmup-cosine schedule."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.distributed.fsdp import FullyShardedDataParallel
from transformers import GPT2Config, GPT2LMHeadModel

from reproduce.config.schema import ModelConfig, OptimConfig, TrainerConfig
from reproduce.core.arithmetic import ARCHITECTURE_KEYS
from reproduce.model.attention import register_attention

register_attention()  # model.attn_implementation=sdpa_causal names it, for every model built or loaded here

# Keys of the model config passed to GPT2Config as they are.
GPT2_CONFIG_KEYS = (*ARCHITECTURE_KEYS, "activation_function", "resid_pdrop", "embd_pdrop", "attn_pdrop",
                    "layer_norm_epsilon", "initializer_range")


def gpt2_config(model: ModelConfig, bos_token_id: int, eos_token_id: int) -> GPT2Config:
    """GPT2Config from a typed model config."""
    return GPT2Config(bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                      attn_implementation=model.attn_implementation,
                      **{key: getattr(model, key) for key in GPT2_CONFIG_KEYS})


def exact_parameters(config: GPT2Config) -> int:
    """The parameters of the model a config builds, counted on the meta device (no memory allocated)."""
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


# The weights that hold a row per vocabulary id (the LM head is tied to the embedding).
VOCABULARY_ROWS = ("transformer.wte.weight", "lm_head.weight")


def padded_vocabulary(vocab_size: int, multiple: int) -> int:
    """``vocab_size`` rounded up to a multiple of ``multiple`` (50257 -> 50304 for 64)."""
    return -(-vocab_size // multiple) * multiple


def pad_vocabulary(model: GPT2LMHeadModel, multiple: int) -> None:
    """Give the embedding (and the tied LM head) rows up to a multiple of ``multiple``, so that the products with the
    vocabulary as a dimension run on whole tiles (nanoGPT's 50257 -> 50304). The new rows start at zero and stay
    there: no input is a padding id, and the losses leave their logits out, so they get no gradient. The random
    generators are left as they were: the real weights and every later draw equal an unpadded model's."""
    vocab = model.config.vocab_size
    padded = padded_vocabulary(vocab, multiple)
    if padded == vocab:
        return
    device = model.get_input_embeddings().weight.device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        model.resize_token_embeddings(padded, mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight[vocab:] = 0


def save_export(model: GPT2LMHeadModel, folder: Path, vocab_size: int,
                state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """``save_pretrained`` with the vocabulary sliced back to ``vocab_size`` rows (padding dropped), so that
    ``AutoModelForCausalLM.from_pretrained`` builds the model as configured and its ids are the tokenizer's.
    ``state_dict``: the full weights of a sharded model (FSDP), else the model's own. The attention kernel is not
    part of config.json: an export loads with transformers' default."""
    padded = model.config.vocab_size
    if padded == vocab_size:
        model.save_pretrained(folder, state_dict=state_dict)
        return
    state = model.state_dict() if state_dict is None else state_dict
    state = {key: value[:vocab_size] if key in VOCABULARY_ROWS else value for key, value in state.items()}
    model.config.vocab_size = vocab_size
    try:
        model.save_pretrained(folder, state_dict=state)
    finally:
        model.config.vocab_size = padded


def causal_lm_loss(model: GPT2LMHeadModel, windows: torch.Tensor, vocab: int | None = None) -> torch.Tensor:
    """Mean next-token cross-entropy over windows of context+1 tokens. ``vocab``: the real vocabulary, when the model
    has padding rows past it (pad_vocabulary): their logits are left out, so the loss and every gradient are the
    unpadded model's."""
    logits = model(input_ids=windows[:, :-1]).logits
    if vocab is not None and vocab < logits.shape[-1]:
        logits = logits[..., :vocab]
    return F.cross_entropy(logits.float().flatten(0, 1), windows[:, 1:].flatten())


class ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of ``hidden @ weight.T`` against ``targets``, ``chunk`` rows at a time: a chunk's logits
    live only while it is processed, and their gradient is taken in the same pass (the fused linear cross-entropy of
    Liger-Kernel, Hsu et al. 2024, in plain PyTorch), so the (tokens x vocabulary) logits never exist whole, in any
    dtype. The log-sum-exp runs in float32; under autocast the products run in its dtype. Rows of ``weight`` from
    ``vocab`` on are padding: their logits are -inf, so they take no probability and get no gradient."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                chunk: int, vocab: int) -> torch.Tensor:
        n = hidden.shape[0]
        grad_hidden = torch.empty_like(hidden)
        grad_weight = torch.zeros_like(weight, dtype=torch.float32)
        total = hidden.new_zeros((), dtype=torch.float32)
        for start in range(0, n, chunk):
            h, t = hidden[start : start + chunk], targets[start : start + chunk]
            logits = h @ weight.T
            scores = logits.float()
            if vocab < weight.shape[0]:
                scores[:, vocab:] = float("-inf")
            log_probs = scores.log_softmax(-1)
            total = total - log_probs.gather(1, t[:, None]).sum()
            grad_logits = log_probs.exp_().scatter_add_(1, t[:, None], log_probs.new_full((len(t), 1), -1.0))
            grad_logits = grad_logits.div_(n).to(logits.dtype)  # d(mean loss)/d(logits) = (softmax - one-hot) / n
            grad_hidden[start : start + chunk] = grad_logits @ weight
            grad_weight += (grad_logits.T @ h).float()
        ctx.save_for_backward(grad_hidden, grad_weight.to(weight.dtype))
        return total / n

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_hidden, grad_weight = ctx.saved_tensors
        return grad_hidden * grad_output, grad_weight * grad_output, None, None, None


def chunked_causal_lm_loss(model: GPT2LMHeadModel, windows: torch.Tensor, chunk: int,
                           vocab: int | None = None) -> torch.Tensor:
    """``causal_lm_loss`` through ``ChunkedLinearCrossEntropy`` (GPT-2's LM head is a matrix without bias)."""
    hidden = model.transformer(input_ids=windows[:, :-1]).last_hidden_state.flatten(0, 1)
    targets = windows[:, 1:].flatten()
    weight = model.lm_head.weight
    vocab = weight.shape[0] if vocab is None else vocab
    if not torch.is_grad_enabled():  # evaluation: no gradient to take along
        return torch.cat([F.cross_entropy((h @ weight.T).float()[:, :vocab], t, reduction="none")
                          for h, t in zip(hidden.split(chunk), targets.split(chunk), strict=True)]).mean()
    return ChunkedLinearCrossEntropy.apply(hidden, weight, targets, chunk, vocab)


def loss_function(kind: str, chunk: int, compile: bool, vocab: int | None = None,
                  mode: str | None = None) -> Callable[[GPT2LMHeadModel, torch.Tensor], torch.Tensor]:
    """The training and validation loss of ``trainer.loss`` (plain | chunked) over the real ``vocab`` (None: every
    row of the model's), compiled with torch.compile in ``mode`` (None: its default) if asked: the model and the loss
    in one graph; the model itself stays unwrapped, so its weights keep their names."""
    if kind == "plain":
        fn = functools.partial(causal_lm_loss, vocab=vocab)
    else:
        fn = functools.partial(chunked_causal_lm_loss, chunk=chunk, vocab=vocab)
    return torch.compile(fn, mode=mode) if compile else fn


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
    """Trains a GPT2LMHeadModel on packed windows; the optimizer and schedule come from a stage's ``optim``, the
    loss and its speed-ups (compile, chunked loss, fused AdamW) from ``trainer``; ``vocab_size`` is the real
    vocabulary of a model whose rows are padded (pad_vocabulary), whose loss leaves the padding out.

    The training loss is not read on the host after each micro-step (a read waits for the device to finish):
    losses stay on the device until ``read_losses`` (every ``record_every_steps``, and before a checkpoint)
    takes them all at once, averaged over ranks, and stops on a non-finite one before any checkpoint holds it.
    """

    def __init__(self, model: GPT2LMHeadModel, optim: OptimConfig, total_steps: int, trainer: TrainerConfig,
                 vocab_size: int | None = None):
        super().__init__()
        self.model, self.optim, self.total_steps = model, optim, total_steps
        self.fused_optimizer = trainer.fused_optimizer
        self.loss = loss_function(trainer.loss, trainer.loss_chunk_tokens, trainer.compile, vocab_size,
                                  trainer.compile_mode)
        self.loss_window: list[float] = []  # train losses since the last curve point, read
        self._unread: list[tuple[int, torch.Tensor]] = []  # (step, loss) not read yet

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self.loss(self.model, batch)
        self._unread.append((self.global_step, loss.detach()))
        return loss

    def read_losses(self) -> list[float]:
        """The train losses since the last curve point (each the mean over ranks), after reading the unread ones
        in one transfer; raises ``NonFiniteLoss`` at the first nan or inf. Every rank must call it at the same step.
        """
        if self._unread:
            steps = [step for step, _ in self._unread]
            values = self.trainer.strategy.reduce(torch.stack([v for _, v in self._unread]), reduce_op="mean")
            self._unread.clear()
            for step, value in zip(steps, values.tolist(), strict=True):
                if not math.isfinite(value):
                    raise NonFiniteLoss(value, step)
                self.loss_window.append(value)
        return self.loss_window

    def peek_losses(self) -> list[float]:
        """This rank's losses since the last curve point, read without a collective (for progress lines)."""
        unread = torch.stack([v for _, v in self._unread]).tolist() if self._unread else []
        return self.loss_window + unread

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        self.log("val_loss", self.loss(self.model, batch), batch_size=batch.shape[0], sync_dist=True)

    def configure_gradient_clipping(self, optimizer: torch.optim.Optimizer, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        """Clip the global gradient norm. Lightning's own clipping refuses a fused AdamW under any mixed precision
        (it guards fp16's loss scaling, which bf16 does not have) and all norm clipping under FSDP (the norm spans
        the shards), so this clips with FSDP's ``clip_grad_norm_`` on the sharded root, else with torch's."""
        if not gradient_clip_val:
            return
        if getattr(self.trainer.precision_plugin, "scaler", None) is not None:  # fp16: Lightning's checks apply
            super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        elif isinstance(self.trainer.strategy.model, FullyShardedDataParallel):
            self.trainer.strategy.model.clip_grad_norm_(gradient_clip_val)
        else:  # the optimizer's parameters in its own order, as Lightning clips them (the same norm to the bit)
            torch.nn.utils.clip_grad_norm_(self.trainer.precision_plugin.main_params(optimizer), gradient_clip_val)

    def configure_optimizers(self) -> dict[str, Any]:
        """AdamW with weight decay on matrices only (not biases, LayerNorms), as Megatron-style recipes do."""
        decay = [p for p in self.model.parameters() if p.ndim >= 2]
        no_decay = [p for p in self.model.parameters() if p.ndim < 2]
        optim = self.optim
        optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=optim.lr, betas=tuple(optim.betas), eps=optim.eps, fused=self.fused_optimizer or None,
        )
        warmup = max(1, round(optim.warmup_fraction * self.total_steps))
        min_ratio = optim.min_lr / optim.lr
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, self.total_steps, warmup, min_ratio)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
