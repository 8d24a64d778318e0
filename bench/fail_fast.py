"""Seconds from `reproduce <bad setting>` to its one-line error (exit code 2), for every setting of the test table,
side by side with the seconds a valid mini run spends before its first training step (the work a late error
used to waste). Floor: every bad setting fails within 3 s.

    python bench/fail_fast.py [--out results/perf/fail_fast.json]
    python bench/fail_fast.py --smoke   # three settings and the micro recipe's first step (RuBLiMP not checked for
                                        # contamination): seconds; the floor is not judged (only the exit codes);
                                        # written to a temporary file
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce.core.meta import cpu_model  # noqa: E402
from reproduce.core.paths import SOURCE_ROOT  # noqa: E402
from tests.bad_settings import SETTINGS, file_settings  # noqa: E402

FLOOR_S = 3.0
REPRODUCE = str(Path(sys.executable).with_name("reproduce"))


def seconds_to_fail(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    out = subprocess.run([REPRODUCE, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HF_HUB_OFFLINE": "1", **env})  # the hub case reads the local cache only
    return time.perf_counter() - started, out.returncode


def seconds_to_first_step(cwd: Path, overrides: list[str]) -> float:
    """A valid run (the mini recipe, or ``overrides``'), stopped at its first training progress line."""
    started = time.perf_counter()
    proc = subprocess.Popen([REPRODUCE, "run_name=fail_fast_probe", "stages.stage1.print_every_s=0.001", *overrides],
                            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if line.startswith("[stage1] step"):
            break
    elapsed = time.perf_counter() - started
    proc.kill()
    proc.wait()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="default results/perf/fail_fast.json (--smoke: a temporary file)")
    parser.add_argument("--smoke", action="store_true", help="three settings, the micro recipe: checks that it runs")
    args = parser.parse_args()
    out_path = (args.out or (Path(tempfile.gettempdir()) / "fail_fast_smoke.json" if args.smoke
                             else Path("results/perf/fail_fast.json"))).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)  # laid out like the repository: results/published/ present, no run yet
        shutil.copytree(SOURCE_ROOT / "results" / "published", cwd / "results" / "published")
        (cwd / "inputs").mkdir()
        cases = [*SETTINGS[:2], *file_settings(cwd / "inputs")[:1]] if args.smoke else [
            *SETTINGS, *file_settings(cwd / "inputs")]
        rows = []
        for case in cases:
            seconds, code = seconds_to_fail(case.args, cwd, dict(case.env))
            rows.append({"setting": case.name, "seconds": round(seconds, 3), "exit_code": code})
            print(f"{seconds:6.2f} s  exit {code}  {case.name}")
        # the smoke's run checks no RuBLiMP item for contamination (45k of its 47k: most of its seconds before step 1)
        first_step = seconds_to_first_step(cwd, ["experiment=micro", "~contamination.sets.rublimp"] if args.smoke
                                           else [])
    slowest = max(r["seconds"] for r in rows)
    all_two = all(r["exit_code"] == 2 for r in rows)
    ok = (slowest <= FLOOR_S or args.smoke) and all_two  # a smoke run on a busy machine is no timing
    result = {"machine": {"platform": platform.platform(), "cpu": cpu_model(), "cpus": os.cpu_count()},
              "floor_s": FLOOR_S, "slowest_s": round(slowest, 3), "valid_run_first_step_s": round(first_step, 3),
              "all_exit_code_2": all_two, "settings": rows}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{len(rows)} bad settings: slowest {slowest:.2f} s (floor {FLOOR_S:.0f} s), all exit code 2: {all_two}; "
          f"a valid {'micro' if args.smoke else 'mini'} run reaches its first step after {first_step:.1f} s")
    print(f"ratio slowest failure / valid run's first step: {slowest / first_step:.3f}; "
          f"slowest / floor: {slowest / FLOOR_S:.2f} [{'ok' if ok else 'MISSED'}]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
