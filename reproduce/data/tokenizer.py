"""Byte-level BPE tokenizers: trained on the train split, or ruGPT-3's released vocabulary."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

# ruGPT-3's special tokens, ids 0-4 in its released vocab.json; documents end with "</s>".
SPECIAL_TOKENS = {
    "pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "mask_token": "<mask>"
}


def _byte_level(model: models.BPE) -> Tokenizer:
    """GPT-2's byte-level pipeline around a BPE model (no prefix space, no added BOS/EOS)."""
    tokenizer = Tokenizer(model)
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def _wrap(tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **SPECIAL_TOKENS)


def train_bbpe(texts: Iterable[str], vocab_size: int, min_frequency: int) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE whose first ids are ruGPT-3's special tokens."""
    tokenizer = _byte_level(models.BPE())
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return _wrap(tokenizer)


def load_bpe_files(vocab_file: Path, merges_file: Path) -> PreTrainedTokenizerFast:
    """Load a released GPT-2-format vocabulary (vocab.json + merges.txt) with ruGPT-3's special tokens.

    The released special_tokens_map.json names <|endoftext|>, which is not in the vocabulary; the ids of
    <s>, </s> and <pad> are used instead.
    """
    return _wrap(_byte_level(models.BPE.from_file(str(vocab_file), str(merges_file))))
