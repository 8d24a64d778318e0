"""Perplexity and bits per byte against a naive token-by-token reference; the unigram baseline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from transformers import GPT2LMHeadModel

from reproduce.data.tokenizer import train_bbpe
from reproduce.evaluate.perplexity import eval_blocks, model_perplexity, token_byte_lengths, unigram_perplexity
from reproduce.model.gpt2 import gpt2_config
from tests.helpers import tiny_model_config

TEXT = ["Мороз и солнце; день чудесный!", "Ещё ты дремлешь, друг прелестный —", "Пора, красавица, проснись."] * 20


@pytest.fixture(scope="module")
def tokenizer():
    return train_bbpe(TEXT, vocab_size=320, min_frequency=1)


def test_byte_lengths_add_up_to_utf8_bytes(tokenizer) -> None:
    lengths = token_byte_lengths(tokenizer)
    for line in TEXT[:3]:
        ids = tokenizer(line)["input_ids"]
        assert lengths[ids].sum() == len(line.encode("utf-8"))
    assert lengths[tokenizer.eos_token_id] == 0


def test_blocks_are_evenly_spaced_and_disjoint() -> None:
    tokens = np.arange(1000)
    blocks = eval_blocks(tokens, block=16, max_tokens=160)
    assert blocks.shape == (10, 17)
    starts = blocks[:, 0]
    assert np.all(np.diff(starts) >= 16) and starts[0] == 0 and blocks[-1, -1] <= 999
    assert eval_blocks(tokens, block=16, max_tokens=None).shape[0] == 999 // 16


def test_model_perplexity_matches_a_naive_reference(tokenizer) -> None:
    torch.manual_seed(0)
    model = GPT2LMHeadModel(gpt2_config(tiny_model_config(len(tokenizer), n_positions=16), 1, 2)).eval()
    stream = np.concatenate([tokenizer(t)["input_ids"] + [tokenizer.eos_token_id] for t in TEXT])
    blocks = eval_blocks(stream, block=16, max_tokens=64)
    lengths = token_byte_lengths(tokenizer)
    for context in (8, 16):
        result = model_perplexity(model, blocks, context, lengths, batch_size=3, autocast_dtype=None)
        by_position = np.zeros(context)  # reference: each target scored one at a time from its window's start
        for block in blocks:
            for w in range(16 // context):
                window = torch.tensor(block[w * context : w * context + context + 1])
                for t in range(1, context + 1):
                    logits = model(input_ids=window[None, :t]).logits[0, -1]
                    by_position[t - 1] -= torch.log_softmax(logits, -1)[window[t]].item()
        nll, n = by_position.sum(), blocks[:, 1:].size
        by_position /= n / context
        assert result["nll_by_position"] == pytest.approx(by_position.tolist(), rel=1e-4)
        assert result["nll_positions_first_half"] == pytest.approx(by_position[: context // 2].mean(), rel=1e-4)
        assert result["nll_positions_second_half"] == pytest.approx(by_position[context // 2 :].mean(), rel=1e-4)
        assert result["tokens"] == n
        assert result["perplexity"] == pytest.approx(math.exp(nll / n), rel=1e-4)
        assert result["bits_per_byte"] == pytest.approx(nll / math.log(2) / lengths[blocks[:, 1:]].sum(), rel=1e-4)


def test_unigram_baseline_by_hand() -> None:
    train = np.array([0, 0, 1, 2])  # counts 2,1,1,0 -> add-one: 3,2,2,1 of 8
    blocks = np.array([[9, 0, 3]])  # targets 0 and 3; the first token of a block is context only
    lengths = np.array([1, 1, 1, 2])
    result = unigram_perplexity(np.bincount(train, minlength=4), blocks, byte_lengths=lengths)
    nll = -(math.log(3 / 8) + math.log(1 / 8))
    assert result["perplexity"] == pytest.approx(math.exp(nll / 2))
    assert result["bits_per_byte"] == pytest.approx(nll / math.log(2) / 3)
