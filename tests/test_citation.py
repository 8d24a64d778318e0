"""CITATION.cff is valid CFF 1.2.0 and cites the ruGPT-3 paper's 12 authors in the BibTeX's order."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import pytest
import yaml
from cffconvert.citation import Citation
from jsonschema.exceptions import ValidationError

ROOT = Path(__file__).resolve().parents[1]
CFF = ROOT / "CITATION.cff"
# The author list of the model cards' BibTeX (shared/PUBLISHED.md §6), in order.
BIBTEX_FAMILY_NAMES = [
    "Zmitrovich",
    "Abramov",
    "Kalmykov",
    "Tikhonova",
    "Taktasheva",
    "Astafurov",
    "Baushenko",
    "Snegirev",
    "Shavrina",
    "Markov",
    "Mikhailov",
    "Fenogenova",
]


def _validate(text: str) -> None:
    Citation(text).validate()


def _published_md() -> Path | None:
    for candidate in (ROOT / "shared" / "PUBLISHED.md", ROOT.parent / "shared" / "PUBLISHED.md"):
        if candidate.is_file():
            return candidate
    return None


def test_citation_is_valid() -> None:
    _validate(CFF.read_text(encoding="utf-8"))


def test_broken_copy_fails_validation(tmp_path: Path) -> None:
    data = yaml.safe_load(CFF.read_text(encoding="utf-8"))
    del data["title"]
    broken = tmp_path / "CITATION.cff"
    broken.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with pytest.raises(ValidationError):
        _validate(broken.read_text(encoding="utf-8"))


def test_software_metadata() -> None:
    data = yaml.safe_load(CFF.read_text(encoding="utf-8"))
    assert data["cff-version"] == "1.2.0"
    assert data["title"] == "ruGPT-3 reproduction package"
    assert f'\nversion = "{data["version"]}"\n' in (ROOT / "pyproject.toml").read_text()  # the package's version
    assert datetime.date.fromisoformat(str(data["date-released"]))
    assert data["license"] == "MIT"
    assert data["authors"] == [{"name": "ruGPT-3 reproduction contributors"}]
    assert "references" not in data
    paper = data["preferred-citation"]
    assert paper["title"] == "A Family of Pretrained Transformer Language Models for Russian"
    assert paper["year"] == 2023
    assert paper["doi"] == "10.48550/arXiv.2309.10931"
    assert "2309.10931" in paper["url"]


def test_preferred_citation_authors_in_bibtex_order() -> None:
    authors = yaml.safe_load(CFF.read_text(encoding="utf-8"))["preferred-citation"]["authors"]
    assert [a["family-names"] for a in authors] == BIBTEX_FAMILY_NAMES
    assert all(a.get("given-names") for a in authors)


def test_author_list_matches_published_md() -> None:
    path = _published_md()
    if path is None:
        pytest.skip("shared/PUBLISHED.md is not in this checkout")
    match = re.search(r"author=\{([^}]*)\}", path.read_text(encoding="utf-8"))
    assert match, f"{path}: no BibTeX author field"
    names = [n.strip() for n in match.group(1).split(" and ")]
    authors = yaml.safe_load(CFF.read_text(encoding="utf-8"))["preferred-citation"]["authors"]
    assert [f"{a['given-names']} {a['family-names']}" for a in authors] == names
    assert [n.split()[-1] for n in names] == BIBTEX_FAMILY_NAMES
