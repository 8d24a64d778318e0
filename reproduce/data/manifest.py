"""Source files listed in a manifest (path, sha256, url), resolved from a cache, a mirror, or their URL.

A file is looked for, in order, in the cache directory, in the mirror directory (a read-only local
copy laid out like the manifest's paths, e.g. ``../shared/data``), and at its URL, which downloads it
into the cache. Every copy is checked against the manifest's sha256 before use.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reproduce.core.checksums import sha256_of
from reproduce.core.errors import UserError
from reproduce.core.io import atomic_file, read_input_text
from reproduce.core.paths import default_mirror

if TYPE_CHECKING:
    from reproduce.config.schema import DataConfig

_HASH_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
COLUMNS = ("path", "sha256", "url")


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the mirror root, e.g. "ruslit/prose/Chekhov/Агафья.txt"
    sha256: str
    url: str


MAX_MANIFEST_BYTES = 1 << 28  # a row is about 150 bytes: over a million files


def read_manifest(path: str | Path) -> list[Entry]:
    """Read a manifest TSV (``#`` comment lines, then a header ``path sha256 url``); every row is checked."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"manifest {path} not found: check the config's `manifest` key")
    if path.stat().st_size > MAX_MANIFEST_BYTES:  # read whole, it would fill the memory (found by tests/test_fuzz.py)
        raise UserError(f"manifest {path}: {path.stat().st_size:,} bytes, more than a manifest of file names and "
                        f"checksums holds ({MAX_MANIFEST_BYTES:,}); check the config's `manifest` key")
    try:
        numbered = [(n, line) for n, line in enumerate(read_input_text(path, encoding="utf-8-sig").splitlines(), 1)
                    if line.strip() and not line.startswith("#")]
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"manifest {path}: unreadable ({exc}); fix or replace the file") from None
    if not numbered or numbered[0][1].split("\t") != list(COLUMNS):
        raise UserError(f"manifest {path}: expected a tab-separated header '{' '.join(COLUMNS)}'")
    entries = []
    for n, line in numbered[1:]:
        cells = line.split("\t")
        entry = Entry(*cells) if len(cells) == len(COLUMNS) else None
        problem = _row_problem(entry) if entry else f"{len(cells)} tab-separated columns, expected {len(COLUMNS)}"
        if problem:
            raise UserError(f"manifest {path} line {n}: {problem}; fix the row")
        entries.append(Entry(entry.path, entry.sha256.lower(), entry.url))
    if not entries:
        raise UserError(f"manifest {path}: no rows after the header; list at least one file")
    return entries


def _row_problem(entry: Entry) -> str | None:
    parts = Path(entry.path).parts
    if not entry.path or Path(entry.path).is_absolute() or ".." in parts:
        return f"path {entry.path!r} must be relative, without '..'"
    if not _SHA256.fullmatch(entry.sha256):
        return f"sha256 {entry.sha256!r} is not 64 hex digits"
    if not entry.url:
        return "empty url"
    return None


class Resolver:
    """Finds manifest entries on disk (cache, then mirror) or downloads them into the cache."""

    def __init__(self, cache_dir: str | Path, mirror_dir: str | Path | None, allow_download: bool = True):
        self.cache_dir = Path(cache_dir).expanduser()
        self.mirror_dir = Path(mirror_dir).expanduser() if mirror_dir else None
        self.allow_download = allow_download

    def resolve(self, entry: Entry) -> Path:
        """Return a local path whose content has the entry's sha256, or raise one clear UserError."""
        looked: list[str] = []
        for root in (self.cache_dir, self.mirror_dir):
            if root is None:
                continue
            candidate = root / entry.path
            looked.append(str(candidate))
            if candidate.is_file():
                actual = sha256_of(candidate)
                if actual != entry.sha256:
                    raise UserError(
                        f"{candidate}: sha256 {actual[:12]}… does not match the manifest's {entry.sha256[:12]}…; "
                        "the copy is corrupt or another version: delete it (cache) or fix the mirror"
                    )
                return candidate
        if not self.allow_download:
            raise UserError(f"{entry.path}: not found in {', '.join(looked)}, and downloads are disabled")
        return self._download(entry, looked)

    def _download(self, entry: Entry, looked: list[str]) -> Path:
        target = self.cache_dir / entry.path
        try:
            with atomic_file(target) as out:
                with urllib.request.urlopen(entry.url, timeout=60) as response:
                    while chunk := response.read(_HASH_CHUNK):
                        out.write(chunk)
                out.flush()
                actual = sha256_of(Path(out.name))
                if actual != entry.sha256:
                    raise UserError(
                        f"{entry.url}: downloaded sha256 {actual[:12]}… does not match the manifest's "
                        f"{entry.sha256[:12]}…; the source changed: report it"
                    )
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise UserError(
                f"{entry.path}: not found in {', '.join(looked) or 'no local folder'}, and download from "
                f"{entry.url} failed ({exc}); set REPRODUCE_DATA_MIRROR to a mirror folder or go online"
            ) from None
        return target



def make_resolver(data: DataConfig) -> Resolver:
    """The resolver of a data config: its cache, its mirror (else ../shared/data), downloads if allowed."""
    return Resolver(data.cache_dir, data.mirror or default_mirror(), allow_download=data.allow_download)
