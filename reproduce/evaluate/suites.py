"""The suites `reproduce eval suite=<name>` runs (reproduce/evaluate/tasks/suites.yaml), and whether their data can
be reached."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import yaml

from reproduce.errors import UserError
from reproduce.evaluate.benchmarks import TASKS_DIR

SUITES_FILE = TASKS_DIR / "suites.yaml"
HUB_HOST = ("huggingface.co", 443)


@dataclass(frozen=True)
class Suite:
    name: str
    tasks: list[str]
    benchmarks: list[str]
    network: bool
    builtin: bool


def load_suite(name: str, only: list[str] | None = None) -> Suite:
    """A suite of reproduce/evaluate/tasks/suites.yaml, narrowed to ``only`` (some of its tasks) when given."""
    suites = yaml.safe_load(SUITES_FILE.read_text(encoding="utf-8"))
    if name not in suites:
        raise UserError(f"eval.suite={name!r}: no such suite; choose one of {', '.join(suites)}")
    entry = suites[name]
    suite = Suite(name, list(entry["tasks"]), list(entry.get("benchmarks", [])), bool(entry.get("network")),
                  bool(entry.get("builtin")))
    if only is not None:
        unknown = [task for task in only if task not in suite.tasks]
        if unknown or not only:
            raise UserError(f"eval.tasks={list(only)}: {', '.join(unknown) or 'empty'} not in suite {name}; choose "
                            f"from {', '.join(suite.tasks)}")
        suite = Suite(name, list(only), suite.benchmarks, suite.network, suite.builtin)
    return suite


def hub_unreachable() -> str | None:
    """Why the Hugging Face Hub cannot be reached (offline variables, or no connection), or None."""
    for variable in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(variable, "").upper() in ("1", "ON", "YES", "TRUE"):
            return f"{variable} is set"
    try:
        socket.create_connection(HUB_HOST, timeout=3).close()
    except OSError as exc:
        return f"huggingface.co cannot be reached ({type(exc).__name__})"
    return None


def check_suite(suite: Suite) -> None:
    """A suite whose data is on the Hub fails at once offline, with the offline alternative."""
    if suite.network and (why := hub_unreachable()):
        raise UserError(f"eval.suite={suite.name} reads its data from the Hugging Face Hub, which is offline here "
                        f"({why}); go online, or use eval.suite=ru_local (the mirrored data)")
