"""Document sources (manifest, text, JSON Lines, Parquet, Hugging Face) and the per-document text conversion."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reproduce.config.schema import SourceConfig
from reproduce.core.errors import UserError
from reproduce.core.paths import CONF_DIR
from reproduce.data import sources
from reproduce.data.corpus import CLEANERS, CLEANING_VERSION, Text, decode, load_document, to_text
from reproduce.data.manifest import Resolver
from reproduce.data.records import Record, Skip
from reproduce.data.sources import open_source
from tests.helpers import CP1251_WORK

RUSSIAN = "Мороз и солнце; день чудесный!\nЕщё ты дремлешь, друг прелестный.\n"


@pytest.fixture
def resolver(tmp_path: Path) -> Resolver:
    return Resolver(tmp_path / "cache", None, allow_download=False)


def _records(name: str, source: SourceConfig, resolver: Resolver) -> list[Record | Skip]:
    return list(open_source(name, source).records(resolver))


def check_source(name: str, source: SourceConfig, resolver: Resolver) -> None:
    open_source(name, source).check(resolver)


def fingerprint(name: str, source: SourceConfig, resolver: Resolver) -> dict:
    return open_source(name, source).fingerprint(resolver)


def _fails(match: str, fn, *args) -> str:
    with pytest.raises(UserError, match=match) as info:
        fn(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------------------- text


def test_text_glob_order_ids_and_encodings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           resolver: Resolver) -> None:
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "b.txt").write_text("второй файл", encoding="utf-8")
    (corpus / "a.txt").write_text(RUSSIAN, encoding="utf-8")
    (corpus / "Война и мир.txt").write_text("Eh bien, mon prince. Ну что, князь?", encoding="utf-8")
    (corpus / "старый.txt").write_bytes(RUSSIAN.encode("cp1251"))
    (corpus / "notes.md").write_text("not matched", encoding="utf-8")
    (corpus / "sub" / "c.txt").write_text("вложенный", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    # a file matched twice (by the glob, then by name) is read once, at its first place
    source = SourceConfig(kind="text", paths=["corpus/*.txt", "corpus/a.txt", "corpus/sub/*.txt"])
    check_source("t", source, resolver)
    records = _records("t", source, resolver)
    expected = ["corpus/a.txt", "corpus/b.txt", "corpus/Война и мир.txt", "corpus/старый.txt", "corpus/sub/c.txt"]
    assert [r.path for r in records] == expected
    assert [r.id for r in records] == [f"t:{p}" for p in expected]
    assert all(isinstance(r, Record) and r.source == "t" and r.line is None for r in records)
    assert records[0].raw == RUSSIAN.encode()
    assert records == _records("t", source, resolver)  # deterministic
    texts = [to_text(r, "plain", 1000) for r in records]
    assert [t.encoding for t in texts] == ["utf-8", "utf-8", "utf-8", "cp1251", "utf-8"]
    assert texts[3].text == texts[0].text == RUSSIAN.strip()
    assert pickle.loads(pickle.dumps(records[2])) == records[2]


def test_text_paths_that_match_nothing_fail_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            resolver: Resolver) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    message = _fails(r"^data\.sources\.x\.paths: 'corpus/\*\.txt' matches no file", check_source, "x",
                     SourceConfig(kind="text", paths=["corpus/*.txt"]), resolver)
    assert str(tmp_path) in message  # where relative paths are looked for
    _fails(r"^data\.sources\.x\.paths: 'folder' is a folder", check_source, "x",
           SourceConfig(kind="text", paths=["folder"]), resolver)
    _fails(r"^data\.sources\.x\.paths: a text source needs", check_source, "x", SourceConfig(kind="text"), resolver)
    _fails(r"^data\.sources\.x\.kind='csv': choose one of manifest, text, jsonl, parquet, hf", check_source, "x",
           SourceConfig(kind="csv"), resolver)
    _fails(r"^data\.sources\.x\.clean='fancy'", check_source, "x",
           SourceConfig(kind="text", paths=["folder"], clean="fancy"), resolver)
    _fails(r"^data\.sources\.x\.manifest: ", check_source, "x", SourceConfig(kind="manifest"), resolver)
    _fails(r"^data\.sources\.x\.manifest='nope\.tsv': not found", check_source, "x",
           SourceConfig(kind="manifest", manifest="nope.tsv"), resolver)
    _fails(r"^data\.sources\.x\.dataset: ", check_source, "x", SourceConfig(kind="hf"), resolver)


# ------------------------------------------------------------------------------------------------ jsonl

JSONL_LINES = [
    json.dumps({"text": "Первый документ.", "uid": "a1"}, ensure_ascii=False),  # 1
    "{not json",  # 2
    "",  # 3: blank, passed over
    json.dumps(["a", "list"]),  # 4
    json.dumps({"text": None, "uid": "a5"}),  # 5
    json.dumps({"text": 42, "uid": "a6"}),  # 6
    json.dumps({"text": "Последний.", "uid": 7}, ensure_ascii=False),  # 7
]


def test_jsonl_records_skips_and_ids(tmp_path: Path, resolver: Resolver) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(JSONL_LINES) + "\n", encoding="utf-8")
    gz = tmp_path / "more.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write(json.dumps({"text": "Сжатый."}, ensure_ascii=False) + "\n")
        f.write("\xff not json\n")
    source = SourceConfig(kind="jsonl", paths=[str(path), str(tmp_path / "*.gz")])
    check_source("j", source, resolver)
    got = _records("j", source, resolver)
    p, g = str(path), str(gz)
    assert got == [
        Record(f"j:{p}:1", "j", "Первый документ.", p, 1),
        Skip(f"j:{p}:2", "j", p, 2, "line is not JSON (Expecting property name enclosed in double quotes)"),
        Skip(f"j:{p}:4", "j", p, 4, "line is an array, not a JSON object"),
        Skip(f"j:{p}:5", "j", p, 5, "field 'text' is null"),
        Skip(f"j:{p}:6", "j", p, 6, "field 'text' is a number, not a string"),
        Record(f"j:{p}:7", "j", "Последний.", p, 7),
        Record(f"j:{g}:1", "j", "Сжатый.", g, 1),
        Skip(f"j:{g}:2", "j", g, 2, "line is not JSON (Expecting value)"),
    ]
    with_ids = _records("j", SourceConfig(kind="jsonl", paths=[p], id_field="uid"), resolver)
    assert [r.id for r in with_ids] == ["j:a1", f"j:{p}:2", f"j:{p}:4", "j:a5", "j:a6", "j:7"]
    assert to_text(got[0], "plain", 100) == Text("Первый документ.", None, None)


def test_jsonl_missing_field_is_a_user_error_naming_file_and_line(tmp_path: Path, resolver: Resolver) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('not json\n{"body": "x", "meta": 1}\n', encoding="utf-8")
    source = SourceConfig(kind="jsonl", paths=[str(path)])
    for fn in (check_source, _records):  # the pre-flight check finds it as the reader would
        message = _fails(rf"^{re.escape(str(path))} line 2: no field 'text' \(fields: 'body', 'meta'\); "
                         r"set data\.sources\.j\.text_field$", fn, "j", source, resolver)
        assert "line 2" in message
    check_source("j", SourceConfig(kind="jsonl", paths=[str(path)], text_field="body"), resolver)
    _fails(rf"^{re.escape(str(path))} line 2: no field 'id' .*set data\.sources\.j\.id_field$", _records, "j",
           SourceConfig(kind="jsonl", paths=[str(path)], text_field="body", id_field="id"), resolver)


# ---------------------------------------------------------------------------------------------- parquet


def test_parquet_rows_across_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resolver: Resolver) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"content": ["один", None, "три", "четыре", "пять"], "key": [10, 11, 12, 13, 14],
                             "other": [1.0] * 5}), path, row_group_size=2)
    monkeypatch.setattr(sources, "_BATCH_ROWS", 2)
    source = SourceConfig(kind="parquet", paths=[str(path)], text_field="content")
    check_source("p", source, resolver)
    got = _records("p", source, resolver)
    p = str(path)
    assert got == [Record(f"p:{p}:0", "p", "один", p, 0), Skip(f"p:{p}:1", "p", p, 1, "field 'content' is null"),
                   Record(f"p:{p}:2", "p", "три", p, 2), Record(f"p:{p}:3", "p", "четыре", p, 3),
                   Record(f"p:{p}:4", "p", "пять", p, 4)]
    keyed = _records("p", SourceConfig(kind="parquet", paths=[p], text_field="content", id_field="key"), resolver)
    assert [r.id for r in keyed] == ["p:10", "p:11", "p:12", "p:13", "p:14"]
    _fails(rf"^{re.escape(str(path))} \(Parquet columns\): no field 'text' \(fields: 'content', 'key', 'other'\); "
           r"set data\.sources\.p\.text_field$", check_source, "p", SourceConfig(kind="parquet", paths=[p]), resolver)
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    _fails(r"^data\.sources\.p\.paths: .*bad\.parquet is not a readable Parquet file", check_source, "p",
           SourceConfig(kind="parquet", paths=[str(tmp_path / "bad.parquet")]), resolver)


# -------------------------------------------------------------------------------------------- Hugging Face


def test_hf_save_to_disk_and_dataset_dict(tmp_path: Path, resolver: Resolver) -> None:
    import datasets

    datasets.disable_progress_bars()
    single, both = tmp_path / "single", tmp_path / "both"
    datasets.Dataset.from_dict({"text": ["альфа", None, "гамма"], "uid": ["x", "y", "z"]}).save_to_disk(single)
    datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["учить"]}),
                          "test": datasets.Dataset.from_dict({"text": ["проверить", "ещё"]})}).save_to_disk(both)
    source = SourceConfig(kind="hf", dataset=str(single))
    check_source("h", source, resolver)
    s = str(single)
    assert _records("h", source, resolver) == [Record("h:0", "h", "альфа", s, 0),
                                               Skip("h:1", "h", s, 1, "field 'text' is null"),
                                               Record("h:2", "h", "гамма", s, 2)]
    keyed = _records("h", SourceConfig(kind="hf", dataset=s, id_field="uid"), resolver)
    assert [r.id for r in keyed] == ["h:x", "h:y", "h:z"]
    test_split = SourceConfig(kind="hf", dataset=str(both), split="test")
    assert [r.raw for r in _records("h", test_split, resolver)] == ["проверить", "ещё"]
    _fails(r"^data\.sources\.h\.split='validation': .* has the splits train, test; choose one", check_source, "h",
           SourceConfig(kind="hf", dataset=str(both), split="validation"), resolver)
    _fails(r"no field 'body' \(fields: 'text', 'uid'\); set data\.sources\.h\.text_field$", check_source, "h",
           SourceConfig(kind="hf", dataset=s, text_field="body"), resolver)
    _fails(r"^data\.sources\.h\.dataset='\./missing': no such folder", check_source, "h",
           SourceConfig(kind="hf", dataset="./missing"), resolver)


def test_hf_folder_of_data_files_streams_offline(tmp_path: Path, resolver: Resolver) -> None:
    folder = tmp_path / "data_files"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"text": "раз"}\n{"text": "два"}\n', encoding="utf-8")
    source = SourceConfig(kind="hf", dataset=str(folder))
    check_source("h", source, resolver)
    f = str(folder)
    assert _records("h", source, resolver) == [Record("h:0", "h", "раз", f, 0), Record("h:1", "h", "два", f, 1)]
    _fails(r"data_files row 0: no field 'body' \(fields: 'text'\); set data\.sources\.h\.text_field$", check_source,
           "h", SourceConfig(kind="hf", dataset=f, text_field="body"), resolver)


def test_hf_hub_dataset_that_cannot_be_opened_offline(resolver: Resolver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    _fails(r"^data\.sources\.h\.revision: the hub dataset 'org/name' needs a pinned revision", check_source, "h",
           SourceConfig(kind="hf", dataset="org/name"), resolver)
    source = SourceConfig(kind="hf", dataset="no-such-org/no-such-dataset", revision="0" * 40)
    _fails(r"^data\.sources\.h\.dataset='no-such-org/no-such-dataset': cannot be opened \(offline", check_source,
           "h", source, resolver)
    assert fingerprint("h", source, resolver) == {
        "kind": "hf", "clean": "plain", "text_field": "text", "id_field": None,
        "dataset": "no-such-org/no-such-dataset", "config_name": None, "split": "train", "revision": "0" * 40}


# ------------------------------------------------------------------------------------------- fingerprint


def test_fingerprint_follows_content_and_settings(tmp_path: Path, resolver: Resolver) -> None:
    import datasets

    datasets.disable_progress_bars()
    (tmp_path / "a.txt").write_text("раз", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text('{"text": "два"}\n', encoding="utf-8")
    datasets.Dataset.from_dict({"text": ["три"]}).save_to_disk(tmp_path / "ds")
    configs = {
        "text": (SourceConfig(kind="text", paths=[str(tmp_path / "*.txt")]), tmp_path / "a.txt"),
        "jsonl": (SourceConfig(kind="jsonl", paths=[str(tmp_path / "b.jsonl")]), tmp_path / "b.jsonl"),
        "hf": (SourceConfig(kind="hf", dataset=str(tmp_path / "ds")), tmp_path / "ds" / "state.json"),
    }
    for name, (source, changed) in configs.items():
        first = fingerprint(name, source, resolver)
        json.dumps(first)
        assert fingerprint(name, source, resolver) == first  # nothing changed
        os.utime(changed, ns=(1, 1))  # a new mtime alone (same content) keeps it
        assert fingerprint(name, source, resolver) == first
        changed.write_bytes(changed.read_bytes() + b" ")
        assert fingerprint(name, source, resolver) != first, name
    assert fingerprint("t", SourceConfig(kind="text", paths=[str(tmp_path / "*.txt")], clean="ruslit"), resolver) \
        != fingerprint("t", SourceConfig(kind="text", paths=[str(tmp_path / "*.txt")]), resolver)
    jsonl = SourceConfig(kind="jsonl", paths=[str(tmp_path / "b.jsonl")])
    assert fingerprint("j", jsonl, resolver) != fingerprint(
        "j", SourceConfig(kind="jsonl", paths=[str(tmp_path / "b.jsonl")], text_field="body"), resolver)
    assert CLEANING_VERSION >= 1 and CLEANERS == ("ruslit", "plain")


# ---------------------------------------------------------------------------------------------- manifest


def _manifest(path: Path, rows: list[str]) -> Path:
    path.write_text("path\tsha256\turl\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_manifest_records_equal_load_document_for_ruslit(mirror: Path, tmp_path: Path) -> None:
    lines = (CONF_DIR / "manifests" / "ruslit.tsv").read_text(encoding="utf-8").splitlines()
    rows = [line for line in lines if line.startswith("ruslit/")]
    chosen = rows[::len(rows) // 20][:20]
    chosen += [line for line in rows if line.startswith(CP1251_WORK)]
    assert len(chosen) == 21
    source = SourceConfig(kind="manifest", manifest=str(_manifest(tmp_path / "m.tsv", chosen)), clean="ruslit")
    resolver = Resolver(cache_dir=tmp_path, mirror_dir=mirror, allow_download=False)
    check_source("ruslit", source, resolver)
    records = _records("ruslit", source, resolver)
    assert [r.path for r in records] == [row.split("\t")[0] for row in chosen]
    assert [r.id for r in records] == [f"ruslit:{r.path}" for r in records]
    encodings = set()
    for record in records:
        text = to_text(record, "ruslit", 1_000_000)
        doc = load_document(record.path, mirror / record.path)
        assert doc is not None and text.skipped is None, record.path
        assert text.text == doc.text and text.encoding == doc.encoding, record.path
        encodings.add(text.encoding)
    assert encodings == {"utf-8", "cp1251"}
    assert fingerprint("ruslit", source, resolver)["files"] == [row.split("\t")[:2] for row in chosen]


def test_manifest_checksum_mismatch_fails_the_check(tmp_path: Path) -> None:
    (tmp_path / "mirror" / "x").mkdir(parents=True)
    (tmp_path / "mirror" / "x" / "a.txt").write_bytes(b"changed")
    row = f"x/a.txt\t{hashlib.sha256(b'original').hexdigest()}\thttps://example.invalid/a.txt"
    source = SourceConfig(kind="manifest", manifest=str(_manifest(tmp_path / "m.tsv", [row])))
    with pytest.raises(UserError, match="does not match the manifest"):
        check_source("m", source, Resolver(tmp_path / "cache", tmp_path / "mirror", allow_download=False))


# ----------------------------------------------------------------------------------------------- to_text


def _file(raw: bytes | str, path: str = "corpus/doc.txt") -> Record:
    return Record(f"s:{path}", "s", raw, path, None)


def test_to_text_skips_binary_empty_and_undecodable() -> None:
    assert to_text(_file(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "plain", 100) == Text(None, None,
                                                                                       "binary (NUL bytes)")
    assert to_text(_file(b""), "plain", 100).skipped == "empty"
    assert to_text(_file(" \t\n\r\n\u00a0\n".encode()), "plain", 100) == Text(None, "utf-8", "empty")
    assert to_text(_file("   "), "ruslit", 100) == Text(None, None, "empty")
    assert to_text(_file(bytes(range(128, 256)) * 4), "plain", 100) == Text(
        None, None, "neither UTF-8 nor cp1251 Russian text")
    with pytest.raises(ValueError, match="unknown cleaner"):
        to_text(_file("x"), "fancy", 100)


def test_plain_cleaning_normalises_whitespace_only() -> None:
    raw = "  Первая\t\tстрока \u00a0 текста \r\n\r\n\tВторая[1]\rТретья  \n\n"
    assert to_text(_file(raw), "plain", 100) == Text("Первая строка текста\nВторая[1]\nТретья", None, None)


def test_plain_cleaning_is_the_whitespace_rule_on_random_text() -> None:
    import random

    spaces, rng = re.compile(r"[ \t\u00a0]+"), random.Random(1)
    for _ in range(2000):
        raw = "".join(rng.choice(" \t\u00a0\r\nab\x0bя") for _ in range(30))
        lines = spaces.sub(" ", raw.replace("\r\n", "\n").replace("\r", "\n")).split("\n")
        expected = "\n".join(line.strip() for line in lines if line.strip()) or None
        assert to_text(_file(raw), "plain", 100).text == expected, repr(raw)


def test_long_lines_are_rejected_with_their_number() -> None:
    text = "короткая\r\nещё одна\n" + "я" * 50 + "\nконец"
    assert to_text(_file(text), "plain", 50).text is not None  # exactly at the limit
    assert to_text(_file(text), "plain", 49).skipped == (
        "line 3 has 50 characters, over data.max_line_chars=49; split it or raise the limit")
    assert to_text(_file(text.encode("cp1251")), "plain", 49).skipped.startswith("line 3 has 50 characters")
    assert to_text(_file(text.encode()), "ruslit", 49).skipped.startswith("line 3 has 50 characters")
    many = "\n".join(["ok"] * 10_000 + ["x" * 11] + ["ok"] * 10)
    assert to_text(_file(many), "plain", 10).skipped.startswith("line 10001 has 11 characters")
    assert to_text(_file(many), "plain", 11).skipped is None


def test_a_100_mb_single_line_is_rejected_without_a_quadratic_scan() -> None:
    """A guard of the order of growth, not a timing: a quadratic scan of 100 MB takes hours; a linear one well under
    a second on an idle core, so the bound holds on a loaded machine too."""
    raw = b"word " * (20 * 1024 * 1024)  # 104,857,600 bytes, no line break
    start = time.perf_counter()
    result = to_text(_file(raw), "plain", 1_000_000)
    assert result == Text(None, "utf-8", "line 1 has 104,857,600 characters, over data.max_line_chars=1,000,000; "
                                          "split it or raise the limit")
    result = to_text(_file(b"\n" + "\u0436".encode("cp1251") * (100 * 1024 * 1024)), "ruslit", 1_000_000)
    assert result == Text(None, "cp1251", "line 2 has 104,857,600 characters, over data.max_line_chars=1,000,000; "
                                           "split it or raise the limit")
    assert time.perf_counter() - start < 30


def test_cp1251_test_on_bytes_agrees_with_decode(mirror: Path) -> None:
    import random

    rng = random.Random(0)
    samples = [(mirror / CP1251_WORK).read_bytes(), RUSSIAN.encode("cp1251"), bytes(range(128, 256)) * 4,
               "Hello, world. Привет".encode("cp1251"), "Hello, world, hello. Да".encode("cp1251"), b"\xff\x98\xe0",
               b"12345 \xb9 \xff"]
    samples += [bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 40))) for _ in range(300)]
    samples += [bytes(rng.choice(b" .,\n\xc0\xe0\xff\xa8\xb8ab\x98\x85") for _ in range(12)) for _ in range(300)]
    for raw in samples:
        decoded = decode(raw)
        result = to_text(_file(raw), "plain", 10**6)
        if decoded is None:
            assert result.skipped == "neither UTF-8 nor cp1251 Russian text", raw
        else:
            assert result.encoding == decoded[1], raw
            assert result.text == to_text(_file(decoded[0]), "plain", 10**6).text, raw


def test_workers_import_no_torch_or_transformers() -> None:
    code = ("import sys, reproduce.data.sources, reproduce.data.corpus; "
            "print([m for m in ('torch', 'transformers', 'datasets', 'pyarrow') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
