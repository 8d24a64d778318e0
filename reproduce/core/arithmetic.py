"""Training arithmetic, the one place where a stage's windows, steps, accumulation, tokens and FLOPs are counted:
training (reproduce/train/stage.py) and ``reproduce plan`` both call these, so the plan's numbers are training's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reproduce.config.schema import ModelConfig, StageConfig

# The keys that make a GPT-2 architecture (and its parameter count), as config.json and conf/model/*.yaml name them.
ARCHITECTURE_KEYS = ("n_layer", "n_embd", "n_head", "n_positions", "vocab_size")
# Where a model's config.json gives its longest input: GPT-2's n_positions, Llama's max_position_embeddings, ...
CONTEXT_KEYS = ("n_positions", "max_position_embeddings", "n_ctx", "seq_length", "max_sequence_length")


def model_context(config: Mapping[str, Any]) -> int | None:
    """The longest input a model config (config.json, or a transformers config's ``to_dict()``) allows."""
    return next((config[key] for key in CONTEXT_KEYS if isinstance(config.get(key), int) and config[key] > 0), None)


def gpt2_parameters(model: ModelConfig) -> int:
    """GPT-2's parameter count by formula, with the LM head tied to the token embeddings: V·d + P·d + L·(12d² + 13d)
    + 2d (token and position embeddings; per block two layer norms, attention 4d² + 4d, MLP 8d² + 5d; the final
    norm). reproduce/model/gpt2.py ``exact_parameters`` counts a built model's; a test checks they agree."""
    d = model.n_embd
    return model.vocab_size * d + model.n_positions * d + model.n_layer * (12 * d * d + 13 * d) + 2 * d


def windows(tokens: int, context: int) -> int:
    """Packed windows of ``context + 1`` tokens at a stride of ``context`` (inputs and shifted targets share one)."""
    return (tokens - 1) // context


def stage_steps(num_windows: int, epochs: float, batch_size: int) -> int:
    """Optimizer steps of a stage: whole batches of its share of the windows (``epochs`` may be fractional)."""
    return int(epochs * num_windows) // batch_size


def accumulation(batch_size: int, micro_batch_size: int, world_size: int) -> int:
    """Micro-batches each process accumulates per optimizer step."""
    return batch_size // (micro_batch_size * world_size)


def flops_per_token(parameters: int, n_layer: int, n_embd: int, context: int) -> int:
    """Training FLOPs per token: 6N (forward and backward of every weight) + 12·L·T·d (attention)."""
    return 6 * parameters + 12 * n_layer * context * n_embd


@dataclass(frozen=True)
class StageCounts:
    """What one stage trains, at a world size."""

    context: int
    windows: int
    steps: int
    batch_sequences: int
    batch_tokens: int
    micro_batch: int
    accumulation: int
    tokens: int


def stage_counts(stage: StageConfig, train_tokens: int, world_size: int) -> StageCounts:
    """A stage's counts over ``train_tokens`` tokens: the windows of its context, whole batches of its epochs' share,
    and the tokens of those steps."""
    n = windows(train_tokens, stage.context)
    steps = stage_steps(n, stage.epochs, stage.batch_size)
    return StageCounts(context=stage.context, windows=n, steps=steps, batch_sequences=stage.batch_size,
                       batch_tokens=stage.batch_size * stage.context, micro_batch=stage.micro_batch_size,
                       accumulation=accumulation(stage.batch_size, stage.micro_batch_size, world_size),
                       tokens=steps * stage.batch_size * stage.context)
