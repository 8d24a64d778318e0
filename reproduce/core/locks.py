"""One process per run: a lock file in ``runs/<run>/`` (and in ``results/eval/<name>/`` for ``reproduce eval``) that
names its holder.

The lock is the kernel's (``fcntl.flock``) on a file that holds the holder's PID, host, start time and command: it
dies with its process, so a lock file left by a killed process is simply taken over, and a second process started
while the first runs stops with one line naming it. A released lock's file is removed.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

from reproduce.core.errors import UserError
from reproduce.core.io import make_dirs, open_lock, read_input_text, remove_empty

LOCK = ".lock"


def _holder(path: Path) -> str:
    """Who holds the lock, as its file says."""
    try:
        who: dict[str, Any] = json.loads(read_input_text(path, 1 << 16))
        return (f"PID {who['pid']} on {who['host']} since {who['started']} "
                f"(`{' '.join(who['command'])[:120]}`)")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _acquire(path: Path) -> IO[str] | None:
    """The open, locked lock file, or None when another process holds it."""
    while True:
        handle = open_lock(path)  # O_NOFOLLOW: a link planted at the lock's name is refused, never truncated
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        try:  # the holder we waited for may have removed the file: lock the file that is there now
            if os.fstat(handle.fileno()).st_ino == path.stat().st_ino:
                return handle
        except FileNotFoundError:
            pass
        handle.close()


@contextmanager
def locked(folder: Path, what: str) -> Iterator[None]:
    """Hold ``folder``'s lock while the block runs; one line naming the holder if another process has it. A folder
    made for the lock and left empty is removed with it."""
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # the folders made for the lock, deepest first
    make_dirs(folder)
    path = folder / LOCK
    handle = _acquire(path)
    if handle is None:
        raise UserError(f"{folder} is in use by {_holder(path)}: one process per {what}; wait for it to end, or "
                        "choose another name")
    try:
        handle.seek(0)
        handle.truncate()
        json.dump({"pid": os.getpid(), "host": socket.gethostname(), "command": sys.argv,
                   "started": time.strftime("%Y-%m-%d %H:%M:%S")}, handle)
        handle.flush()
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: a waiter then finds a new file, not this one
        handle.close()
        remove_empty(made)


@contextmanager
def all_locked(folders: list[tuple[Path, str]]) -> Iterator[None]:
    """Hold several folders' locks (in order); a held one releases those taken before it."""
    with ExitStack() as stack:
        for folder, what in folders:
            stack.enter_context(locked(folder, what))
        yield
