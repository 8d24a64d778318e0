"""Training tokens/s of the package's Lightning stage against bare PyTorch loops, side by side in one run.

1. ``run_stage`` (Lightning Trainer, progress, CSV log, the validation and checkpoint at the stage's end) against a
   bare loop over the same model, batch, optimizer, schedule, clipping and precision (floor: ratio >= 0.97), for
   each precision given. The two alternate, the first of each round changing, and the fastest of each counts.
2. The package at each precision against the plain fp32 transformers + PyTorch loop a user would write
   (``model(input_ids, labels=...)``, AdamW).

The model is the mini recipe's (conf/model/mini.yaml, vocabulary 4,096) at stage 1's context and batch, on random ids
(throughput does not depend on their values). Prints the ratios last and writes results/perf/train_throughput.json.

    python bench/train_throughput.py [--steps 150] [--rounds 3] [--precisions 32-true [bf16-mixed]] [--out FILE]
    python bench/train_throughput.py --smoke   # the micro model (conf/experiment/micro.yaml), 4 steps, 1 round:
                                               # seconds; written to a temporary file

The stage's validation and checkpoint at its end take about 0.1 s: 1-2% of a 60-step stage (8 s), nothing over a
real one; 150 steps keep them near 1%. The default CPU configuration trains in fp32 (the same digits on the same CPU
type), so on its own it is the plain loop's speed; the gain comes from bf16-mixed on a CPU with native bf16
(AVX512-BF16 or AMX). Without it, bf16 autocast is emulated and about 40x slower: measure it with few steps into
its own file (--steps 6 --precisions bf16-mixed --out results/perf/train_throughput_bf16.json).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce.core import records  # noqa: E402
from reproduce.core.logs import setup_logging, silence_progress_bars  # noqa: E402
from reproduce.core.meta import cpu_model  # noqa: E402

silence_progress_bars()  # before the libraries are imported
import numpy as np  # noqa: E402
import torch  # noqa: E402
from transformers import GPT2LMHeadModel  # noqa: E402

from reproduce.config.compose import compose_config  # noqa: E402
from reproduce.data.prepared_set import PreparedData  # noqa: E402
from reproduce.data.tokenizer import train_bbpe  # noqa: E402
from reproduce.model.gpt2 import causal_lm_loss, gpt2_config, warmup_cosine  # noqa: E402
from reproduce.train.stage import run_stage  # noqa: E402

AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def batches(tokens: np.ndarray, context: int, batch: int, steps: int, seed: int) -> list[torch.Tensor]:
    """The first ``steps`` batches of windows, in a seeded order (like the stage's)."""
    n = (len(tokens) - 1) // context
    order = np.random.default_rng(seed).permutation(n)[: steps * batch]
    windows = np.stack([tokens[i * context : i * context + context + 1] for i in order]).astype(np.int64)
    return list(torch.from_numpy(windows).split(batch))


def bare_loop(cfg, data: PreparedData, precision: str, steps: int, plain: bool = False) -> float:
    """Tokens/s of a hand-written loop; ``plain``: fp32, transformers' own loss, AdamW defaults, no schedule."""
    stage = cfg.stages["stage1"]
    torch.manual_seed(cfg.seed)
    model = GPT2LMHeadModel(gpt2_config(cfg.model, data.tokenizer.bos_token_id, data.tokenizer.eos_token_id)).train()
    if plain:
        optimizer = torch.optim.AdamW(model.parameters(), lr=stage.optim.lr)
        schedule = None
    else:
        o = stage.optim
        groups = [{"params": [p for p in model.parameters() if p.ndim >= 2], "weight_decay": o.weight_decay},
                  {"params": [p for p in model.parameters() if p.ndim < 2], "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps)
        warmup = max(1, round(o.warmup_fraction * steps))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: warmup_cosine(s, steps, warmup, o.min_lr / o.lr))
    dtype = None if plain else AUTOCAST.get(precision)
    data_batches = batches(data.shards["train"], stage.context, stage.batch_size, steps, cfg.seed)
    started = time.perf_counter()
    for windows in data_batches:
        # no weight-cast cache, as Lightning's autocast: on CPUs it is the faster of the two (1.07x, bf16, mini)
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None, cache_enabled=False):
            if plain:
                loss = model(input_ids=windows[:, :-1], labels=windows[:, :-1]).loss
            else:
                loss = causal_lm_loss(model, windows)
        loss.backward()
        if not plain:
            torch.nn.utils.clip_grad_norm_(model.parameters(), stage.optim.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if schedule is not None:
            schedule.step()
        assert math.isfinite(loss.item())
    return steps * stage.batch_size * stage.context / (time.perf_counter() - started)


def package_stage(cfg, data: PreparedData) -> float:
    """Tokens/s of ``run_stage`` (the Trainer's fit, validating and checkpointing once at the end)."""
    result = run_stage("stage1", cfg.stages["stage1"], cfg, data)
    return result.tokens / result.seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 150; --smoke: 4)")
    parser.add_argument("--precisions", nargs="+", default=["32-true"])
    parser.add_argument("--rounds", type=int, default=None, help="runs of each loop; the fastest counts (default 3; "
                        "--smoke: 1)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default results/perf/train_throughput.json (--smoke: a temporary file)")
    parser.add_argument("--smoke", action="store_true", help="the micro model, a few steps: checks that it runs")
    args = parser.parse_args()
    if args.steps is None:
        args.steps = 4 if args.smoke else 150
    if args.rounds is None:
        args.rounds = 1 if args.smoke else 3
    out_path = (args.out or (Path(tempfile.gettempdir()) / "train_throughput_smoke.json" if args.smoke
                             else Path("results/perf/train_throughput.json"))).resolve()
    base = ["experiment=micro"] if args.smoke else []  # the model and stage 1's context and batch
    setup_logging(None, verbose=False)
    rng = np.random.default_rng(0)
    tokenizer = train_bbpe(["Мороз и солнце; день чудесный!"] * 50, vocab_size=300, min_frequency=1)
    mini = compose_config("reproduce", base)
    context, batch = mini.stages["stage1"].context, mini.stages["stage1"].batch_size
    tokens = rng.integers(0, 4096, size=(args.steps * batch + 8) * context + 1).astype(np.uint16)
    data = PreparedData(Path("."), tokenizer, {"train": tokens, "validation": tokens[: 64 * context + 1]}, {})
    windows = (len(tokens) - 1) // context
    rows, default_precision = [], mini.trainer.precision
    with tempfile.TemporaryDirectory() as tmp:
        for precision in args.precisions:
            def config(name: str, precision: str = precision):
                return compose_config("reproduce", [
                    *base, "model.vocab_size=4096", f"trainer.precision={precision}", f"paths.runs={tmp}",
                    f"run_name={name}", f"stages.stage1.epochs={args.steps * batch / windows}",
                    f"stages.stage1.validate_every_steps={args.steps}", "stages.stage1.validation_windows=8",
                    "stages.stage1.checkpoint_every_tokens=null", "stages.stage1.print_every_s=1000",
                    "eval.during_training.enabled=false", "logger=[csv]"])
            cfg = config(f"bench_{precision}")
            # warm-up: the first steps of a process build kernels and buffers
            bare_loop(cfg, data, precision, min(10, args.steps))
            runs = {"package": [], "bare": []}
            for i in range(args.rounds):  # alternating, each first in turn (a machine's drift favours neither)
                for loop in ("package", "bare") if i % 2 == 0 else ("bare", "package"):
                    runs[loop].append(package_stage(config(f"bench_{precision}_{i}"), data) if loop == "package"
                                      else bare_loop(cfg, data, precision, args.steps))
            lightning, bare = max(runs["package"]), max(runs["bare"])
            rows.append({"precision": precision, "package_tokens_per_s": lightning, "bare_loop_tokens_per_s": bare,
                         "ratio": lightning / bare, "rounds": runs})
            print(f"{precision}: package {lightning:,.0f} tok/s, bare loop {bare:,.0f} tok/s, "
                  f"ratio {lightning / bare:.3f}", flush=True)
        plain = bare_loop(cfg, data, "32-true", args.steps, plain=True)
    print(f"plain fp32 transformers loop: {plain:,.0f} tok/s")
    for row in rows:
        row["package_vs_plain_fp32"] = row["package_tokens_per_s"] / plain
    result = {"machine": {"platform": platform.platform(), "cpu": cpu_model(), "cpus": os.cpu_count(),
                          "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                          "cpu_capability": torch.backends.cpu.get_cpu_capability()},
              "model": f"{'micro' if args.smoke else 'mini'} ({mini.model.n_layer} x {mini.model.n_embd}, vocab 4096), "
                       f"context {context}, "
                       f"batch {batch}", "steps": args.steps, "rows": rows,
              "plain_fp32_loop_tokens_per_s": plain, "default_precision": default_precision}
    records.train_throughput.write(out_path, result)  # fields checked, then written atomically
    for row in rows:
        print(f"ratio package / bare loop at {row['precision']}: {row['ratio']:.3f} (floor 0.97)")
    for row in rows:
        print(f"ratio package at {row['precision']} / plain fp32 loop: {row['package_vs_plain_fp32']:.3f}"
              + (" (the default)" if row["precision"] == default_precision else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
