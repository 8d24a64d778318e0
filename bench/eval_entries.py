"""How often one `reproduce eval model=<tiny model> eval.limit=2` (pre-flight and run, in this process) enters the
modules that know suites and benchmarks: each call of a function of the module from code in another module, counted
with ``sys.setprofile``, and each distinct calling function. A suite resolved once (``resolve_suite``) is entered once
by the pre-flight and once by the run.

Needs the data mirror (../shared/data). Usage: python bench/eval_entries.py [--work /tmp/eval_entries] [--smoke]
(--smoke: one task of the suite, the same entries in seconds)
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from reproduce.cli import main  # noqa: E402
from reproduce.core.paths import default_mirror  # noqa: E402
from tests.helpers import save_tiny_model  # noqa: E402

MODULES = ("suites.py", "benchmarks.py", "inputs.py", "lm_eval_tasks.py")  # of reproduce/evaluate/


def import_libraries() -> None:
    """The libraries an evaluation imports, imported before the profile starts: their import-time code is no entry
    into the package's modules, but run under ``sys.setprofile`` it is most of the smoke's time."""
    import datasets  # noqa: F401
    import hydra  # noqa: F401
    import sklearn.metrics  # noqa: F401
    import torch  # noqa: F401
    from lm_eval import evaluator  # noqa: F401
    from lm_eval.models.huggingface import HFLM  # noqa: F401
    from lm_eval.tasks import TaskManager  # noqa: F401
    from transformers import AutoTokenizer, GPT2LMHeadModel  # noqa: F401


def count_entries(argv: list[str]) -> tuple[collections.Counter, dict[str, set[str]]]:
    """Run the CLI on ``argv``; per module, its entries from other modules and the functions they came from."""
    import_libraries()
    folder = (ROOT / "reproduce" / "evaluate").as_posix()
    entries: collections.Counter = collections.Counter()
    callers: dict[str, set[str]] = collections.defaultdict(set)
    watched: dict[CodeType, str | None] = {}  # per function: its module when one of MODULES (paths parsed once)

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        code = frame.f_code
        if code not in watched:
            path = Path(code.co_filename)
            watched[code] = (path.name if "<" not in code.co_name and path.parent.as_posix() == folder
                             and path.name in MODULES else None)
        module = watched[code]
        caller = frame.f_back
        if module is not None and caller is not None and caller.f_code.co_filename != code.co_filename:
            entries[module] += 1
            callers[module].add(f"{Path(caller.f_code.co_filename).name}:{caller.f_code.co_name}")

    sys.setprofile(profile)
    try:
        main(argv)
    finally:
        sys.setprofile(None)
    return entries, callers


def main_bench() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.mkdtemp(prefix="eval_entries.")))
    parser.add_argument("--smoke", action="store_true",
                        help="one task of the suite (eval.tasks=[parus_crowd_majority])")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if not (args.work / "tiny").is_dir():
        save_tiny_model(args.work / "tiny", default_mirror(), n_positions=256)
    os.chdir(args.work)
    smoke = ["eval.tasks=[parus_crowd_majority]"] if args.smoke else []
    entries, callers = count_entries(["eval", "model=tiny", "eval.limit=2", *smoke])
    for module in MODULES:
        print(f"{module}: {entries[module]} entries from {len(callers[module])} functions "
              f"({', '.join(sorted(callers[module]))})")


if __name__ == "__main__":
    main_bench()
