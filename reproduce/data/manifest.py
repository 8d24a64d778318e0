"""Source files listed in a manifest (path, sha256, url), resolved from a cache, a mirror, or their URL.

A file is looked for, in order, in the cache directory, in the mirror directory (a read-only local
copy laid out like the manifest's paths, e.g. ``../shared/data``), and at its URL, which downloads it
into the cache. Every copy is checked against the manifest's sha256 before use.
"""

from __future__ import annotations

import csv
import hashlib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from reproduce.errors import UserError
from reproduce.io import atomic_path

_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the mirror root, e.g. "ruslit/prose/Chekhov/Агафья.txt"
    sha256: str
    url: str


def read_manifest(path: str | Path) -> list[Entry]:
    """Read a manifest TSV (``#`` comment lines, then a header ``path sha256 url``)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"manifest {path} not found: check the data config's `manifest` key")
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    rows = list(csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or set(rows[0]) != {"path", "sha256", "url"}:
        raise UserError(f"manifest {path}: expected a tab-separated header 'path sha256 url'")
    return [Entry(r["path"], r["sha256"].lower(), r["url"]) for r in rows]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


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
            with atomic_path(target) as tmp:
                with urllib.request.urlopen(entry.url, timeout=60) as response, tmp.open("wb") as out:
                    while chunk := response.read(_HASH_CHUNK):
                        out.write(chunk)
                actual = sha256_of(tmp)
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

    def resolve_all(self, entries: list[Entry]) -> dict[str, Path]:
        return {entry.path: self.resolve(entry) for entry in entries}
