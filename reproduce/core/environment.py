"""The dependency lock (``requirements/constraints.txt``, made by ``make lock``) against what is installed: the pins
for the running Python, every installed version that differs from its pin, and the check the make targets run
(``python -m reproduce.core.environment``: one line naming what to run, exit code 2).

The lock lies in the source checkout; an installed wheel has none, and then nothing is compared.
"""

from __future__ import annotations

import platform
import re
import sys
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from reproduce.core.errors import UserError
from reproduce.core.io import read_input_text
from reproduce.core.paths import SOURCE_ROOT

LOCK_NAME = "requirements/constraints.txt"
LOCK = SOURCE_ROOT / LOCK_NAME if SOURCE_ROOT is not None else None
FIX = "rm -f .venv/.installed && make .venv/.installed"  # reinstalls with the lock as a constraint
TORCH_BUILD = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")  # torch's own build: TORCH_SPEC installs it
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)\s*(?:;\s*(.+))?$")
PYTHON_IS = re.compile(r'^python_version\s*==\s*"(\d+\.\d+)"$')


def canonical(name: str) -> str:
    """A distribution's name as PEP 503 compares it."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _applies(marker: str | None, python: str, where: str) -> bool:
    """Whether a pin's marker (``python_version == "3.11" or ...``, the only kind `make lock` writes) holds."""
    if marker is None:
        return True
    versions = [PYTHON_IS.match(part.strip()) for part in marker.split(" or ")]
    if not all(versions):
        raise UserError(f"{where}: marker {marker!r} is not one `make lock` writes; run `make lock`")
    return python in {v.group(1) for v in versions if v}


def read_lock(path: Path, python: str | None = None) -> dict[str, str]:
    """distribution (canonical name) -> pinned version, for ``python`` (``3.11``; default: the running one)."""
    python = python or ".".join(platform.python_version_tuple()[:2])
    try:
        text = read_input_text(path)
    except OSError as exc:
        raise UserError(f"{path}: unreadable ({exc.strerror}); restore it from git or run `make lock`") from None
    pins: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        found = PIN.match(line)
        if found is None:
            raise UserError(f"{path}:{number}: {line!r} is not a pin (name==version); run `make lock`")
        name, version, marker = found.groups()
        if _applies(marker, python, f"{path}:{number}"):
            if canonical(name) in pins:
                raise UserError(f"{path}:{number}: {name} is pinned twice for Python {python}; run `make lock`")
            pins[canonical(name)] = version
    return pins


@cache
def installed() -> dict[str, str]:
    """distribution (canonical name) -> installed version, in this interpreter's environment (read once): the first
    on sys.path, the one imported (`import setuptools` appends its vendored copies, with their own dist-info)."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        if dist.metadata["Name"]:
            found.setdefault(canonical(dist.metadata["Name"]), dist.version)
    return found


@dataclass(frozen=True)
class Differing:
    name: str
    locked: str
    installed: str


def differing(pins: dict[str, str], found: dict[str, str]) -> list[Differing]:
    """Every installed distribution whose version is not its pin (torch's build aside: TORCH_SPEC chooses it)."""
    return [Differing(name, pins[name], found[name]) for name in sorted(pins)
            if name in found and found[name] != pins[name] and not TORCH_BUILD.match(name)]


def unpinned(pins: dict[str, str]) -> list[str]:
    """The package's own declared dependencies (every extra's too) that the lock has no pin for."""
    try:
        declared = metadata.requires("reproduce") or []
    except metadata.PackageNotFoundError:
        return []
    names = {canonical(re.split(r"[\s\[<>=!~;(]", requirement, maxsplit=1)[0]) for requirement in declared}
    return sorted(n for n in names if n not in pins and not TORCH_BUILD.match(n))


def lock_differences() -> dict[str, dict[str, str]] | None:
    """What a run records: name -> {lock, installed} for every installed version that is not its pin; None outside
    a checkout (no lock) or where the lock cannot be read."""
    if LOCK is None or not LOCK.is_file():
        return None
    try:
        pins = read_lock(LOCK)
    except UserError:
        return None
    return {d.name: {"lock": d.locked, "installed": d.installed} for d in differing(pins, installed())}


def warning() -> str | None:
    """One line where installed versions are not the lock's (the command that fixes it), else None."""
    found = lock_differences()
    if not found:
        return None
    shown = ", ".join(f"{name} {d['installed']} (lock: {d['lock']})" for name, d in list(found.items())[:3])
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    return (f"warning: installed versions differ from {LOCK_NAME}: {shown}{more}; digits may differ from the "
            f"reference's; run `{FIX}`")


def check(path: Path) -> None:
    """The make targets' check: every declared dependency pinned, every installed version its pin."""
    pins = read_lock(path)
    if missing := unpinned(pins):
        raise UserError(f"{path}: no pin for {', '.join(missing)} (declared in pyproject.toml) on Python "
                        f"{platform.python_version()}; run `make lock`")
    if found := differing(pins, installed()):
        shown = ", ".join(f"{d.name} {d.installed} (lock: {d.locked})" for d in found[:3])
        more = f" and {len(found) - 3} more" if len(found) > 3 else ""
        raise UserError(f"installed versions differ from {path}: {shown}{more}; run `{FIX}`")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else LOCK
    try:
        if path is None:
            raise UserError(f"no {LOCK_NAME}: the lock lies in the source checkout; give its path")
        check(path)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
