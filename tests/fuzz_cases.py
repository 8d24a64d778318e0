"""Generated cases for tests/test_fuzz.py and bench/fuzz.py: overrides of any key of the config schema, damaged input
files fed to the readers, and signals at random points. Every case has the same property: it is accepted (the
right result), or refused with one line (the CLI's exit code 2), or stopped by a signal with one line (130/143); no
traceback, nothing written outside the case's folder, nothing half-written, no hang.

Overrides go through the console script's own path in this process (``split_command`` then ``load``: composition
and the whole pre-flight), so hundreds fit in a minute; ``console_case`` runs one through the real console script.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from reproduce.core.errors import UserError, printable
from tests.helpers import OFFLINE, REPRODUCE, micro_overrides, signalled, temporaries

CASE_S = 20  # a reader or a pre-flight that takes longer than this hangs (a FIFO opened for reading, a huge file read)
COMMANDS = ("run", "prepare", "train", "contamination", "plan", "compare", "paper")
GRAMMAR = "=[]{}(),'\"\\$:@~+*?%#!|<>&;` \t"  # Hydra's grammar, quoting and interpolation, and the shell's


class Hang(Exception):
    """A case ran past CASE_S."""


@contextmanager
def deadline(seconds: float = CASE_S):
    """SIGALRM after ``seconds``: a blocking open() or read() is interrupted and the case fails as a hang."""
    def alarm(signum: int, frame: Any) -> None:
        raise Hang(f"over {seconds} s")
    before = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` (links not followed) with its size and mtime."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            info = os.lstat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), root)] = (info.st_size, info.st_mtime_ns)
    return out


def one_line(message: str, where: str) -> None:
    """A refusal's message is one non-empty line (the CLI prints ``error: <message>``)."""
    text = message.strip()
    assert text and "\n" not in text and "Traceback" not in text, f"{where}: not one line: {message[:400]!r}"


# ----------------------------------------------------------------------------------------------- overrides


def _flatten(tree: Any, prefix: str = "") -> list[str]:
    if isinstance(tree, dict) and tree:
        return [k for key, value in tree.items() for k in _flatten(value, f"{prefix}.{key}" if prefix else str(key))]
    return [prefix]


def schema_keys() -> list[str]:
    """Every leaf key of the recipe's config and of plan's and paper's own (composed with their defaults)."""
    from reproduce.config.compose import compose_config

    keys: set[str] = set()
    for name in ("reproduce", "plan", "paper"):
        keys.update(_flatten(dataclasses.asdict(compose_config(name, []))))
    return sorted(k for k in keys if k)


SURROGATES = st.sampled_from(["\udcff", "\udc80abc", "a\udce9b"])  # bytes of an argv that are not UTF-8
SCALARS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["0", "-1", "1e309", "-0", "nan", "inf", "-inf", "1_000", "0x10", "true", "null", "~", "",
                     "2147483648", "4294967296", "9" * 40, "0.5", "1e-320"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(GRAMMAR), max_size=24),
    st.text(alphabet="абвгдеёжзАБВ xyz/._-", min_size=1, max_size=12).map(lambda s: f"'{s}'"),
    SURROGATES,
    st.integers(300, 5000).map(lambda n: "x" * n),  # long
    st.sampled_from(["${seed}", "${nosuch}", "${oc.env:HOME}", "${oc.env:NOSUCH}", "${now:%Y}", "${", "'${seed}'",
                     "\\", "'", '"', "'a", "[", "]", "{", "}", "{a: 1}", "[1,[2]]", "[[[[]]]]", "a,b", "glob(*)",
                     "range(0,3)", "choice(1,2)", "int(3)", "/etc/passwd", "../..", "~/x", "/dev/zero", "/proc/self",
                     "\x00", "a\nb", "\u202e", "\ufeffx", "\u0000"]),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]"),
                      max_leaves=6)


@st.composite
def override_argv(draw: st.DrawFn, keys: list[str]) -> list[str]:
    """A command, the micro recipe's overrides (outputs under the case's folder; appended by the caller), and one to
    three generated overrides: a key of the schema (or a near miss, a group, an append/delete) with any value."""
    command = draw(st.sampled_from(COMMANDS))
    generated = []
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(keys) | st.sampled_from(["model", "data", "trainer", "stage", "experiment",
                                                            "tokenizer", "eval", "paper", "hydra.run.dir"])
                   | st.sampled_from(keys).map(lambda k: k + "x") | st.sampled_from(keys).map(lambda k: k.upper()))
        form = draw(st.sampled_from(["{k}={v}"] * 6 + ["+{k}={v}", "++{k}={v}", "~{k}", "{k}", "{k}=={v}",
                                                        "{k}.x={v}"]))
        generated.append(form.format(k=key, v=draw(VALUES)))
    return [] if command == "run" else [command], generated


def override_case(command: list[str], generated: list[str], root: Path) -> str:
    """The console script's composition and pre-flight, in this process; 'accepted' or 'refused'."""
    from reproduce.cli import split_command
    from reproduce.commands.preflight import load

    before = snapshot(root)
    argv = [*command, *micro_overrides(root), *generated]
    try:
        with deadline():
            cmd, args = split_command(argv)
            load(cmd, args)
        outcome = "accepted"
    except UserError as exc:
        one_line(printable(exc), " ".join(generated))  # as the CLI prints it
        outcome = "refused"
    assert snapshot(root) == before, f"{' '.join(generated)}: the pre-flight wrote files"
    return outcome


def console_case(command: list[str], generated: list[str], root: Path) -> str:
    """The same through the real console script (``--cfg job``: composed and printed, nothing run)."""
    argv = [*command, "--cfg", "job", *micro_overrides(root), *generated]
    out = subprocess.run([REPRODUCE, *argv], cwd=root, capture_output=True, timeout=120,
                         env={**os.environ, **OFFLINE})
    stderr = out.stderr.decode("utf-8", "replace")
    assert "Traceback" not in stderr, f"{generated}: {stderr[-1500:]}"
    assert out.returncode in (0, 2), f"{generated}: exit {out.returncode}: {stderr[-600:]}"
    if out.returncode == 2:
        one_line(stderr, " ".join(generated))
        assert stderr.startswith("error: "), stderr
    return "accepted" if out.returncode == 0 else "refused"


# ----------------------------------------------------------------------------------------------- damaged files


def _summary() -> bytes:
    from reproduce.core.paths import SOURCE_ROOT

    return (SOURCE_ROOT / "results" / "mini" / "summary.json").read_bytes()


def _manifest() -> bytes:
    from reproduce.core.paths import CONF_DIR

    return (CONF_DIR / "manifests" / "ruslit_micro.tsv").read_bytes()


def _model_config() -> bytes:
    return json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_positions": 64, "n_embd": 32,
                       "n_layer": 1, "n_head": 2, "vocab_size": 300}).encode()


def _shard() -> bytes:
    import tempfile

    import numpy as np

    from reproduce.data.shards import write_shard

    with tempfile.TemporaryDirectory() as tmp:
        write_shard(Path(tmp) / "s.bin", np.arange(200, dtype=np.uint16) % 300, 300)
        return (Path(tmp) / "s.bin").read_bytes()


def _read_summary(path: Path) -> Any:
    from reproduce.core import records

    return records.summary.read(path)


def _read_reference(path: Path) -> Any:
    from reproduce.recipe.compare import _summary_file

    getattr(_summary_file, "cache_clear", lambda: None)()  # a file damaged anew is read anew
    return _summary_file(path, "compare.reference")


def _read_manifest(path: Path) -> Any:
    from reproduce.data.manifest import read_manifest

    return read_manifest(path)


def _read_model(path: Path) -> Any:
    from reproduce.model.pretrained import check_causal_lm

    return check_causal_lm("model", str(path.parent))


def _read_shard(path: Path) -> Any:
    from reproduce.data.shards import read_shard

    return read_shard(path, 300)


# name -> (file name, whole content, the reader: returns, or raises UserError)
READERS: dict[str, tuple[str, Callable[[], bytes], Callable[[Path], Any]]] = {
    "results record": ("summary.json", _summary, _read_summary),
    "compare reference": ("summary.json", _summary, _read_reference),
    "source manifest": ("manifest.tsv", _manifest, _read_manifest),
    "model folder": ("config.json", _model_config, _read_model),
    "prepared shard": ("shard-000.bin", _shard, _read_shard),
}
DAMAGES = ("truncated", "bit-flipped", "wrong JSON type", "deeply nested", "not UTF-8", "BOM", "NUL bytes", "empty",
           "huge", "FIFO", "folder", "dangling link", "link loop", "link to a device", "unreadable")


@st.composite
def damage(draw: st.DrawFn) -> tuple[str, str, int, int]:
    """(reader, damage, a position, a count): what to break where."""
    return (draw(st.sampled_from(sorted(READERS))), draw(st.sampled_from(DAMAGES)), draw(st.integers(0, 1 << 20)),
            draw(st.integers(1, 64)))


def _damage(path: Path, whole: bytes, how: str, at: int, count: int) -> None:
    if how == "truncated":
        path.write_bytes(whole[: at % max(len(whole), 1)])
    elif how == "bit-flipped":
        data = bytearray(whole)
        for i in range(count):
            data[(at + i * 7919) % len(data)] ^= 1 << (i % 8)
        path.write_bytes(bytes(data))
    elif how == "wrong JSON type":
        path.write_text(json.dumps([[], "x", 1, None, {"a": []}, 1.5][count % 6]), encoding="utf-8")
    elif how == "deeply nested":
        depth = 1000 + at % 200_000
        path.write_text("[" * depth + "]" * depth if count % 2 else '{"a":' * depth + "1" + "}" * depth)
    elif how == "not UTF-8":
        path.write_bytes(whole[: at % len(whole)] + b"\xff\xfe\xc3" + whole[at % len(whole):])
    elif how == "BOM":
        path.write_bytes(b"\xef\xbb\xbf" + whole)
    elif how == "NUL bytes":
        path.write_bytes(whole[: at % len(whole)] + b"\x00" * count + whole[at % len(whole):])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "huge":  # sparse: a reader must refuse it by its size, not read it
        with path.open("wb") as f:
            f.write(whole)
            f.truncate((4 << 30) + at)
    elif how == "FIFO":
        os.mkfifo(path)
    elif how == "folder":
        path.mkdir()
    elif how == "dangling link":
        path.symlink_to(path.with_name("nosuch"))
    elif how == "link loop":
        path.symlink_to(path)
    elif how == "link to a device":
        path.symlink_to("/dev/zero")
    elif how == "unreadable":
        path.write_bytes(whole)
        path.chmod(0)


def reader_case(reader: str, how: str, at: int, count: int, root: Path) -> str:
    """``reader`` on its file damaged ``how``: 'accepted' or 'refused' (one line), within CASE_S, nothing written."""
    name, whole, read = READERS[reader]
    folder = root / f"{reader.replace(' ', '_')}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    elif path.is_symlink() or path.exists():
        path.unlink()
    _damage(path, whole(), how, at, count)
    before = snapshot(root)
    try:
        with deadline():
            read(path)
        outcome = "accepted"
    except UserError as exc:
        one_line(str(exc), f"{reader}, {how}")
        outcome = "refused"
    assert snapshot(root) == before, f"{reader}, {how}: the reader wrote files"
    return outcome


# ----------------------------------------------------------------------------------------------- signals


def signal_case(root: Path, signum: int, delay: float, group: bool, reference: dict[str, Any]) -> str:
    """``reproduce prepare`` (two workers) stopped ``delay`` seconds after its entry; then run again: the prepared
    set's manifest is ``reference``'s. 'stopped' or 'finished' (the signal came after the end)."""
    args = ["prepare", *micro_overrides(root), "data.workers=2"]
    out, seconds = signalled(args, root, signum, delay, group=group)
    where = f"{signal.Signals(signum).name} at {delay:.2f} s"
    assert "Traceback" not in out.stdout + out.stderr, f"{where}: {out.stderr[-2000:]}"
    assert out.returncode in (0, 128 + signum), f"{where}: exit {out.returncode}: {out.stderr[-600:]}"
    if out.returncode:
        one_line(out.stderr, where)
        assert out.stderr.startswith("stopped: "), out.stderr
        assert seconds < 15, f"{where}: stopped {seconds:.1f} s after the signal"
    assert temporaries(root) == [], f"{where}: left {temporaries(root)}"
    subprocess.run([REPRODUCE, *args], cwd=root, check=True, capture_output=True, timeout=600,
                   env={**os.environ, **OFFLINE})
    manifest = json.loads(next((root / "prepared").glob("*/manifest.json")).read_text(encoding="utf-8"))
    assert manifest == reference, f"{where}: the rerun's prepared set differs"
    return "stopped" if out.returncode else "finished"
