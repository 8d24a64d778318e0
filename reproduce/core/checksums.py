"""sha256 checksums of what a run trusts from disk: manifest files, checkpoints (a ``<file>.sha256`` beside each) and
exported model folders (``SHA256SUMS`` in ``sha256sum``'s format, so ``sha256sum -c SHA256SUMS`` checks it too).

A checksum is written before its file gets its final name, so a file under its final name always has one; a file
whose bytes no longer match it is damaged, and is never loaded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from reproduce.core.io import open_input, read_input_text, write_text

SUMS = "SHA256SUMS"
_CHUNK = 1 << 20
# Files already hashed in this process: (path, size, mtime) -> sha256, so a file checked before the run is not hashed
# again when a step reads it.
_HASHED: dict[tuple[str, int, int], str] = {}


def sha256_of(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHED:
        digest = hashlib.sha256()
        with open_input(path) as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        _HASHED[key] = digest.hexdigest()
    return _HASHED[key]


def sidecar(path: Path) -> Path:
    """Where a single file's checksum is kept: ``<file>.sha256``."""
    return path.with_name(path.name + ".sha256")


def write_sidecar(path: Path, final: Path) -> None:
    """The checksum of ``path`` (a temporary file) beside ``final``, its name to come."""
    write_text(sidecar(final), f"{sha256_of(path)}  {final.name}\n")


def sidecar_problem(path: Path) -> str | None:
    """Why ``path`` cannot be trusted (no checksum, or other bytes than it says), or None."""
    try:
        expected = read_input_text(sidecar(path)).split()[0]
    except (OSError, IndexError, UnicodeDecodeError):
        return f"it has no checksum ({sidecar(path).name})"
    return None if sha256_of(path) == expected else "its bytes do not match its sha256"


def write_sums(folder: Path, skip: tuple[str, ...] = ()) -> None:
    """``SHA256SUMS`` of every file of ``folder`` but ``skip`` (and the list itself)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name not in (SUMS, *skip))
    write_text(folder / SUMS, "".join(f"{sha256_of(p)}  {p.name}\n" for p in files))


def sums_problem(folder: Path) -> str | None:
    """Why a folder with ``SHA256SUMS`` cannot be trusted (the list is missing, a file is missing or changed), or
    None."""
    if not folder.is_dir():
        return "the folder is gone"
    try:
        lines = read_input_text(folder / SUMS).splitlines()
    except (OSError, UnicodeDecodeError):
        return f"it has no {SUMS}"
    for line in lines:
        expected, _, name = line.partition("  ")
        path = folder / name
        if not name or "/" in name or not path.is_file():
            return f"{name or 'a file'} is missing"
        if sha256_of(path) != expected:
            return f"{name} does not match its sha256"
    return None
