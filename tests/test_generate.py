"""Generation: reproducible for a seed, greedy at temperature 0 (and at top_k=1), bounded by max_new_tokens."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2LMHeadModel

from reproduce.data.tokenizer import train_bbpe
from reproduce.evaluate.generate import generate
from reproduce.model.gpt2 import gpt2_config
from tests.helpers import tiny_model_config

LINES = ["Мороз и солнце; день чудесный!", "Ещё ты дремлешь, друг прелестный —", "Пора, красавица, проснись."]
PROMPTS = ["Мороз и", "Пора,"]


@pytest.fixture(scope="module")
def model_and_tokenizer():
    tokenizer = train_bbpe(LINES * 10, vocab_size=300, min_frequency=1)
    torch.manual_seed(0)
    config = gpt2_config(tiny_model_config(len(tokenizer), n_positions=64), 1, tokenizer.eos_token_id)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # no </s> from the untrained model: continuations run to max_new_tokens
        model.lm_head.weight[tokenizer.eos_token_id] = 0  # tied to wte; </s> is only read, as the first token
    return model, tokenizer


def _texts(samples: list[dict]) -> list[str]:
    return [s["text"] for s in samples]


def test_same_seed_same_samples_different_seed_different(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    a = generate(model, tokenizer, PROMPTS, 12, 1.0, None, None, seed=7, num_samples=3)
    b = generate(model, tokenizer, PROMPTS, 12, 1.0, None, None, seed=7, num_samples=3)
    c = generate(model, tokenizer, PROMPTS, 12, 1.0, None, None, seed=8, num_samples=3)
    assert a == b
    assert _texts(a) != _texts(c)
    assert [(s["prompt"], s["sample_index"]) for s in a] == [(p, i) for p in PROMPTS for i in range(3)]
    # a prompt's samples do not depend on the prompts before it
    assert generate(model, tokenizer, PROMPTS[1:], 12, 1.0, None, None, seed=7, num_samples=3) == a[3:]


def test_max_new_tokens_is_respected(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    samples = generate(model, tokenizer, PROMPTS, 5, 0.8, 20, 0.9, seed=1, num_samples=2)
    for sample in samples:
        assert sample["new_tokens"] == len(sample["token_ids"]) <= 5  # fewer only if </s> ended the document
        assert sample["text"] == tokenizer.decode(sample["token_ids"], skip_special_tokens=True)
    assert max(s["new_tokens"] for s in samples) == 5


@torch.no_grad()
def _argmax_continuation(model, tokenizer, prompt: str, n: int) -> list[int]:
    ids = [tokenizer.eos_token_id] + tokenizer(prompt, add_special_tokens=False)["input_ids"]
    new = []
    for _ in range(n):
        new.append(int(model(input_ids=torch.tensor([ids + new])).logits[0, -1].argmax()))
    return new


def test_temperature_zero_and_top_k_one_are_greedy(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    greedy = generate(model, tokenizer, PROMPTS, 6, 0.0, None, None, seed=0)
    top1 = generate(model, tokenizer, PROMPTS, 6, 1.3, 1, None, seed=5)
    for prompt, g, t in zip(PROMPTS, greedy, top1, strict=True):
        by_hand = _argmax_continuation(model, tokenizer, prompt, 6)
        assert g["token_ids"] == t["token_ids"] == by_hand
        assert g["text"] == tokenizer.decode(by_hand)
    with pytest.raises(ValueError, match="temperature"):
        generate(model, tokenizer, PROMPTS, 6, -1.0, None, None, seed=0)


@pytest.mark.parametrize("files", [("vocab.json", "merges.txt", "config.json"), ("tokenizer.json", "config.json")])
def test_the_preflight_counts_a_prompt_as_transformers_does(tmp_path, files) -> None:
    """The pre-flight's token count (the tokenizers library alone, no transformers import) of a released ruGPT-3
    tokenizer folder, as GPT-2 files or as tokenizer.json, is transformers' own."""
    import shutil

    from transformers import AutoTokenizer

    from reproduce.evaluate.inputs import ModelRef, token_counter
    from tests.bad_settings import MIRROR_ROOT

    released = MIRROR_ROOT / "tokenizers" / "rugpt3"
    AutoTokenizer.from_pretrained(released).save_pretrained(tmp_path / "saved")  # writes tokenizer.json too
    for name in files:
        shutil.copy(tmp_path / "saved" / name if name == "tokenizer.json" else released / name, tmp_path / name)
    count = token_counter(ModelRef("m", str(tmp_path)))
    reference = AutoTokenizer.from_pretrained(released)
    for text in ("Однажды вечером", " Я помню  чудное\tмгновенье: «ёлка» — 1234!\n\n", "a"):
        assert count(text) == len(reference(text, add_special_tokens=False)["input_ids"])
