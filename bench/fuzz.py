"""A recorded run of the fuzzer (the cases of tests/fuzz_cases.py, the property of tests/test_fuzz.py): overrides of
any schema key through the console script's composition and pre-flight in this process, a few through the console
script itself, damaged files fed to the readers, and signals at random points of `reproduce prepare` with two
workers. Each case is accepted (the right result), refused with one line, or stopped with one line; a case that
breaks the property is a failure (its text is kept). Floor: at least 1,000 cases, failures 0.

    nice -n 19 python bench/fuzz.py [--cases 1000] [--seed 0] [--out results/perf/fuzz.json]
    python bench/fuzz.py --smoke   # a few cases of each kind but signals, to a temporary file
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce.core.meta import cpu_model, package_metadata  # noqa: E402
from tests.fuzz_cases import (  # noqa: E402
    console_case,
    damage,
    override_argv,
    override_case,
    reader_case,
    schema_keys,
    signal_case,
)
from tests.helpers import micro_overrides, reproduce  # noqa: E402

# shares of --cases by kind: the in-process kinds take most (milliseconds to a second each)
SHARES = {"overrides": 0.15, "damaged files": 0.843, "console script": 0.005, "signals": 0.002}


def run_kind(kind: str, strategy: st.SearchStrategy, case: Callable[[Any], str], n: int,
             seed_value: int) -> dict[str, Any]:
    """``n`` generated cases of one kind (a fixed seed): outcomes counted, failures kept rather than raised."""
    outcomes: Counter = Counter()
    failures: list[str] = []
    if n == 0:
        return {"cases": 0, "outcomes": {}, "seconds": 0, "failures": []}

    @seed(seed_value)
    @settings(max_examples=n, deadline=None, database=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def each(value: Any) -> None:
        try:
            outcomes[case(value)] += 1
        except Exception as exc:  # noqa: BLE001 - every way a case breaks the property is a failure to record
            outcomes["failure"] += 1
            failures.append(f"{value!r:.300}: {type(exc).__name__}: {str(exc)[:600]}")

    started = time.perf_counter()
    each()
    seconds = time.perf_counter() - started
    print(f"{kind}: {sum(outcomes.values())} cases, {dict(outcomes)}, {seconds:.1f} s", flush=True)
    return {"cases": sum(outcomes.values()), "outcomes": dict(outcomes), "seconds": round(seconds, 1),
            "failures": failures[:20]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="default results/perf/fuzz.json (--smoke: a temporary "
                        "file)")
    parser.add_argument("--smoke", action="store_true", help="a few cases of each kind but signals")
    parser.add_argument("--only", choices=sorted(SHARES), default=None, help="one kind of case")
    args = parser.parse_args()
    out_path = (args.out or (Path(tempfile.gettempdir()) / "fuzz_smoke.json" if args.smoke
                             else Path("results/perf/fuzz.json"))).resolve()
    counts = {kind: max(1, round(share * args.cases)) for kind, share in SHARES.items()}
    if args.smoke:
        counts = {"overrides": 6, "damaged files": 20, "console script": 1, "signals": 0}
    if args.only:
        counts = {kind: n if kind == args.only else 0 for kind, n in counts.items()}
    keys = schema_keys()
    started = time.perf_counter()
    kinds: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fresh = lambda: Path(tempfile.mkdtemp(dir=root))  # noqa: E731
        kinds["overrides"] = run_kind("overrides", override_argv(keys), lambda c: override_case(*c, fresh()),
                                      counts["overrides"], args.seed)
        kinds["damaged files"] = run_kind("damaged files", damage(), lambda c: reader_case(*c, root / "files"),
                                          counts["damaged files"], args.seed)
        kinds["console script"] = run_kind("console script", override_argv(keys),
                                           lambda c: console_case(*c, fresh()), counts["console script"], args.seed)
        if counts["signals"]:
            whole = fresh()
            reproduce("prepare", *micro_overrides(whole), "data.workers=2", cwd=whole, timeout=900)
            reference = json.loads(next((whole / "prepared").glob("*/manifest.json")).read_text(encoding="utf-8"))
            signals = st.tuples(st.sampled_from([2, 15]), st.floats(0.0, 12.0), st.booleans())
            kinds["signals"] = run_kind("signals", signals, lambda c: signal_case(fresh(), *c, reference),
                                        counts["signals"], args.seed)
    failures = sum(k["outcomes"].get("failure", 0) for k in kinds.values())
    total = sum(k["cases"] for k in kinds.values())
    result = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "smoke": args.smoke, "seed": args.seed,
              "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(), "python": platform.python_version()},
              "meta": package_metadata(), "command": " ".join(["python", "bench/fuzz.py", *sys.argv[1:]]),
              "cases": total, "seconds": round(time.perf_counter() - started, 1), "failures": failures, "kinds": kinds}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")  # ASCII: cases hold lone surrogates
    ok = failures == 0 and (args.smoke or total >= 1000)
    print(f"{total} cases in {result['seconds']} s, {failures} failures (floor: 1,000 cases, 0 failures) "
          f"[{'ok' if ok else 'MISSED'}]: {out_path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
