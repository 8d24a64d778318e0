"""Continued pretraining: stage 1 starts from a GPT-2 checkpoint saved with its own tokenizer (a local stand-in for
the ai-forever checkpoints on the hub); a checkpoint the model config does not match is refused first."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from reproduce.core.io import read_json
from reproduce.core.paths import SOURCE_ROOT
from tests.helpers import micro_overrides, reproduce


def save_checkpoint(folder: Path) -> int:
    """A tiny GPT-2 (transformers' defaults: gelu_new; positions for RuBLiMP's sentences in this tokenizer's
    short tokens) and a byte-level BPE whose only special token is GPT-2's."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(["Белеет парус одинокой в тумане моря голубом."] * 20, trainer=trainer)
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|endoftext|>",
                                      eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    torch.manual_seed(7)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2, n_positions=512, vocab_size=len(wrapped),
                                       bos_token_id=0, eos_token_id=0))
    model.save_pretrained(folder)
    wrapped.save_pretrained(folder)
    return len(wrapped)


@pytest.mark.slow  # a micro run from a released checkpoint
def test_stage1_starts_from_a_released_checkpoint_with_its_tokenizer(tmp_path: Path) -> None:
    shutil.copytree(SOURCE_ROOT / "results" / "published", tmp_path / "results" / "published")
    checkpoint = tmp_path / "tiny-gpt2"
    vocab = save_checkpoint(checkpoint)
    micro = [o for o in micro_overrides(tmp_path, "continued") if not o.startswith("tokenizer.")]
    args = [*micro, f"stages.stage1.init_from={checkpoint}", "tokenizer=pretrained", f"tokenizer.vocab_size={vocab}",
            "stages.stage1.optim.lr=1e-9", "stages.stage1.optim.min_lr=1e-10",
            "eval.stages=[stage2]", "eval.tasks=[rublimp]",  # the scores this test reads
            "~contamination.sets.rublimp"]  # its 45,000 items checked for contamination: tests/test_end_to_end.py
    refused = reproduce(*args, cwd=tmp_path, code=2)
    assert refused.stderr.strip().splitlines() == [
        f"error: stages.stage1.init_from='{checkpoint}': the model config differs from the checkpoint's; set "
        "model.n_positions=512 model.activation_function=gelu_new (or the model group of that checkpoint)"]
    assert not (tmp_path / "runs").exists()

    reproduce(*args, "model.n_positions=512", "model.activation_function=gelu_new", cwd=tmp_path)
    work = tmp_path / "runs" / "continued"
    prepared = Path(read_json(tmp_path / "results" / "continued" / "data.json")["prepared"]["folder"])
    assert AutoTokenizer.from_pretrained(prepared / "tokenizer").get_vocab() == \
        AutoTokenizer.from_pretrained(checkpoint).get_vocab()
    released = GPT2LMHeadModel.from_pretrained(checkpoint).state_dict()
    stage1 = GPT2LMHeadModel.from_pretrained(work / "models" / "stage1").state_dict()
    for name, value in released.items():  # a learning rate of 1e-9 leaves the released weights as they were
        torch.testing.assert_close(stage1[name], value, rtol=0, atol=1e-6, msg=name)
    summary = read_json(tmp_path / "results" / "continued" / "summary.json")
    assert summary["rublimp"]["stage2"]["n_pairs"] == 45 * 4
    assert read_json(tmp_path / "results" / "continued" / "data.json")["tokenizer"]["vocab_size"] == vocab
