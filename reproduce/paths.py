"""Where the project's own files live, and how config paths are resolved against it."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = PROJECT_ROOT / "conf"


def project_path(path: str | Path) -> Path:
    """A config path: absolute as given, relative paths against the project root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def default_mirror() -> Path | None:
    """``../shared/data`` beside the project, when it exists."""
    mirror = PROJECT_ROOT.parent / "shared" / "data"
    return mirror if mirror.is_dir() else None
