"""Perplexity and bits per byte on held-out tokens, for a model at several contexts and for a unigram baseline.

The scored tokens are the same for every context and for the baseline: ``n`` blocks of ``max(contexts) + 1``
tokens at evenly spaced, non-overlapping offsets of the test stream; at context ``c`` each block is cut into
windows of ``c + 1`` tokens, each scored from its own start (no carried-over context).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase


def token_byte_lengths(tokenizer: PreTrainedTokenizerBase) -> np.ndarray:
    """UTF-8 bytes each id stands for: a byte-level BPE token has one character per byte; special tokens 0."""
    lengths = np.array([len(tok) for tok in tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))])
    lengths[tokenizer.all_special_ids] = 0
    return lengths


def eval_blocks(tokens: np.ndarray, block: int, max_tokens: int | None) -> np.ndarray:
    """Evenly spaced, non-overlapping blocks of ``block + 1`` tokens, as an int64 array (n, block + 1)."""
    available = (len(tokens) - 1) // block
    n = available if max_tokens is None else min(available, max(1, max_tokens // block))
    if n < 1:
        raise ValueError(f"{len(tokens)} test tokens cannot fill one block of {block + 1}")
    stride = (len(tokens) - 1 - block) // max(1, n - 1)
    starts = np.arange(n) * stride
    return np.stack([np.asarray(tokens[s : s + block + 1], dtype=np.int64) for s in starts])


def _summary(nll_sum: float, targets: np.ndarray, byte_lengths: np.ndarray) -> dict[str, float]:
    n_bytes = int(byte_lengths[targets].sum())
    return {"tokens": int(targets.size), "bytes": n_bytes, "nll_per_token": nll_sum / targets.size,
            "perplexity": math.exp(nll_sum / targets.size), "bits_per_byte": nll_sum / math.log(2) / n_bytes}


@torch.no_grad()
def model_perplexity(model: PreTrainedModel, blocks: np.ndarray, context: int, byte_lengths: np.ndarray,
                     batch_size: int, autocast_dtype: torch.dtype | None) -> dict[str, float]:
    """Next-token NLL over every block, each cut into windows of ``context + 1`` tokens: in total, and its mean
    at each position of a window (position ``p`` is predicted from ``p + 1`` tokens) and over each half."""
    width = blocks.shape[1] - 1
    if width % context:
        raise ValueError(f"block of {width} tokens is not a multiple of context {context}")
    pieces = width // context
    windows = np.stack([blocks[:, i * context : i * context + context + 1] for i in range(pieces)], 1)
    windows = torch.from_numpy(windows.reshape(-1, context + 1))
    device = next(model.parameters()).device
    model.eval()
    by_position = torch.zeros(context, dtype=torch.float64)  # NLL summed over windows, at each position
    for batch in windows.split(batch_size):
        batch = batch.to(device)
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            logits = model(input_ids=batch[:, :-1]).logits
        nll = F.cross_entropy(logits.float().transpose(1, 2), batch[:, 1:], reduction="none")
        by_position += nll.sum(0).double().cpu()
    mean_by_position = (by_position / len(windows)).tolist()
    half = context // 2
    return {"context": context, **_summary(float(by_position.sum()), blocks[:, 1:], byte_lengths),
            "nll_positions_first_half": sum(mean_by_position[:half]) / half,
            "nll_positions_second_half": sum(mean_by_position[half:]) / (context - half),
            "nll_by_position": mean_by_position}


def unigram_perplexity(train_counts: np.ndarray, blocks: np.ndarray, byte_lengths: np.ndarray) -> dict[str, float]:
    """A unigram model fitted on the train split's token counts (add-one smoothing), scored on the same targets."""
    counts = train_counts.astype(np.float64) + 1.0
    log_prob = np.log(counts / counts.sum())
    targets = blocks[:, 1:]
    return _summary(float(-log_prob[targets].sum()), targets, byte_lengths)
