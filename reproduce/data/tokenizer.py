"""Byte-level BPE tokenizers: trained on the train split, or ruGPT-3's released vocabulary."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2TokenizerFast, PreTrainedTokenizerFast

# ruGPT-3's special tokens, ids 0-4 in its released vocab.json; documents end with "</s>".
SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "mask_token": "<mask>"}


def train_bbpe(texts: Iterable[str], vocab_size: int, min_frequency: int) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style byte-level BPE whose first ids are ruGPT-3's special tokens."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **SPECIAL_TOKENS)


def load_bpe_files(vocab_file: Path, merges_file: Path) -> PreTrainedTokenizerFast:
    """Load a released GPT-2-format vocabulary (vocab.json + merges.txt) with ruGPT-3's special tokens.

    The released special_tokens_map.json names <|endoftext|>, which is not in the vocabulary; the ids of
    <s>, </s> and <pad> are used instead.
    """
    return GPT2TokenizerFast(vocab_file=str(vocab_file), merges_file=str(merges_file), **SPECIAL_TOKENS)
