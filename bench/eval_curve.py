"""What the benchmarks during training cost: the mini recipe's two stages trained without and with
``eval.during_training`` side by side in one process (stage 1 without, stage 1 with, stage 2 without, stage 2 with,
each variant in its own temporary run folder on the same prepared data), so that the machine's load weighs on both.
Prints the ratio of training times and writes results/perf/eval_curve.json (``overhead``; floor: at most 1.10).

    python bench/eval_curve.py [overrides ...]          # the mini recipe as configured (about twice its training)
    python bench/eval_curve.py --smoke                  # the micro recipe, short stages, two of the three tasks:
                                                        # seconds; a temporary file
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce.core.logs import setup_logging, silence_progress_bars  # noqa: E402

silence_progress_bars()  # before the libraries are imported
from reproduce.commands.data_steps import prepare  # noqa: E402
from reproduce.config.compose import compose_config  # noqa: E402
from reproduce.core import records  # noqa: E402
from reproduce.core.arithmetic import stage_counts  # noqa: E402
from reproduce.core.io import read_json  # noqa: E402
from reproduce.core.meta import cpu_model, run_metadata  # noqa: E402
from reproduce.train.stage import InitFrom, run_stage  # noqa: E402

FLOOR = 1.10  # the bound: training with the in-loop benchmarks at most 10% slower
# 10 steps of 512 tokens a stage: a point every 8 steps and one at the stage's end; RuBLiMP (45 phenomena, most of a
# point's seconds) left out of the points' tasks
SMOKE = ["experiment=micro", "stages.stage1.epochs=0.02", "stages.stage2.epochs=0.02",
         "eval.during_training.tasks=[xwinograd_ru_local,parus_crowd_majority]",
         "eval.during_training.every_tokens=4096", "eval.during_training.limit=1",
         "eval.during_training.validation_tokens=1024"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="default results/perf/eval_curve.json (--smoke: a temporary file)")
    parser.add_argument("--smoke", action="store_true", help="the micro recipe with short stages: checks that it runs")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the recipe (as given to reproduce)")
    args = parser.parse_args()
    out = args.out or (Path(tempfile.gettempdir()) / "eval_curve_smoke.json" if args.smoke
                       else Path("results/perf/eval_curve.json"))
    setup_logging(None, verbose=False)
    with tempfile.TemporaryDirectory(prefix="eval_curve_bench.") as tmp:  # removed however the bench ends
        return measure(args, out, Path(tmp))


def measure(args: argparse.Namespace, out: Path, work: Path) -> int:
    """Both variants' stages in turn; the ratio of their training times written to ``out``."""
    base_overrides = [*(SMOKE if args.smoke else []), *args.overrides, "logger=[]", f"paths.results={work / 'results'}",
                      f"paths.paper={work / 'paper'}"]
    variants = {on: compose_config("reproduce", [*base_overrides, f"paths.runs={work / ('with' if on else 'without')}",
                                                 f"eval.during_training.enabled={str(on).lower()}",
                                                 "run_name=bench"]) for on in (False, True)}
    data = prepare(variants[False])
    rows, seconds, before = [], {False: 0.0, True: 0.0}, (0, 0)
    for name, stage in variants[False].stages.items():
        counts = stage_counts(stage, len(data.shards["train"]), 1)
        row = {"stage": name, "steps": counts.steps}
        for on, cfg in variants.items():
            source = cfg.stages[name].init_from
            init = None if source is None else InitFrom(cfg.layout.model(source), cfg.stages[source].context)
            started = time.perf_counter()
            result = run_stage(name, cfg.stages[name], cfg, data, init, *before)
            wall = time.perf_counter() - started
            seconds[on] += result.seconds
            row["with" if on else "without"] = {"training_seconds": result.seconds, "wall_seconds": wall}
        curve = work / "results" / "bench" / "eval_curve.json"
        row["points"] = len({(p["stage"], p["step"]) for p in read_json(curve)["points"] if p["stage"] == name})
        row["ratio"] = row["with"]["training_seconds"] / row["without"]["training_seconds"]
        print(f"{name}: {row['without']['training_seconds']:.1f} s without, {row['with']['training_seconds']:.1f} s "
              f"with {row['points']} in-training points: {row['ratio']:.3f}x", flush=True)
        rows.append(row)
        before = (before[0] + counts.steps, before[1] + counts.tokens)
    overhead = seconds[True] / seconds[False]
    result = {"meta": run_metadata(variants[True]), "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(),
                                                                "python": platform.python_version()},
              "smoke": args.smoke, "settings": dict(vars(variants[True].eval.during_training)),
              "rows": rows, "seconds_without": seconds[False], "seconds_with": seconds[True],
              "overhead": overhead, "floor": FLOOR}
    records.eval_curve_overhead.write(out, result)
    print(f"training time with / without the in-training benchmarks: {overhead:.3f} (floor: at most {FLOOR}); "
          f"{out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
