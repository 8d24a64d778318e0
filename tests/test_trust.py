"""Inputs that are not what they seem: two models that map to one results name, special files, resource bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from reproduce.core.errors import UserError
from reproduce.core.layout import EvalLayout
from reproduce.evaluate.inputs import ModelRef, check_results_name, find_models, record_source


def test_two_models_that_map_to_one_results_name_are_refused_naming_both(tmp_path: Path) -> None:
    first, second = tmp_path / "m v1", tmp_path / "m_v1"
    for folder in (first, second):
        folder.mkdir()
        (folder / "config.json").write_text("{}", encoding="utf-8")
    (one,), (two,) = find_models(str(first)), find_models(str(second))
    assert one.name == two.name == "m_v1"
    folders = EvalLayout.of(tmp_path / "results", tmp_path / "runs")
    check_results_name(folders, one, overwrite=False)  # nothing recorded yet
    record_source(folders, one)
    check_results_name(folders, ModelRef(one.name, str(tmp_path / "." / "m v1")), overwrite=False)  # the same folder
    with pytest.raises(UserError, match=r"model='.*m_v1': its results folder .*m_v1 holds the results of '.*m v1', "
                                        r"another model named 'm_v1' too; give eval.name=<another name>"):
        check_results_name(folders, two, overwrite=False)
    check_results_name(folders, two, overwrite=True)
    hub = ModelRef(one.name, "owner/m_v1")
    with pytest.raises(UserError, match="holds the results of"):
        check_results_name(folders, hub, overwrite=False)


def test_a_model_folder_is_loaded_only_whole(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """Weights holding some of the tensors, a truncated tokenizer.json, impossible config sizes and a non-positive
    repetition_penalty are one line each, not a model scored with random tensors or a traceback (nor transformers'
    table of missing tensors before the line)."""
    import json

    from safetensors.torch import load_file, save_file

    from reproduce.core.paths import default_mirror
    from reproduce.evaluate.inputs import check_tokenizer
    from reproduce.model.pretrained import check_generation_config, check_sizes, load_causal_lm
    from tests.helpers import save_tiny_model

    folder = save_tiny_model(tmp_path / "m", default_mirror(), 64)
    load_causal_lm("model", folder)  # whole: loads
    weights = load_file(folder / "model.safetensors")
    save_file({k: v for k, v in weights.items() if ".mlp." not in k}, folder / "model.safetensors",
              metadata={"format": "pt"})
    capfd.readouterr()
    with pytest.raises(UserError, match=r"its weights are not the whole model: tensors \d+ missing \(.*mlp"):
        load_causal_lm("model", folder)
    assert "MISSING" not in "".join(capfd.readouterr())
    tokenizer = folder / "tokenizer.json"
    tokenizer.write_bytes(tokenizer.read_bytes()[:500])
    with pytest.raises(UserError, match="tokenizer.json does not load"):
        check_tokenizer(ModelRef("m", str(folder)))
    for config, problem in (({"n_embd": -1}, "n_embd=-1, not a size"), ({"n_layer": "2"}, "n_layer='2', not a size"),
                            ({"vocab_size": 1 << 40}, "vocab_size=1099511627776"),
                            ({"n_embd": 30, "n_head": 4}, "width of 30, which 4 attention heads do not divide")):
        with pytest.raises(UserError, match=problem):
            check_sizes("model", str(folder), config)
    (folder / "generation_config.json").write_text(json.dumps({"repetition_penalty": 0}), encoding="utf-8")
    with pytest.raises(UserError, match=r"generation_config.json has repetition_penalty=0, outside \(0, 1000"):
        check_generation_config("model", str(folder))


def test_text_that_is_not_what_it_seems(tmp_path: Path) -> None:
    """A UTF-8 file with one stray byte is skipped with its reason (not decoded whole as cp1251), a byte-order mark
    is dropped, a lone surrogate skips its record, and a prompt of bytes that are not UTF-8 is one line."""
    import json

    from reproduce.commands.checks import check_config
    from reproduce.config.compose import compose_config
    from reproduce.data.corpus import decode, to_text
    from reproduce.data.records import Record, Skip
    from reproduce.data.sources import _jsonl_records

    good = "Мороз и солнце; день чудесный! Ещё ты дремлешь, друг прелестный.\n" * 50
    stray = good.encode()[:1001] + b"\xff" + good.encode()[1001:]
    skipped = to_text(Record("s:a", "s", stray, "a.txt", None), "plain", 10_000).skipped
    assert skipped == ("UTF-8 with 1 invalid byte sequence(s) (the first at byte 1001), not decoded as another "
                       "encoding; fix those bytes")
    assert decode(stray) is None and decode(good.encode("cp1251")) == (good, "cp1251")  # real cp1251 still reads
    with_bom = to_text(Record("s:b", "s", ("\ufeff" + good).encode(), "b.txt", None), "plain", 10_000)
    assert with_bom.text == to_text(Record("s:c", "s", good.encode(), "c.txt", None), "plain", 10_000).text
    assert not with_bom.text.startswith("\ufeff")
    jsonl = tmp_path / "x.jsonl"
    jsonl.write_text(json.dumps({"text": "ok"}) + "\n" + '{"text": "bad \\ud800 one"}\n', encoding="utf-8")
    source = compose_config("reproduce", ["data=jsonl", f"data.sources.jsonl.paths=[{jsonl}]"]).data.sources["jsonl"]
    found = list(_jsonl_records("jsonl", source, "x.jsonl", jsonl))
    assert isinstance(found[0], Record) and isinstance(found[1], Skip) and "lone surrogate" in found[1].reason
    cfg = compose_config("reproduce", ["eval.generate.prompt=abc"])
    cfg.eval.generate.prompt = "abc\udcff"  # how the shell's byte 0xff reaches Python (surrogateescape)
    with pytest.raises(UserError, match=r"eval.generate.prompt: 'abc\\\\udcff' holds bytes that are not UTF-8"):
        check_config(cfg)


def test_an_unusable_datasets_cache_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """lm-eval's datasets write a cache: where it cannot be made, the pre-flight says so naming the folder."""
    from reproduce.commands.preflight import check_writable, datasets_cache

    (tmp_path / "a_file").write_text("x", encoding="utf-8")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "a_file" / "datasets"))
    assert datasets_cache() == tmp_path / "a_file" / "datasets"
    with pytest.raises(UserError, match=r"the datasets cache .*: .*datasets cannot be created, .*a_file is a file"):
        check_writable("the datasets cache (HF_DATASETS_CACHE, else HF_HOME/datasets, else ~/.cache)",
                       datasets_cache())
    monkeypatch.delenv("HF_DATASETS_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert datasets_cache() == tmp_path / "hf" / "datasets"
