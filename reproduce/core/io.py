"""The one writer: every file and folder the package creates, replaces or removes goes through this module
(``tests/test_writer.py`` fails on a write anywhere else).

- A file is written to a temporary name beside it (``mkstemp``: ``O_CREAT|O_EXCL|O_NOFOLLOW``), then renamed onto
  its name; a lock or log file is opened with ``O_NOFOLLOW``. A symbolic link where the package writes a file is
  never followed, replaced or removed: one line, and nothing is written.
- A folder on the way may be a symbolic link only if it is the user's own (owned by the user running the package,
  or by root): a ``checkpoints/`` on another disk is written through. A link owned by another user (planted in a
  shared folder) is refused with one line.
- A folder the package replaces or removes whole (an export, ``overwrite=true``) that is a symbolic link is refused
  with one line: the link and its target's files are never deleted. ``paper/`` linked elsewhere is written through
  (its files replaced one by one, the target's other files kept).
- A full disk, a quota, a read-only or unwritable place is one line naming the path (``disk_error``, read by the CLI).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import TextIOWrapper
from pathlib import Path
from typing import IO, Any

from reproduce.core.errors import UserError

_UMASK = os.umask(0)
os.umask(_UMASK)
_OWNERS = {0, os.geteuid()}  # whose symbolic links are the user's own: the user's and root's (/tmp on some systems)
_DISK_ERRORS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted"}


def disk_error(exc: BaseException | None) -> str | None:
    """One line for an ``OSError`` of a full, read-only or unwritable place (``exc`` or what caused it), naming the
    path; None for any other error."""
    seen = set()
    while exc is not None and not (isinstance(exc, OSError) and exc.errno in _DISK_ERRORS) and id(exc) not in seen:
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    if not isinstance(exc, OSError):
        return None
    where = exc.filename if exc.filename is not None else "a file the package writes"
    todo = "free space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "fix its permissions"
    return f"{where}: {_DISK_ERRORS[exc.errno]}; {todo} or choose another folder, then run again"


def check_links(path: str | Path) -> None:
    """One line if a folder on ``path``'s way is a symbolic link owned by another user; the user's own links and
    root's are followed (a ``checkpoints/`` on another disk)."""
    here = Path(os.path.abspath(path))
    for part in (*reversed(here.parents), here):
        try:
            info = part.lstat()
        except FileNotFoundError:
            return
        except NotADirectoryError:
            return
        if stat.S_ISLNK(info.st_mode) and info.st_uid not in _OWNERS:
            raise UserError(f"{part} is a symbolic link owned by another user (uid {info.st_uid}, to "
                            f"{os.readlink(part)}): the package does not write through it; remove it or choose "
                            "another folder")


def _refuse_link(path: Path, what: str) -> None:
    if path.is_symlink():
        raise UserError(f"{path} is a symbolic link (to {os.readlink(path)}): {what}, and never follows, replaces or "
                        "removes a link; remove the link (its target is untouched) or choose another folder")


def make_dirs(path: str | Path) -> Path:
    """``path`` and its parents as folders (links on the way checked first)."""
    path = Path(path)
    check_links(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    make_dirs(path.parent)
    _refuse_link(path, "the package writes this file by renaming a new one onto its name")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # O_EXCL|O_NOFOLLOW
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.chmod(0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the mode open() would
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def atomic_file(path: str | Path, mode: str = "wb", **kwargs: Any) -> Iterator[IO[Any]]:
    """``path`` opened for writing at a temporary name, renamed onto ``path`` only if the block succeeds."""
    with atomic_path(path) as tmp, tmp.open(mode, **kwargs) as handle:
        yield handle


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    make_dirs(path.parent)
    _refuse_link(path, "the package replaces this folder whole")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.chmod(0o777 & ~_UMASK)
    try:
        yield tmp
        _refuse_link(path, "the package replaces this folder whole")
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def scratch_dir(path: str | Path) -> Iterator[Path]:
    """A folder of the package's own at ``path`` for the block (e.g. a model exported to be scored), made fresh and
    removed afterwards however the block ends; a link there is one line."""
    path = Path(path)
    remove(path)
    make_dirs(path)
    try:
        yield path
    finally:
        remove(path)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    """Deterministic JSON (sorted keys, 2-space indent, trailing newline), written atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def copy_file(source: str | Path, path: str | Path) -> None:
    """A copy of ``source`` at ``path``, written atomically."""
    with atomic_path(path) as tmp:
        shutil.copyfile(source, tmp)


def copy_tree(source: str | Path, path: str | Path, ignore: Callable[..., Any] | None = None) -> None:
    """A copy of the folder ``source`` at ``path``, which must not exist (a folder being built by ``atomic_dir``)."""
    check_links(Path(path).parent)
    shutil.copytree(source, path, ignore=ignore)


def remove_all(paths: list[Path]) -> None:
    """Remove files and folders; none is removed if one of them is a symbolic link (one line naming it)."""
    for path in paths:
        check_links(path.parent)
        _refuse_link(path, "the package would remove it whole (overwrite=true or a changed step)")
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def remove(path: str | Path) -> None:
    """Remove one file or folder the package wrote (missing is fine; a symbolic link is one line)."""
    remove_all([Path(path)])


def remove_temporaries(folder: Path, pattern: str = ".*.tmp") -> None:
    """What a killed write left (``.*.tmp``) under ``folder``; a link with such a name is no temporary of ours and
    is left alone, as is anything under a link."""
    if not folder.is_dir() or folder.is_symlink() and folder.lstat().st_uid not in _OWNERS:
        return
    for path in sorted(folder.rglob(pattern), reverse=True):
        if path.is_symlink():
            continue
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders of ``folders`` (deepest first) that are empty; stop at the first that is not."""
    for folder in folders:
        if folder.is_symlink() or not folder.is_dir() or any(folder.iterdir()):
            break
        folder.rmdir()


def check_own_file(path: str | Path, what: str) -> None:
    """For the pre-flight: one line if ``path``, a file the package makes itself (``what``: its lock files, its log
    files), is a symbolic link or no regular file; missing is fine. ``_open_nofollow`` refuses the same when it
    opens it, so a link planted later is still refused, never followed."""
    path = Path(path)
    try:
        info = path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISLNK(info.st_mode):
        _refuse_link(path, f"the package makes its {what} itself")
    if not stat.S_ISREG(info.st_mode):
        raise UserError(f"{path} is not a regular file: the package makes its {what} itself; remove it")


def _open_nofollow(path: Path, flags: int, what: str) -> int:
    """A descriptor of ``path`` opened with ``O_NOFOLLOW`` (and made if missing); a link or a special file there is
    one line."""
    make_dirs(path.parent)
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            check_own_file(path, what)
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError(f"{path} is not a regular file: the package makes its {what} itself; remove it")
    os.set_blocking(fd, True)
    return fd


def open_lock(path: str | Path) -> IO[str]:
    """``path`` opened for reading and writing (made if missing, never truncated here) for ``fcntl.flock``."""
    return os.fdopen(_open_nofollow(Path(path), os.O_RDWR, "lock files"), "r+", encoding="utf-8")


def open_log(path: str | Path) -> IO[str]:
    """``path`` opened to append lines (made if missing)."""
    fd = _open_nofollow(Path(path), os.O_WRONLY | os.O_APPEND, "log files")
    return os.fdopen(fd, "a", encoding="utf-8", buffering=1)


def temporary_file(folder: Path) -> IO[bytes]:
    """An anonymous file in ``folder`` (no name: gone when closed or when the process is killed)."""
    check_links(folder)
    return tempfile.TemporaryFile(dir=folder)


def probe_writable(folder: Path) -> None:
    """Raise ``OSError`` unless a file can be made in ``folder``; nothing is left."""
    fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=".tmp", dir=folder)
    os.close(fd)
    os.unlink(probe)


def write_folder(files: dict[str, bytes], folder: Path) -> list[Path]:
    """``folder`` holding ``files``: written into a fresh folder beside it that then replaces it whole (no stale or
    half-written file), the folders of a killed write removed first. A folder that is the user's own link (``paper/``
    linked into a LaTeX project) is written through: each file replaced atomically, the target's other files kept."""
    folder = Path(folder)
    make_dirs(folder.parent)
    if folder.is_symlink():
        check_links(folder)
        if not folder.is_dir():
            _refuse_link(folder, "the package writes a folder there")
        for name, data in sorted(files.items()):
            write_bytes(folder / name, data)
        return [folder / name for name in sorted(files)]
    for kind in ("new", "old"):
        for stale in folder.parent.glob(f".{folder.name}.{kind}.*"):
            if not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.new.", dir=folder.parent))
    try:
        staging.chmod(0o777 & ~_UMASK)
        for name, data in sorted(files.items()):
            write_bytes(staging / name, data)
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
            folder.replace(old / folder.name)
            staging.replace(folder)
            shutil.rmtree(old)
        else:
            staging.replace(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [folder / name for name in sorted(files)]


# ------------------------------------------------------------------------------------------------ the one reader

MAX_INPUT = 1 << 40  # a file read whole or streamed (corpora, shards, checkpoints): any size a disk holds
MAX_SMALL = 256 << 20  # JSON, YAML, TSV and text the package reads whole: records, manifests, configs


def open_input(path: str | Path, max_bytes: int = MAX_INPUT) -> IO[bytes]:
    """``path`` opened to read, checked first: a regular file (a FIFO or a device is one line, never a hang: opened
    without blocking, then checked on the open descriptor) of at most ``max_bytes``."""
    path = Path(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode) else \
                "a special file"
            raise UserError(f"{path}: {kind}, not a regular file; give (or restore) the file itself")
        if info.st_size > max_bytes:
            raise UserError(f"{path}: {info.st_size:,} bytes, more than a file of its kind holds ({max_bytes:,}); "
                            "restore it")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_input(path: str | Path, max_bytes: int = MAX_SMALL) -> bytes:
    """The bytes of a checked input file (``open_input``)."""
    with open_input(path, max_bytes) as f:
        return f.read()  # of at most max_bytes: open_input checked its size


def read_input_text(path: str | Path, max_bytes: int = MAX_SMALL, encoding: str = "utf-8") -> str:
    return read_input(path, max_bytes).decode(encoding)


def open_input_text(path: str | Path, max_bytes: int = MAX_SMALL, encoding: str = "utf-8",
                    newline: str | None = None) -> IO[str]:
    """A checked input file (``open_input``) opened as text (for ``csv``: ``newline=""``)."""
    return TextIOWrapper(open_input(path, max_bytes), encoding=encoding, newline=newline)


def read_json(path: str | Path, max_bytes: int = MAX_SMALL) -> Any:
    """JSON from a checked input file; nesting deeper than Python's recursion limit is a ``ValueError`` as any
    malformed JSON (callers name the file)."""
    try:
        return json.loads(read_input_text(path, max_bytes))
    except RecursionError:
        raise ValueError("nested too deeply") from None
