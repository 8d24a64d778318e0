"""Where the package's own files live, and how paths in a config are resolved.

The configs (``conf/``) ship inside the package, so an installed CLI finds them from any directory. Paths in
a config are taken as given: relative output paths (``results``, ``runs``, ``paper``) are relative to the
working directory, as with any command-line tool. A relative input file (a manifest) is looked for in the
working directory first, then in the package's ``conf/`` folder, where the shipped manifests live.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]
CONF_DIR = PACKAGE_DIR / "conf"
# The source checkout, when the package runs from one (editable install, tests); None for an installed wheel.
SOURCE_ROOT = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").is_file() else None


def config_file(path: str | Path) -> Path:
    """An input file named in a config: absolute as given; relative in the working directory, else in conf/."""
    path = Path(path).expanduser()
    if path.is_absolute() or path.exists():
        return path
    return CONF_DIR / path


def default_mirror() -> Path | None:
    """``../shared/data`` beside the source checkout, when both exist."""
    if SOURCE_ROOT is None:
        return None
    mirror = SOURCE_ROOT.parent / "shared" / "data"
    return mirror if mirror.is_dir() else None
