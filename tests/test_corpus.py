"""Decoding (the cp1251 work), header stripping, paragraphs, and the split by whole works."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest

from reproduce.config import DataConfig
from reproduce.data.corpus import Document, clean, decode, load_document
from reproduce.data.manifest import Resolver
from reproduce.data.prepare import load_corpus
from reproduce.data.split import split_documents
from tests.conftest import CP1251_WORK


def test_cp1251_work_is_decoded_not_mojibake(mirror: Path) -> None:
    doc = load_document(CP1251_WORK, mirror / CP1251_WORK)
    assert doc is not None and doc.encoding == "cp1251"
    assert "Руслан" in doc.text and "Людмила" in doc.text
    assert "\ufffd" not in doc.text
    assert not any(mojibake in doc.text for mojibake in ("Ð", "Ñ", "Ã", "Рѓ", "Р°"))  # cp1251 read as UTF-8/latin-1
    assert not doc.text.startswith("Александр")  # header stripped


def test_undecodable_file_is_skipped_with_a_recorded_note(tmp_path: Path) -> None:
    assert decode("Привет".encode()) == ("Привет", "utf-8")
    assert decode("Привет, мир".encode("cp1251")) == ("Привет, мир", "cp1251")
    assert decode(bytes(range(128, 256)) * 4) is None
    good, bad = "Текст рассказа. Второе предложение.\n".encode(), bytes(range(128, 256)) * 4
    lines = ["path\tsha256\turl"]
    for name, data in (("ruslit/prose/A/ok.txt", good), ("ruslit/prose/A/bad.txt", bad)):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
        lines.append(f"{name}\t{hashlib.sha256(data).hexdigest()}\thttps://example.invalid/{name}")
    (tmp_path / "m.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = DataConfig(manifest=str(tmp_path / "m.tsv"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs, notes = load_corpus(cfg, Resolver(tmp_path / "cache", tmp_path, allow_download=False))
    assert [d.title for d in docs] == ["ok"]
    assert notes == [{"path": "ruslit/prose/A/bad.txt", "action": "skipped",
                      "reason": "neither UTF-8 nor cp1251 Russian text"}]
    assert any("bad.txt" in str(w.message) for w in caught)


def test_header_is_stripped_and_paragraphs_kept() -> None:
    raw = "Антон Чехов\nАГАФЬЯ\nВ бытность мою в уезде[1] мне часто  приходилось бывать.\nВторой абзац.\n"
    assert clean(raw, "Агафья", "prose") == "В бытность мою в уезде мне часто приходилось бывать.\nВторой абзац."


def test_hard_wrapped_prose_is_joined_into_paragraphs() -> None:
    raw = ("I\n       Это было в  семидесятых годах,  на другой\n  день после праздника.\n"
           "       Второй абзац\n  продолжается здесь.\n")
    assert clean(raw, "Хозяин и работник", "prose") == (
        "Это было в семидесятых годах, на другой день после праздника.\nВторой абзац продолжается здесь."
    )


def test_real_work_loses_its_header(mirror: Path) -> None:
    path = "ruslit/prose/Chekhov/Агафья.txt"
    doc = load_document(path, mirror / path)
    assert doc.text.startswith("В бытность мою") and "\n" in doc.text


def _doc(i: int, size: int) -> Document:
    return Document(f"ruslit/prose/A/{i:03d}.txt", "prose", "A", str(i), "x" * size, "utf-8")


def test_split_is_by_whole_works_seeded_and_sized() -> None:
    docs = [_doc(i, 1000 + 37 * i) for i in range(200)]
    a = split_documents(docs, seed=7, validation_fraction=0.02, test_fraction=0.05)
    b = split_documents(list(reversed(docs)), seed=7, validation_fraction=0.02, test_fraction=0.05)
    assert {k: [d.path for d in v] for k, v in a.items()} == {k: [d.path for d in v] for k, v in b.items()}
    paths = [d.path for split in a.values() for d in split]
    assert sorted(paths) == sorted(d.path for d in docs)  # every work exactly once
    total = sum(len(d.text) for d in docs)
    test_chars = sum(len(d.text) for d in a["test"])
    assert 0.05 * total <= test_chars <= 0.075 * total
    c = split_documents(docs, seed=8, validation_fraction=0.02, test_fraction=0.05)
    assert [d.path for d in c["test"]] != [d.path for d in a["test"]]


@pytest.mark.parametrize("giant", [10**7])
def test_one_long_work_cannot_swallow_the_test_set(giant: int) -> None:
    docs = [_doc(i, 1000) for i in range(100)] + [_doc(999, giant)]
    split = split_documents(docs, seed=0, validation_fraction=0.01, test_fraction=0.03)
    assert all(len(d.text) < giant for d in split["test"] + split["validation"])
