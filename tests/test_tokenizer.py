"""Both tokenizer kinds: a trained byte-level BPE and ruGPT-3's released vocabulary via the manifest."""

from __future__ import annotations

from pathlib import Path

from transformers import AutoTokenizer

from reproduce.config.compose import compose_config
from reproduce.config.schema import DataConfig
from reproduce.core.paths import config_file
from reproduce.data.manifest import make_resolver, read_manifest
from reproduce.data.tokenizer import SPECIAL_TOKENS, load_bpe_files, train_bbpe

SPECIALS = list(SPECIAL_TOKENS.values())  # <pad> <s> </s> <unk> <mask>


def test_trained_bbpe_has_rugpt3_special_ids_and_round_trips(tmp_path: Path) -> None:
    text = ["Я помню чудное мгновенье:", "Передо мной явилась ты,", "Как мимолётное виденье,"] * 30
    tokenizer = train_bbpe(text, vocab_size=400, min_frequency=2)
    assert tokenizer.convert_ids_to_tokens(list(range(5))) == SPECIALS
    assert (tokenizer.eos_token_id, tokenizer.bos_token_id, tokenizer.pad_token_id) == (2, 1, 0)
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    sample = "Как мимолётное виденье, ёж и «кавычки» — 1837 год."
    assert loaded.decode(loaded(sample)["input_ids"]) == sample  # byte-level: nothing is lost
    assert 256 + 5 < len(loaded) <= 400


def test_released_rugpt3_vocabulary_through_the_manifest(mirror: Path, tmp_path: Path) -> None:
    data = DataConfig(cache_dir=str(tmp_path / "cache"), mirror=str(mirror), allow_download=False)
    tok = compose_config("reproduce", ["tokenizer=rugpt3"]).tokenizer
    files = {Path(e.path).name: make_resolver(data).resolve(e) for e in read_manifest(config_file(tok.manifest))}
    tokenizer = load_bpe_files(files["vocab.json"], files["merges.txt"])
    assert len(tokenizer) == 50257
    assert tokenizer.convert_ids_to_tokens(list(range(5))) == SPECIALS
    assert tokenizer.eos_token == "</s>" and tokenizer.eos_token_id == 2
    sample = "Москва — столица России."
    assert tokenizer.decode(tokenizer(sample)["input_ids"]) == sample
