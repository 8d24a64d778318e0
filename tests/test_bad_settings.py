"""Every bad setting fails before any work: exit code 2, one line naming the key or file, no traceback, and no new
file anywhere under the working directory (results/, runs/, paper/).

A setting runs in this process through the console script's own function, ``reproduce.cli.main``, with what a
process of its own would start with (the working folder, its environment, the warning filters of a fresh interpreter)
and what main() could leave behind checked and put back, so that no setting sees another's. One whose check depends
on the process itself, and a few that take the console script end to end, start it (``Case.own_process`` says why).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import warnings
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from reproduce.cli import main
from reproduce.core.logs import _QUIET
from reproduce.core.paths import SOURCE_ROOT
from tests.bad_settings import END_TO_END, SETTINGS, Case, file_settings
from tests.helpers import OFFLINE, REPRODUCE, reproduce

pytestmark = pytest.mark.slow  # the table's settings, a dozen of them through the console script
# variables a module reads once, when imported: a setting that sets one runs in a process of its own
READ_AT_IMPORT = {"HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "REPRODUCE_TASKS_DIR"}
# the switches main() sets for the libraries it imports (reproduce.core.logs.silence_progress_bars): put back after
SILENCED = {"TQDM_DISABLE", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"}
# the warning filters of a fresh interpreter without -W or PYTHONWARNINGS: what it would print as a line on stderr
FRESH_FILTERS = (("default", DeprecationWarning, "__main__"), ("ignore", DeprecationWarning, ""),
                 ("ignore", PendingDeprecationWarning, ""), ("ignore", ImportWarning, ""),
                 ("ignore", ResourceWarning, ""))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A working folder laid out like the repository: results/published/ present, no run yet."""
    root = tmp_path_factory.mktemp("bad_settings")
    shutil.copytree(SOURCE_ROOT / "results" / "published", root / "results" / "published")
    return root


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _state() -> dict[str, object]:
    """What main() could change in this process for the settings after it."""
    return {"environ": dict(os.environ), "argv": sys.argv, "cwd": os.getcwd(),
            "signals": {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)},
            "root handlers": list(logging.getLogger().handlers), "root level": logging.getLogger().level,
            "loggers": _loggers(), "hydra initialized": GlobalHydra.instance().is_initialized()}


def _loggers() -> dict[str, tuple[list[logging.Handler], int, bool]]:
    """The loggers reproduce.core.logs.setup_logging configures (ours, the libraries' it quiets): handlers, level,
    propagation."""
    return {name: (list(logger.handlers), logger.level, logger.propagate)
            for name in ("reproduce", *_QUIET) for logger in [logging.getLogger(name)]}


def _put_back(loggers: dict[str, tuple[list[logging.Handler], int, bool]]) -> None:
    """The loggers as they were: a command that fails after setup_logging has configured them for its process."""
    for name, (handlers, level, propagate) in loggers.items():
        logger = logging.getLogger(name)
        for handler in [h for h in logger.handlers if h not in handlers]:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(level)
        logger.propagate = propagate


def _in_process(case: Case, cwd: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
                caplog: pytest.LogCaptureFixture) -> tuple[object, str, str]:
    """(exit code, stdout, stderr) of ``main(case.args)`` here, as the console script in ``cwd`` with the setting's
    environment. What a process of its own would also print (a warning, a log record) fails the setting, and so does
    any state left changed but the loggers of setup_logging and the switches of silence_progress_bars (put back)."""
    with monkeypatch.context() as patch:  # the working folder, the environment and sys.argv put back after it
        patch.chdir(cwd)
        for key, value in {**OFFLINE, "REPRODUCE_CACHE": str(cwd / "cache"), **dict(case.env)}.items():
            patch.setenv(key, value)
        patch.setattr(sys, "argv", [REPRODUCE, *case.args])
        before = _state()
        capfd.readouterr()
        caplog.clear()
        try:
            with warnings.catch_warnings(record=True) as caught, pytest.raises(SystemExit) as exited:
                warnings.resetwarnings()
                for action, category, module in FRESH_FILTERS:
                    warnings.filterwarnings(action, category=category, module=module, append=True)
                main(list(case.args))
        finally:
            after = _state()
            os.environ.clear()
            os.environ.update(before["environ"])
            _put_back(before["loggers"])
        out, err = capfd.readouterr()
    environ = {key for key in before["environ"].keys() | after["environ"].keys()
               if before["environ"].get(key) != after["environ"].get(key)}
    assert environ <= SILENCED, sorted(environ - SILENCED)
    kept = {"environ", "loggers"}
    assert {k: v for k, v in after.items() if k not in kept} == {k: v for k, v in before.items() if k not in kept}
    # shown on stderr by a process of its own: a record of a logger at its level (logging's last resort, or the
    # library's own handler), a warning its filters do not ignore
    assert not [f"{r.name}: {r.getMessage()}" for r in caplog.records]
    assert not [str(w.message) for w in caught]
    return exited.value.code, out, err


def _fails_cleanly(case: Case, cwd: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
                   caplog: pytest.LogCaptureFixture) -> None:
    if case.needs_no_gpu and torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the setting is valid here")
    assert case.own_process or not dict(case.env).keys() & READ_AT_IMPORT, f"{case.name}: set its own_process"
    before = _files(cwd)
    if case.own_process:
        out = reproduce(*case.args, cwd=cwd, code=None, timeout=60,
                        env={"REPRODUCE_CACHE": str(cwd / "cache"), **dict(case.env)})
        code, stdout, stderr = out.returncode, out.stdout, out.stderr
    else:
        code, stdout, stderr = _in_process(case, cwd, monkeypatch, capfd, caplog)
    assert code == 2, (code, stderr[-2000:])
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[-2000:]
    assert case.message in lines[0], lines[0]
    assert "Traceback" not in stderr and stdout == ""
    assert _files(cwd) == before  # nothing created: no results/, runs/, paper/, cache or temporary file


@pytest.mark.parametrize("case", SETTINGS, ids=[c.name for c in SETTINGS])
def test_bad_setting_fails_before_any_work(case: Case, workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                           capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    _fails_cleanly(case, workdir, monkeypatch, capfd, caplog)


def test_bad_files_fail_before_any_work(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                        capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    inputs = workdir / "inputs"
    inputs.mkdir(exist_ok=True)
    for case in file_settings(inputs):
        _fails_cleanly(case, workdir, monkeypatch, capfd, caplog)


def test_each_way_of_refusing_is_also_taken_through_the_console_script() -> None:
    """A config check, a sweep's check and Hydra's flags: each in a setting that starts the console script."""
    own = [case for case in SETTINGS if case.own_process == END_TO_END]
    assert {"-m", "--foo"} <= {arg for case in own for arg in case.args}
    assert any(not case.args[0].startswith("-") for case in own)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_results_folder(workdir: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
                                  caplog: pytest.LogCaptureFixture) -> None:
    locked = workdir / "locked"
    locked.mkdir(exist_ok=True)
    locked.chmod(0o555)
    try:
        _fails_cleanly(Case("read-only results", [f"paths.results={locked}"], "is not writable"), workdir,
                       monkeypatch, capfd, caplog)
    finally:
        locked.chmod(0o755)
