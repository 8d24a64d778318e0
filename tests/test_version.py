"""One version number: pyproject.toml, CITATION.cff (with its date-released), the package, `reproduce --version` and
the newest entry of CHANGELOG.md agree; every version has its entry."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from reproduce import __version__
from reproduce.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENTRY = re.compile(r"^## (\d+\.\d+\.\d+) \((\d{4}-\d{2}-\d{2})\)$", re.M)


def test_one_version_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    with open(ROOT / "pyproject.toml", "rb") as f:
        version = tomllib.load(f)["project"]["version"]
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    entries = ENTRY.findall((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"))
    main(["--version"])
    assert capsys.readouterr().out == f"reproduce {version}\n"
    assert __version__ == str(citation["version"]) == version
    assert entries[0] == (version, str(citation["date-released"]))  # the newest entry is this version's


def test_the_changelog_has_an_entry_per_version_newest_first() -> None:
    entries = ENTRY.findall((ROOT / "CHANGELOG.md").read_text(encoding="utf-8"))
    versions = [tuple(map(int, v.split("."))) for v, _ in entries]
    assert ("0.1.0", "2026-11-28") in entries and len(versions) >= 2
    assert versions == sorted(versions, reverse=True) and len(set(versions)) == len(versions)
    assert [d for _, d in entries] == sorted((d for _, d in entries), reverse=True)
