"""Manifest parsing, cache -> mirror -> URL resolution, and checksum failures."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from reproduce.core.errors import UserError
from reproduce.core.paths import CONF_DIR
from reproduce.data.manifest import Entry, Resolver, read_manifest
from reproduce.evaluate.benchmarks import TASKS_DIR


def _entry(path: str, data: bytes, url: str = "file:///nonexistent/x") -> Entry:
    return Entry(path, hashlib.sha256(data).hexdigest(), url)


@pytest.mark.parametrize("manifest, count", [(CONF_DIR / "manifests" / "ruslit.tsv", 373),
                                             (CONF_DIR / "manifests" / "rugpt3_tokenizer.tsv", 3),
                                             (TASKS_DIR / "rublimp" / "manifest.tsv", 45)], ids=lambda v: str(v)[-30:])
def test_committed_manifests_match_the_mirror_checksums(mirror: Path, manifest: Path, count: int) -> None:
    sums = {}
    for line in (mirror / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, path = line.split("  ", 1)
        sums[path] = digest
    entries = read_manifest(manifest)
    assert len(entries) == count
    for entry in entries:
        assert sums[entry.path] == entry.sha256, entry.path
        assert entry.url.startswith("https://raw.githubusercontent.com/")
        assert " " not in entry.url


def test_mirror_is_used_and_cache_comes_first(tmp_path: Path) -> None:
    data = b"mirror copy"
    entry = _entry("a/b.txt", data)
    (tmp_path / "mirror" / "a").mkdir(parents=True)
    (tmp_path / "mirror" / "a" / "b.txt").write_bytes(data)
    resolver = Resolver(tmp_path / "cache", tmp_path / "mirror", allow_download=False)
    assert resolver.resolve(entry) == tmp_path / "mirror" / "a" / "b.txt"
    (tmp_path / "cache" / "a").mkdir(parents=True)
    (tmp_path / "cache" / "a" / "b.txt").write_bytes(data)
    assert resolver.resolve(entry) == tmp_path / "cache" / "a" / "b.txt"


def test_wrong_checksum_names_the_file(tmp_path: Path) -> None:
    entry = _entry("a.txt", b"expected content")
    (tmp_path / "a.txt").write_bytes(b"other content")
    with pytest.raises(UserError, match=r"a\.txt: sha256 .* does not match"):
        Resolver(tmp_path / "cache", tmp_path).resolve(entry)


def test_missing_file_names_every_place_looked(tmp_path: Path) -> None:
    entry = _entry("gone.txt", b"x")
    with pytest.raises(UserError) as err:
        Resolver(tmp_path / "cache", tmp_path / "mirror", allow_download=False).resolve(entry)
    message = str(err.value)
    assert "gone.txt" in message and str(tmp_path / "cache") in message and str(tmp_path / "mirror") in message
    assert "\n" not in message


def test_failed_download_is_one_clear_line_and_leaves_nothing(tmp_path: Path) -> None:
    entry = _entry("gone.txt", b"x", url=(tmp_path / "nowhere.txt").as_uri())
    with pytest.raises(UserError, match="download from .* failed"):
        Resolver(tmp_path / "cache", None).resolve(entry)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_download_goes_to_the_cache_after_its_checksum(tmp_path: Path) -> None:
    source = tmp_path / "remote.txt"
    source.write_bytes(b"remote bytes")
    entry = _entry("x/remote.txt", b"remote bytes", url=source.as_uri())
    resolved = Resolver(tmp_path / "cache", None).resolve(entry)
    assert resolved == tmp_path / "cache" / "x" / "remote.txt" and resolved.read_bytes() == b"remote bytes"
    corrupt = _entry("y/remote.txt", b"something else", url=source.as_uri())
    with pytest.raises(UserError, match="downloaded sha256"):
        Resolver(tmp_path / "cache", None).resolve(corrupt)
    assert not (tmp_path / "cache" / "y" / "remote.txt").exists()


def test_malformed_manifest(tmp_path: Path) -> None:
    bad = tmp_path / "m.tsv"
    bad.write_text("file\thash\n", encoding="utf-8")
    with pytest.raises(UserError, match="header"):
        read_manifest(bad)
    with pytest.raises(UserError, match="not found"):
        read_manifest(tmp_path / "absent.tsv")


@pytest.mark.parametrize(
    "row, message",
    [
        ("a.txt\t" + "0" * 64, "line 2: 2 tab-separated columns, expected 3"),
        ("a.txt\t\thttps://x", "line 2: sha256 '' is not 64 hex digits"),
        ("/abs/a.txt\t" + "0" * 64 + "\thttps://x", "line 2: path '/abs/a.txt' must be relative"),
        ("../a.txt\t" + "0" * 64 + "\thttps://x", "must be relative, without '..'"),
        ("a.txt\t" + "0" * 64 + "\t", "line 2: empty url"),
    ],
)
def test_bad_manifest_rows_name_the_line(tmp_path: Path, row: str, message: str) -> None:
    bad = tmp_path / "m.tsv"
    bad.write_text(f"path\tsha256\turl\n{row}\n", encoding="utf-8")
    with pytest.raises(UserError, match=re.escape(message)):
        read_manifest(bad)
