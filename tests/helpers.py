"""What several test files (and bench/probe.py) share: the console script as a subprocess, the micro recipe's
overrides (conf/experiment/micro.yaml with every output under a temporary folder), tiny models built by hand."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from reproduce.config.compose import compose_config
from reproduce.config.schema import ModelConfig
from reproduce.core.paths import CONF_DIR

REPRODUCE = str(Path(sys.executable).with_name("reproduce"))  # the console script of this environment
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
CP1251_WORK = "ruslit/poems/Pushkin/Руслан и Людмила.txt"  # RusLit's one cp1251 file, in the micro manifest
MICRO_MANIFEST = CONF_DIR / "manifests" / "ruslit_micro.tsv"


def run(command: list[str], cwd: Path | None = None, code: int | None = 0, timeout: float = 300,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``command`` offline, its output captured as text; asserts its exit code (``code=None``: any)."""
    out = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                         env={**os.environ, **OFFLINE, **(env or {})})
    if code is not None:
        assert out.returncode == code, (out.stdout[-2000:], out.stderr[-3000:])
    return out


def reproduce(*args: str, cwd: Path, code: int | None = 0, timeout: float = 300,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`reproduce <args>` through the console script in ``cwd``; asserts its exit code (``code=None``: any)."""
    return run([REPRODUCE, *args], cwd=cwd, code=code, timeout=timeout, env=env)


def micro_manifest(path: Path, n_works: int = 24) -> Path:
    """RusLit's manifest cut to its first ``n_works`` Chekhov stories plus the cp1251 poem (24: the committed
    manifests/ruslit_micro.tsv's rows)."""
    lines = (CONF_DIR / "manifests" / "ruslit.tsv").read_text(encoding="utf-8").splitlines()
    header = [line for line in lines if line.startswith(("#", "path\t"))]
    rows = [line for line in lines if line.startswith("ruslit/prose/Chekhov/")][:n_works]
    rows += [line for line in lines if line.startswith(CP1251_WORK)]
    path.write_text("\n".join(header + rows) + "\n", encoding="utf-8")
    return path


def micro_overrides(tmp: Path, run_name: str = "micro") -> list[str]:
    """A whole recipe in seconds (experiment=micro: tiny corpus, vocabulary and model, a few steps per stage);
    every output under ``tmp``."""
    return ["experiment=micro", f"run_name={run_name}", f"paper.runs=[{run_name}]", f"data.cache_dir={tmp / 'cache'}",
            f"paths.results={tmp / 'results'}", f"paths.runs={tmp / 'runs'}", f"paths.paper={tmp / 'paper'}",
            f"paths.prepared={tmp / 'prepared'}"]


def tiny_model_config(vocab_size: int, n_positions: int) -> ModelConfig:
    """The mini model config shrunk to one 32-wide layer, for tests that build a model by hand."""
    return compose_config("reproduce", ["model.n_layer=1", "model.n_embd=32", "model.n_head=2",
                                        f"model.n_positions={n_positions}", f"model.vocab_size={vocab_size}"]).model


def save_tiny_model(folder: Path, mirror: Path, n_positions: int) -> Path:
    """A one-layer GPT-2 with a small BBPE tokenizer trained on Russian text (RuCoLA's sentences), in ``folder``."""
    import torch
    from transformers import GPT2LMHeadModel

    from reproduce.data.tokenizer import train_bbpe
    from reproduce.model.gpt2 import gpt2_config

    with (mirror / "eval" / "rucola" / "in_domain_dev.csv").open(encoding="utf-8", newline="") as f:
        lines = [row["sentence"] for row in csv.DictReader(f)]
    tokenizer = train_bbpe(lines, vocab_size=500, min_frequency=2)
    torch.manual_seed(0)
    GPT2LMHeadModel(gpt2_config(tiny_model_config(len(tokenizer), n_positions), 1, 2)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def signalled(args: list[str], cwd: Path, signum: int, ready: Any, group: bool = True, timeout: float = 300,
              env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """`reproduce <args>` in ``cwd`` stopped by ``signum`` once ``ready()`` is true (polled every 20 ms; a number:
    that many seconds after the console script's entry took the signals): to its whole process group, as a
    terminal's Ctrl-C is, or to it alone. Returns its output and the seconds from the signal to its end; asserts that
    no process of its group outlives it."""
    import signal as _signal
    import time

    process = subprocess.Popen([REPRODUCE, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **OFFLINE, **(env or {})}, start_new_session=True)
    if isinstance(ready, (int, float)):
        while process.poll() is None and not entered(process.pid):
            time.sleep(0.01)
        started = time.perf_counter()
        ready = (lambda: time.perf_counter() - started >= seconds_after) if (seconds_after := ready) else (lambda: True)
    while process.poll() is None and not ready():
        time.sleep(0.02)
    sent = time.perf_counter()
    if process.poll() is None:
        (os.killpg if group else os.kill)(process.pid, signum)
    stdout, stderr = process.communicate(timeout=timeout)
    seconds = time.perf_counter() - sent
    for _ in range(250):  # its workers end with it (the group's leader is gone; its members must follow at once)
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.02)
    else:
        os.killpg(process.pid, _signal.SIGKILL)
        raise AssertionError(f"processes of `reproduce {' '.join(args)}` outlived it ({_signal.Signals(signum).name})")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr), seconds


def entered(pid: int) -> bool:
    """Whether the console script's entry (reproduce/__main__.py) has taken SIGTERM: its first act, before imports."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        caught = next(line for line in status if line.startswith("SigCgt"))
    except (OSError, StopIteration):
        return False
    return bool(int(caught.split()[1], 16) & (1 << 14))  # SIGTERM is signal 15: bit 14


def temporaries(root: Path) -> list[str]:
    """Temporary names (``.<name>.<random>.tmp``, files or folders) left anywhere under ``root``."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.tmp"))
