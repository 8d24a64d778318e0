"""``sdpa_causal``: GPT-2's attention as one call of PyTorch's scaled_dot_product_attention with ``is_causal=True`` and
no mask, registered with transformers' AttentionInterface and chosen by ``model.attn_implementation=sdpa_causal``.

Why: transformers' own ``sdpa`` kernel passes a dense T x T causal mask to SDPA whenever torch.compile traces the model
in transformers 5.17 and earlier (transformers #48925, fixed in 5.18 by #48975). With a mask, SDPA cannot use its
flash kernel (most likely the memory-efficient one runs, over the whole T x T square). For a kernel name it does not
know, transformers builds no mask at all (5.17 and 5.24 checked), so this function always reaches the causal kernels.

It serves training and validation on packed windows: queries and keys have the same length, nothing is padded (a
padding mask, had one been given, is not applied). Decoding with a cache needs another kernel, and exports never carry
this name: they load with transformers' default attention.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

SDPA_CAUSAL = "sdpa_causal"


def sdpa_causal_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                          attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                          **kwargs: Any) -> tuple[torch.Tensor, None]:
    """Causal attention of (batch, heads, tokens, head_dim) queries, keys and values; the output as transformers'
    kernels return it, (batch, tokens, heads, head_dim), and no attention weights. ``dropout`` is the module's
    ``attn_pdrop`` in training mode and 0 in eval mode (transformers passes it so)."""
    if query.shape[2] != key.shape[2]:
        raise ValueError(f"attn_implementation={SDPA_CAUSAL} attends within whole windows (queries {query.shape[2]}, "
                         f"keys {key.shape[2]}); load the model with attn_implementation='sdpa' to decode with a cache")
    out = F.scaled_dot_product_attention(query, key, value, dropout_p=dropout, scale=scaling, is_causal=True)
    return out.transpose(1, 2).contiguous(), None


def register_attention() -> None:
    """Make ``sdpa_causal`` a kernel name that transformers accepts (idempotent; process-wide)."""
    from transformers import AttentionInterface

    AttentionInterface.register(SDPA_CAUSAL, sdpa_causal_attention)
