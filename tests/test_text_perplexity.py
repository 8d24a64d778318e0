"""Sliding-window text perplexity against a naive one-token-at-a-time reference; bits per byte across tokenizers."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import GPT2LMHeadModel

from reproduce.data.tokenizer import train_bbpe
from reproduce.evaluate.perplexity import text_perplexity
from reproduce.model.gpt2 import gpt2_config
from tests.helpers import tiny_model_config

LINES = ["Мороз и солнце; день чудесный!", "Ещё ты дремлешь, друг прелестный —", "Пора, красавица, проснись.",
         "Открой сомкнуты негой взоры", "Навстречу северной Авроры, звездою севера явись!"]
TEXTS = [" ".join(LINES), "Вечор, ты помнишь, вьюга злилась", "Пора!"]
N_POSITIONS = 16


def _model(lines: list[str], vocab_size: int, seed: int):
    tokenizer = train_bbpe(lines * 10, vocab_size=vocab_size, min_frequency=1)
    torch.manual_seed(seed)
    config = gpt2_config(tiny_model_config(len(tokenizer), n_positions=N_POSITIONS), 1, tokenizer.eos_token_id)
    return GPT2LMHeadModel(config).eval(), tokenizer


@pytest.fixture(scope="module")
def model_and_tokenizer():
    return _model(LINES, 300, seed=0)


@torch.no_grad()
def _naive_nll(model, tokenizer, texts: list[str], context: int, stride: int) -> tuple[float, int]:
    """Each token alone: the window of up to ``context`` inputs it is predicted from, as the sliding-window rule
    picks it (the window with the smallest start that reaches it), one forward per token."""
    total, count = 0.0, 0
    for text in texts:
        ids = [tokenizer.eos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"]
        for t in range(1, len(ids)):  # target ids[t], predicted from ids[begin:t]
            begin = 0 if t <= context else ((t - context - 1) // stride + 1) * stride
            assert 1 <= t - begin <= context
            logits = model(input_ids=torch.tensor([ids[begin:t]])).logits[0, -1]
            total -= torch.log_softmax(logits.double(), -1)[ids[t]].item()
            count += 1
    return total, count


@pytest.mark.parametrize(("context", "stride", "batch_size"),
                         [(8, 3, 1), (8, 8, 1), (12, 5, 4), (16, 16, 3), (5, 1, 7)])
def test_matches_naive_reference(model_and_tokenizer, context: int, stride: int, batch_size: int) -> None:
    model, tokenizer = model_and_tokenizer
    result = text_perplexity(model, tokenizer, TEXTS, context, stride, batch_size, autocast_dtype=None)
    nll, count = _naive_nll(model, tokenizer, TEXTS, context, stride)
    assert result["tokens"] == count
    assert result["nll_per_token"] == pytest.approx(nll / count, rel=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(nll / count), rel=1e-5)
    assert result["bytes"] == sum(len(t.encode("utf-8")) for t in TEXTS)
    assert result["bits_per_byte"] * result["bytes"] * math.log(2) == pytest.approx(
        result["nll_per_token"] * result["tokens"], rel=1e-9)
    assert (result["context"], result["stride"], result["n_texts"]) == (context, stride, len(TEXTS))


def test_default_context_and_batching_do_not_change_the_answer(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    one = text_perplexity(model, tokenizer, TEXTS, None, 4, 1, None)
    many = text_perplexity(model, tokenizer, TEXTS, N_POSITIONS, 4, 64, None)
    assert one["context"] == N_POSITIONS
    assert one["nll_per_token"] == pytest.approx(many["nll_per_token"], rel=1e-6)


def test_rejects_bad_arguments(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    with pytest.raises(ValueError, match="empty list"):
        text_perplexity(model, tokenizer, [], 8, 4, 1, None)
    with pytest.raises(ValueError, match="stride"):
        text_perplexity(model, tokenizer, TEXTS, 8, 9, 1, None)
    with pytest.raises(ValueError, match="stride"):
        text_perplexity(model, tokenizer, TEXTS, 8, 0, 1, None)
    with pytest.raises(ValueError, match="context"):
        text_perplexity(model, tokenizer, TEXTS, N_POSITIONS + 1, 4, 1, None)


def test_bits_per_byte_across_two_tokenizers(model_and_tokenizer) -> None:
    small = model_and_tokenizer
    large = _model(["Вечор, ты помнишь, вьюга злилась,", "На мутном небе мгла носилась;", "Луна, как бледное пятно,",
                    "Сквозь тучи мрачные желтела"], 600, seed=1)
    assert len(small[1]) != len(large[1])
    results = [text_perplexity(m, t, TEXTS, 12, 6, 4, None) for m, t in (small, large)]
    assert results[0]["tokens"] != results[1]["tokens"]
    assert results[0]["bytes"] == results[1]["bytes"] == sum(len(t.encode("utf-8")) for t in TEXTS)
    for r in results:
        assert r["bits_per_byte"] == pytest.approx(r["tokens"] * math.log2(r["perplexity"]) / r["bytes"], rel=1e-9)
