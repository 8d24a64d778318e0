"""Perplexity and bits per byte on held-out tokens, for a model at several contexts and for a unigram baseline.

The scored tokens are the same for every context and for the baseline: ``n`` blocks of ``max(contexts) + 1``
tokens at evenly spaced, non-overlapping offsets of the test stream; at context ``c`` each block is cut into
windows of ``c + 1`` tokens, each scored from its own start (no carried-over context).

``text_perplexity`` scores whole texts instead, with overlapping sliding windows.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from reproduce.core.arithmetic import model_context


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
        nll = F.cross_entropy(logits.float().flatten(0, 1), batch[:, 1:].flatten(), reduction="none")
        nll = nll.view(len(batch), -1)
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


def text_windows(ids: list[int], context: int, stride: int) -> list[tuple[list[int], list[int], int]]:
    """Sliding windows over one tokenized text ``ids`` (``</s>`` first): (inputs, targets, n_scored) each, where
    the model reads ``inputs`` (at most ``context`` tokens), predicts ``targets`` (the inputs shifted by one) and
    only the last ``n_scored`` targets count. Every token after the ``</s>`` is scored exactly once."""
    n = len(ids) - 1  # targets are ids[1:]
    windows, scored_until = [], 0  # targets ids[1 : scored_until + 1] are scored
    for begin in range(0, n, stride):
        end = min(begin + context, n)
        windows.append((ids[begin:end], ids[begin + 1 : end + 1], end - scored_until))
        scored_until = end
        if end == n:
            break
    return windows


@torch.no_grad()
def text_perplexity(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: list[str],
                    context: int | None, stride: int, batch_size: int,
                    autocast_dtype: torch.dtype | None) -> dict[str, float | int]:
    """Sliding-window perplexity and bits per byte of ``texts`` (Hugging Face, "Perplexity of fixed-length models").

    Each text is tokenized whole, without special tokens, and ``</s>`` (the document separator the models were
    trained with) is put before it as the first context token; it is never scored, so every token of the text,
    the first included, is scored once. The model reads windows of ``context`` tokens (default: the model's own,
    ``reproduce.core.arithmetic.model_context``) that start ``stride`` tokens apart; a window predicts the token after
    each of its positions and only the predictions not made by an earlier window count (the first window's all), so a
    token is predicted from between ``context - stride + 1`` and ``context`` tokens (fewer near a text's start).
    ``stride == context`` gives disjoint windows with no carried-over context. Windows of all texts are batched
    ``batch_size`` at a time; a text's ragged last window is right-padded, which under causal attention leaves
    the real positions untouched, and its padding is left out of the loss.

    ``bytes`` are the UTF-8 bytes of the texts, so ``bits_per_byte`` compares models with different tokenizers.
    """
    positions = model_context(model.config.to_dict())
    context = context or positions
    if not texts:
        raise ValueError("text_perplexity needs at least one text; got an empty list")
    if not 1 <= context <= positions:
        raise ValueError(f"context {context} must be in [1, the model's {positions} positions]")
    if not 1 <= stride <= context:
        raise ValueError(f"stride {stride} must be in [1, context={context}]")
    if batch_size < 1:
        raise ValueError(f"batch_size {batch_size} must be at least 1")
    sep = tokenizer.eos_token_id
    windows = [w for text in texts
               for w in text_windows([sep] + tokenizer(text, add_special_tokens=False)["input_ids"], context, stride)]
    n_tokens = sum(w[2] for w in windows)
    n_bytes = sum(len(text.encode("utf-8")) for text in texts)
    if n_tokens == 0:
        raise ValueError("text_perplexity got only empty texts: no tokens to score")
    device = next(model.parameters()).device
    model.eval()
    nll_sum = torch.zeros((), dtype=torch.float64)
    for i in range(0, len(windows), batch_size):
        batch = windows[i : i + batch_size]
        width = max(len(inputs) for inputs, _, _ in batch)
        inputs = torch.zeros(len(batch), width, dtype=torch.long)
        targets = torch.full((len(batch), width), -100, dtype=torch.long)  # -100: not scored (ignore_index)
        for row, (ids, target, n_scored) in enumerate(batch):
            inputs[row, : len(ids)] = torch.tensor(ids)
            targets[row, len(target) - n_scored : len(target)] = torch.tensor(target[len(target) - n_scored :])
        inputs, targets = inputs.to(device), targets.to(device)
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
            logits = model(input_ids=inputs).logits
        # flattened (rows of logits), not (batch, vocab, length): a third of the time on CPU
        nll_sum += F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), reduction="sum").double().cpu()
    total = float(nll_sum)
    return {"tokens": n_tokens, "bytes": n_bytes, "nll_per_token": total / n_tokens,
            "perplexity": math.exp(total / n_tokens), "bits_per_byte": total / math.log(2) / max(n_bytes, 1),
            "context": context, "stride": stride, "n_texts": len(texts)}
