"""The one writer (reproduce/core/io.py): no module writes, replaces or removes a file any other way, and the writer
never follows a link it did not make, never removes a link or its target's files, and says a full disk in one line.
"""

from __future__ import annotations

import ast
import errno
import os
from pathlib import Path

import pytest

from reproduce.core import io
from reproduce.core.errors import UserError
from reproduce.core.locks import locked

PACKAGE = Path(__file__).resolve().parents[1] / "reproduce"
WRITERS = {"core/io.py", "core/locks.py"}
# Calls that write, replace or remove: module functions and methods (a method named so on any object counts).
MODULE_CALLS = {"os": {"replace", "rename", "renames", "remove", "unlink", "rmdir", "removedirs", "makedirs", "mkdir",
                       "symlink", "link", "truncate", "mkfifo", "open", "fdopen"},
                "shutil": {"rmtree", "copy", "copy2", "copyfile", "copytree", "move", "copyfileobj"},
                "tempfile": {"mkstemp", "mkdtemp", "TemporaryFile", "NamedTemporaryFile", "TemporaryDirectory"},
                "json": {"dump"}, "yaml": {"dump", "safe_dump"}, "np": {"save", "savez", "savez_compressed"},
                "torch": {"save"}, "pickle": {"dump"}}
METHODS = {"write_text", "write_bytes", "mkdir", "rmdir", "unlink", "touch", "symlink_to", "hardlink_to", "rename",
           "save_pretrained", "savefig", "to_csv", "tofile", "chmod"}
WRITE_MODES = set("wax+")
# Writes into what the writer made: a temporary name from atomic_path, a folder from atomic_dir, a buffer in memory.
ALLOWED = {
    ("model/gpt2.py", "model.save_pretrained(folder, state_dict=state_dict)"),  # into the caller's atomic_dir
    ("model/gpt2.py", "model.save_pretrained(folder, state_dict=state)"),
    ("paper/plotting.py", "fig.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)"),  # an in-memory buffer
    ("cli.py", "os.open(os.devnull, os.O_WRONLY)"),  # stdout to /dev/null after a closed pipe
}


def _atomic_names(tree: ast.AST) -> set[str]:
    """Names bound by ``with atomic_path(...) as x`` / ``atomic_file`` / ``atomic_dir`` / ``scratch_dir``: the writer
    made them."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if (isinstance(call, ast.Call) and ast.unparse(call.func).split(".")[-1] in
                        ("atomic_path", "atomic_file", "atomic_dir", "scratch_dir")
                        and isinstance(item.optional_vars, ast.Name)):
                    names.add(item.optional_vars.id)
    return names


def _mode(call: ast.Call, position: int) -> str:
    mode = next((k.value for k in call.keywords if k.arg == "mode"), None)
    if mode is None and len(call.args) > position:
        mode = call.args[position]
    return mode.value if isinstance(mode, ast.Constant) and isinstance(mode.value, str) else "r"


def _writes(path: Path, rel: str) -> list[str]:
    """Each call of ``path`` that writes outside the writer, as 'line: call'."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    made = _atomic_names(tree)
    found = []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        func = call.func
        text = ast.unparse(call)
        args = [ast.unparse(a).split(" ")[0].split("/")[0].strip("()") for a in call.args]
        if made & set(args):
            continue  # into a temporary name or folder the writer made
        if isinstance(func, ast.Name):
            bad = func.id == "open" and bool(WRITE_MODES & set(_mode(call, 1)))
        elif isinstance(func, ast.Attribute):
            owner = ast.unparse(func.value)
            to_stream = owner != "yaml" or len(call.args) > 1 or any(k.arg == "stream" for k in call.keywords)
            bad = (func.attr in MODULE_CALLS.get(owner, ()) and to_stream or func.attr in METHODS
                   or func.attr == "open" and owner not in MODULE_CALLS and bool(WRITE_MODES & set(_mode(call, 0)))
                   or func.attr == "replace" and len(call.args) == 1 and not call.keywords)  # Path.replace
        else:
            bad = False
        if bad and (rel, text) not in ALLOWED:
            found.append(f"{call.lineno}: {text}")
    return found


def test_every_write_goes_through_the_writer() -> None:
    """A write, rename or removal anywhere but reproduce/core/io.py (and the lock's own file in locks.py) fails
    here: use io.atomic_path / atomic_file / atomic_dir / write_* / copy_* / remove* / make_dirs instead."""
    found = {rel: writes for path in sorted(PACKAGE.rglob("*.py"))
             if (rel := path.relative_to(PACKAGE).as_posix()) not in WRITERS and (writes := _writes(path, rel))}
    assert not found, found


def test_the_walker_sees_writes(tmp_path: Path) -> None:
    """The walk above finds each kind of write it forbids (so that it cannot pass by seeing nothing)."""
    sample = tmp_path / "sample.py"
    code = ("import os, shutil, json\nfrom pathlib import Path\nopen('x', 'w')\nPath('x').write_text('a')\n"
            "os.replace('a', 'b')\nshutil.rmtree('d')\njson.dump({}, f)\nPath('x').open('ab')\nPath('d').mkdir()\n"
            "Path('a').replace(Path('b'))\nopen('x')\nPath('x').open()\n'a'.replace('a', 'b')\n")
    sample.write_text(code, encoding="utf-8")
    assert len(_writes(sample, "sample.py")) == 8


def test_a_planted_lock_link_is_refused_and_its_target_kept(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me", encoding="utf-8")
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / ".lock").symlink_to(target)
    with pytest.raises(UserError, match="symbolic link"), locked(run, "run"):
        pass
    assert target.read_text(encoding="utf-8") == "keep me" and (run / ".lock").is_symlink()


def test_a_link_of_another_user_on_the_way_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "run").symlink_to(elsewhere)
    monkeypatch.setattr(io, "_OWNERS", set())  # as if the link belonged to another user
    with pytest.raises(UserError, match="owned by another user"):
        io.write_json(tmp_path / "results" / "run" / "summary.json", {})
    assert list(elsewhere.iterdir()) == []


def test_the_users_own_linked_folder_is_written_through(tmp_path: Path) -> None:
    disk = tmp_path / "other-disk"
    disk.mkdir()
    (disk / "theirs.txt").write_text("x", encoding="utf-8")
    run = tmp_path / "runs" / "r"
    run.mkdir(parents=True)
    (run / "checkpoints").symlink_to(disk)
    io.write_bytes(run / "checkpoints" / "stage1" / "step.ckpt", b"ok")
    assert (disk / "stage1" / "step.ckpt").read_bytes() == b"ok" and (run / "checkpoints").is_symlink()


def test_removing_a_linked_folder_is_one_line_and_removes_nothing(tmp_path: Path) -> None:
    """overwrite=true on a run whose checkpoints/ is a link: no 'Cannot call rmtree on a symbolic link'."""
    disk = tmp_path / "other-disk"
    (disk / "stage1").mkdir(parents=True)
    run = tmp_path / "runs" / "r"
    (run / "models").mkdir(parents=True)
    (run / "checkpoints").symlink_to(disk)
    with pytest.raises(UserError, match=r"checkpoints is a symbolic link .* never follows, replaces or removes"):
        io.remove_all([run / "models", run / "checkpoints"])
    assert (run / "models").is_dir() and (disk / "stage1").is_dir() and (run / "checkpoints").is_symlink()


def test_a_file_or_folder_replaced_whole_is_never_a_link(tmp_path: Path) -> None:
    target = tmp_path / "user.txt"
    target.write_text("keep", encoding="utf-8")
    (tmp_path / "summary.json").symlink_to(target)
    with pytest.raises(UserError, match="symbolic link"):
        io.write_json(tmp_path / "summary.json", {})
    (tmp_path / "tokenizer").symlink_to(tmp_path)
    with pytest.raises(UserError, match="replaces this folder whole"), io.atomic_dir(tmp_path / "tokenizer"):
        pass
    assert target.read_text(encoding="utf-8") == "keep"
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_linked_paper_folder_is_written_through_keeping_other_files(tmp_path: Path) -> None:
    latex = tmp_path / "latex" / "paper"
    latex.mkdir(parents=True)
    (latex / "main.tex").write_text("mine", encoding="utf-8")
    (tmp_path / "paper").symlink_to(latex)
    io.write_folder({"tables/a.tex": b"A", "README.md": b"R"}, tmp_path / "paper")
    assert (tmp_path / "paper").is_symlink() and (latex / "main.tex").read_text(encoding="utf-8") == "mine"
    assert (latex / "tables" / "a.tex").read_bytes() == b"A"
    io.write_folder({"README.md": b"S"}, tmp_path / "plain")  # a plain folder is replaced whole
    io.write_folder({"other.md": b"O"}, tmp_path / "plain")
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["other.md"]


def test_a_planted_log_link_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep", encoding="utf-8")
    (tmp_path / "reproduce.log").symlink_to(target)
    with pytest.raises(UserError, match="symbolic link"):
        io.open_log(tmp_path / "reproduce.log")
    os.mkfifo(tmp_path / "fifo.lock")
    with pytest.raises(UserError, match="not a regular file"):
        io.open_lock(tmp_path / "fifo.lock")  # O_NONBLOCK: a FIFO does not hang the open
    assert target.read_text(encoding="utf-8") == "keep"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EROFS])
def test_a_full_or_unwritable_place_is_one_line_naming_it(code: int) -> None:
    exc = OSError(code, os.strerror(code), "/data/runs/r/checkpoints/x.ckpt")
    line = io.disk_error(exc)
    assert line is not None and line.startswith("/data/runs/r/checkpoints/x.ckpt: ") and "\n" not in line
    wrapped = RuntimeError("writing failed")
    wrapped.__cause__ = exc  # a library's own exception around it
    assert io.disk_error(wrapped) == line
    assert io.disk_error(OSError(errno.ENOENT, "missing", "x")) is None and io.disk_error(ValueError()) is None


# The one reader: what reads a file the package did not just make goes through io.open_input (a regular file of bounded
# size, checked on the open descriptor: a FIFO never hangs). Library loaders (transformers, safetensors) read on their
# own; the checks before them look at the files (is_file) first.
READS = {"read_text", "read_bytes"}
READ_CALLS = {"np": {"load", "memmap"}, "json": {"load"}, "pq": {"ParquetFile", "read_table"}, "gzip": {"open"},
              "pickle": {"load"}}
READ_ALLOWED = {
    ("model/pretrained.py", "source.read_text(encoding='utf-8')"),  # transformers' own source file, in the venv
    ("data/sources.py", "pq.ParquetFile(file)"),  # after open_input(file) checked it
    ("data/shards.py", "np.memmap(path, dtype=DTYPE, mode='r', offset=HEADER_SIZE, shape=(count,))"),  # after checks
    ("data/sources.py", "gzip.open(file, 'rb')"),  # after open_input(file) checked it
}


def _reads(path: Path, rel: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    checked = {item.optional_vars.id for node in ast.walk(tree) if isinstance(node, ast.With) for item in node.items
               if isinstance(item.context_expr, ast.Call) and ast.unparse(item.context_expr.func) == "open_input"
               and isinstance(item.optional_vars, ast.Name)}  # `with open_input(...) as f`: f was checked
    found = []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        func, text = call.func, ast.unparse(call)
        through_reader = any(isinstance(a, ast.Call) and ast.unparse(a.func) in ("open_input", "open_input_text")
                             or isinstance(a, ast.Name) and a.id in checked for a in call.args)
        if isinstance(func, ast.Name):
            bad = func.id == "open"
        elif isinstance(func, ast.Attribute):
            owner = ast.unparse(func.value)
            bad = (func.attr in READS or func.attr in READ_CALLS.get(owner, ())
                   or func.attr == "open" and owner not in ("os", "self") and owner not in READ_CALLS)
            if owner == "os" and func.attr == "open" and "devnull" not in text:
                bad = True
        else:
            bad = False
        if bad and not through_reader and (rel, text) not in READ_ALLOWED | ALLOWED:
            found.append(f"{call.lineno}: {text}")
    return found


def test_the_reader_walker_sees_reads(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import json, numpy as np\nfrom pathlib import Path\nPath('x').read_text()\nopen('x')\n"
                      "np.load('x.npy')\nPath('x').open()\nwith open_input('x') as f:\n    np.load(f)\n"
                      "np.load(open_input('y'))\n", encoding="utf-8")
    assert len(_reads(sample, "sample.py")) == 4


def test_every_read_goes_through_the_reader() -> None:
    found = {rel: reads for path in sorted(PACKAGE.rglob("*.py"))
             if (rel := path.relative_to(PACKAGE).as_posix()) not in WRITERS and (reads := _reads(path, rel))}
    assert not found, found


def test_a_fifo_or_a_huge_file_is_one_line_never_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "summary.json"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="summary.json: a FIFO, not a regular file"):
        io.read_json(fifo)  # would block forever in open() without O_NONBLOCK
    big = tmp_path / "big.json"
    big.write_bytes(b"[" * 2000 + b"]" * 2000)
    with pytest.raises(UserError, match="big.json: 4,000 bytes, more than a file of its kind holds"):
        io.read_json(big, max_bytes=1000)
    with pytest.raises(ValueError, match="nested too deeply"):
        io.read_json(tmp_path / "deep.json") if (tmp_path / "deep.json").write_bytes(
            b"[" * 100_000 + b"]" * 100_000) else None
    with pytest.raises(UserError, match="a folder, not a regular file"):
        io.read_input(tmp_path)
