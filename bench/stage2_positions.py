"""What stage 2 buys at the positions only it trains: stage 2 variants from one run's stage-1 export, side by side.

Each variant trains stage 2 from ``runs/<run>/models/stage1`` on the run's prepared data (into a temporary folder;
the run is not touched), then scores the test blocks at stage 2's context: the mean loss over the first and the
second half of the positions, and the perplexity. The stage-2 floor: the second half's loss lower than
the first's. Prints a table and writes results/perf/stage2_positions.json.

    python bench/stage2_positions.py [--run mini] [--variants keep copy copy,lr=5e-4] [overrides ...]

A variant is ``new_positions`` (keep | copy), optionally with ``,lr=<peak lr>`` and ``,epochs=<stage-2 epochs>``.

    python bench/stage2_positions.py --smoke --run micro experiment=micro paths.runs=... paths.prepared=...
        # one variant (copy) on a micro run: seconds; written to a temporary file
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce.core.logs import setup_logging, silence_progress_bars  # noqa: E402

silence_progress_bars()  # before the libraries are imported
from transformers import GPT2LMHeadModel  # noqa: E402

from reproduce.config.compose import compose_config  # noqa: E402
from reproduce.core.meta import run_metadata  # noqa: E402
from reproduce.data.prepared_set import run_prepared  # noqa: E402
from reproduce.evaluate.perplexity import eval_blocks, model_perplexity, token_byte_lengths  # noqa: E402
from reproduce.train.stage import InitFrom, run_stage  # noqa: E402


def variant_overrides(variant: str) -> list[str]:
    positions, *rest = variant.split(",")
    keys = {"lr": "stages.stage2.optim.lr", "epochs": "stages.stage2.epochs"}
    return [f"stages.stage2.new_positions={positions}"] + [
        f"{keys[k]}={v}" for k, v in (item.split("=", 1) for item in rest)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="mini")
    parser.add_argument("--variants", nargs="+", default=None, help="default keep copy (--smoke: copy)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default results/perf/stage2_positions.json (--smoke: a temporary file)")
    parser.add_argument("--smoke", action="store_true", help="one variant: checks that it runs (give a micro run)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of the run's config (as given to reproduce)")
    args = parser.parse_args()
    args.variants = args.variants or (["copy"] if args.smoke else ["keep", "copy"])
    args.out = args.out or (Path(tempfile.gettempdir()) / "stage2_positions_smoke.json" if args.smoke
                            else Path("results/perf/stage2_positions.json"))
    setup_logging(None, verbose=False)
    base = compose_config("reproduce", [f"run_name={args.run}", *args.overrides])
    data = run_prepared(base)
    init_from = InitFrom(base.layout.model("stage1"), base.stages["stage1"].context)
    context = base.stages["stage2"].context
    blocks = eval_blocks(data.shards["test"], context, base.eval.perplexity.max_tokens)
    byte_lengths = token_byte_lengths(data.tokenizer)
    rows = []
    for variant in args.variants:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = compose_config("reproduce", [f"run_name={args.run}", *args.overrides, *variant_overrides(variant),
                                               f"paths.runs={tmp}", "stages.stage2.print_every_s=1000",
                                               "eval.during_training.enabled=false"])  # the stage alone
            result = run_stage("stage2", cfg.stages["stage2"], cfg, data, init_from)
            model = GPT2LMHeadModel.from_pretrained(result.export_dir)
            row = model_perplexity(model, blocks, context, byte_lengths, base.eval.perplexity.batch_size, None)
        row.pop("nll_by_position")
        rows.append({"variant": variant, "overrides": variant_overrides(variant), "tokens": result.tokens, **row,
                     "second_half_lower": row["nll_positions_second_half"] < row["nll_positions_first_half"]})
        print(f"{variant}: loss at positions 0-{context // 2 - 1} {row['nll_positions_first_half']:.4f}, "
              f"{context // 2}-{context - 1} {row['nll_positions_second_half']:.4f}, "
              f"perplexity {row['perplexity']:.2f}", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": run_metadata(base), "run": args.run, "context": context,
                                    "rows": rows}, indent=2) + "\n", encoding="utf-8")
    for row in rows:
        print(f"second half / first half of the positions, {row['variant']}: "
              f"{row['nll_positions_second_half'] / row['nll_positions_first_half']:.4f} (floor: below 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
