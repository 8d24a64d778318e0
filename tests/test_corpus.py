"""Decoding (the cp1251 work), header stripping, paragraphs, and the split by whole works."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reproduce.data.corpus import clean, decode, load_document
from reproduce.data.split import TEST, TRAIN, VALIDATION, assign_splits
from tests.helpers import CP1251_WORK


def test_cp1251_work_is_decoded_not_mojibake(mirror: Path) -> None:
    doc = load_document(CP1251_WORK, mirror / CP1251_WORK)
    assert doc is not None and doc.encoding == "cp1251"
    assert "Руслан" in doc.text and "Людмила" in doc.text
    assert "\ufffd" not in doc.text
    assert not any(mojibake in doc.text for mojibake in ("Ð", "Ñ", "Ã", "Рѓ", "Р°"))  # cp1251 read as UTF-8/latin-1
    assert not doc.text.startswith("Александр")  # header stripped


def test_undecodable_bytes_are_not_guessed() -> None:
    assert decode("Привет".encode()) == ("Привет", "utf-8")
    assert decode("Привет, мир".encode("cp1251")) == ("Привет, мир", "cp1251")
    assert decode(bytes(range(128, 256)) * 4) is None


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


def test_split_is_by_whole_works_seeded_and_sized() -> None:
    sizes = np.array([1000 + 37 * i for i in range(200)])
    a = assign_splits(sizes, seed=7, validation_fraction=0.02, test_fraction=0.05)
    assert np.array_equal(a, assign_splits(sizes, seed=7, validation_fraction=0.02, test_fraction=0.05))
    assert set(a.tolist()) == {TRAIN, VALIDATION, TEST}  # every work in exactly one split
    test_chars = sizes[a == TEST].sum()
    assert 0.05 * sizes.sum() <= test_chars <= 0.075 * sizes.sum()
    c = assign_splits(sizes, seed=8, validation_fraction=0.02, test_fraction=0.05)
    assert not np.array_equal(np.flatnonzero(c == TEST), np.flatnonzero(a == TEST))


@pytest.mark.parametrize("giant", [10**7])
def test_one_long_work_cannot_swallow_the_test_set(giant: int) -> None:
    sizes = np.array([1000] * 100 + [giant])
    split = assign_splits(sizes, seed=0, validation_fraction=0.01, test_fraction=0.03)
    assert split[-1] == TRAIN and (split == TEST).any()
