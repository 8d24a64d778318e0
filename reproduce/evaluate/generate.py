"""Sample continuations of prompts from a trained model, reproducibly for a fixed seed."""

from __future__ import annotations

import zlib

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


def prompt_seed(seed: int, prompt: str) -> int:
    """The seed of one prompt's samples: ``seed`` and the prompt's CRC-32 together."""
    return (seed * 1_000_003 + zlib.crc32(prompt.encode("utf-8"))) % 2**63


@torch.no_grad()
def generate(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str], max_new_tokens: int,
             temperature: float, top_k: int | None, top_p: float | None, seed: int, num_samples: int = 1,
             device: torch.device | str | None = None) -> list[dict]:
    """``num_samples`` continuations of each prompt with ``model.generate``: sampled at ``temperature`` (with
    optional top-k / nucleus filtering; None turns each off) or greedy when ``temperature == 0``.

    Each prompt is put after ``</s>``, the document separator the models were trained with, so it reads as the
    start of a document. The RNG is reseeded for every prompt with ``prompt_seed(seed, prompt)`` (inside
    ``torch.random.fork_rng``, leaving the caller's RNG state alone), so a prompt's samples depend only on the seed
    and the prompt, not on the other prompts, and two prompts do not share one stream of draws. Generation stops at
    ``</s>`` or after ``max_new_tokens``. Returns one dict per sample: prompt, sample_index, text (the decoded
    continuation only, special tokens left out), new_tokens (how many tokens were generated, ``</s>`` not counted)
    and token_ids (those tokens).
    """
    if temperature < 0:
        raise ValueError(f"temperature {temperature} must be >= 0 (0: greedy)")
    if max_new_tokens < 1 or num_samples < 1:
        raise ValueError(f"max_new_tokens ({max_new_tokens}) and num_samples ({num_samples}) must be >= 1")
    if temperature == 0 and num_samples > 1:
        raise ValueError("greedy decoding (temperature 0) gives one sample per prompt; set num_samples=1")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device).eval()
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    sampling = {"do_sample": True, "temperature": temperature, "top_k": top_k or 0, "top_p": top_p or 1.0} \
        if temperature > 0 else {"do_sample": False, "temperature": None, "top_k": None, "top_p": None}
    results = []
    for prompt in prompts:
        ids = torch.tensor([[eos] + tokenizer(prompt, add_special_tokens=False)["input_ids"]], device=device)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(prompt_seed(seed, prompt))
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 num_return_sequences=num_samples, pad_token_id=pad, eos_token_id=eos, **sampling)
        for index, row in enumerate(out[:, ids.shape[1] :].tolist()):
            new = row[: row.index(eos)] if eos in row else row
            results.append({"prompt": prompt, "sample_index": index, "new_tokens": len(new), "token_ids": new,
                            "text": tokenizer.decode(new, skip_special_tokens=True)})
    return results
