"""Training tokens/s and MFU of the package's own GPU path against the best bare loop, side by side in one run.

For each configuration (model, context, micro-batch; 4 accumulation steps, bf16-mixed, dropout as configured):
1. ``package``: the recipe's config (``experiment=rugpt3_<size>_paper trainer=gpu``, so the fast step as configured:
   torch.compile, fused AdamW, the configured loss), the stage's own Lightning Trainer (``stage_trainer``), module
   (``CausalLM``), data module and progress callback, as ``run_stage`` builds them; checkpoints are left out (their
   writes are I/O, not the step) and validation is not due inside the timed steps.
2. ``bare``: a hand-written loop over the same GPT2LMHeadModel: bf16 autocast over fp32 weights, the loss compiled
   with the model, fused AdamW with the same groups and schedule, gradient clipping, no host synchronisation.
Before timing, a correctness check on the device: the fast loss (compiled, chunked) equals the plain eager loss on
the same weights and batch within bf16 tolerance. Prints a table with the card's name last and writes
results/perf/gpu_mfu.json (read by `reproduce plan` for measured MFU).

    python bench/gpu_mfu.py                               # the issue-7 floors: small and large at 1024, large at 2048
    python bench/gpu_mfu.py --configs rugpt3_large:1024:16 --variants trainer.loss=chunked trainer.compile=false
    python bench/gpu_mfu.py --tiny --out /tmp/gpu_mfu.json  # a few steps of a tiny model on the CPU (a smoke run)

On the GPU machine, whose image lacks hydra-core and omegaconf, copy them beside the tree first (pure Python):
``mkdir -p .gpu_site && cp -r .venv/lib/python3.*/site-packages/{hydra,omegaconf,antlr4} .gpu_site/`` and run with
``PYTHONPATH=.gpu_site`` (carry ``.gpu_site``).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce.logs import silence_progress_bars  # noqa: E402

silence_progress_bars()
import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import Subset  # noqa: E402
from transformers import GPT2LMHeadModel  # noqa: E402

from reproduce.arithmetic import flops_per_token  # noqa: E402
from reproduce.compose import compose_config  # noqa: E402
from reproduce.config import RecipeConfig  # noqa: E402
from reproduce.data.sequences import PackedSequences  # noqa: E402
from reproduce.io import write_json  # noqa: E402
from reproduce.meta import package_metadata  # noqa: E402
from reproduce.model import (  # noqa: E402
    CausalLM,
    causal_lm_loss,
    exact_parameters,
    gpt2_config,
    loss_function,
    warmup_cosine,
)
from reproduce.perf import mfu, peak_flops  # noqa: E402
from reproduce.train.progress import ProgressAndCurves  # noqa: E402
from reproduce.train.stage import StageData, stage_trainer  # noqa: E402

ACCUMULATION = 4
FLOOR_CONFIGS = ("rugpt3_large:1024:8", "rugpt3_small:1024:8", "rugpt3_large:2048:4")  # the 45% floor first
TINY = ["trainer=cpu", "trainer.compile=true", "trainer.fused_optimizer=true", "model.n_layer=2", "model.n_embd=64",
        "model.n_head=2", "model.n_positions=128", "tokenizer.vocab_size=512", "model.vocab_size=512"]


@dataclass
class Run:
    model: str
    context: int
    micro_batch: int
    path: str  # package | bare
    variant: list[str]
    tokens_per_second: float
    mfu: float | None
    steps: int
    seconds: float


def recipe(model: str, context: int, micro: int, tiny: bool, variant: list[str]) -> RecipeConfig:
    """The paper recipe of ``model`` with stage 1 at ``context`` and ``micro`` x 4 accumulation on one device."""
    base = TINY if tiny else [f"experiment={model}_paper", "trainer=gpu"]
    return compose_config("reproduce", [*base, f"stages.stage1.context={context}",
                                        f"stages.stage1.micro_batch_size={micro}",
                                        f"stages.stage1.batch_size={micro * ACCUMULATION}", *variant])


def random_tokens(cfg: RecipeConfig, windows: int, seed: int = 0) -> np.ndarray:
    """Uniform random ids (throughput does not depend on their values; never zeros)."""
    context = cfg.stages["stage1"].context
    return np.random.default_rng(seed).integers(0, cfg.model.vocab_size, windows * context + 1).astype(np.uint16)


def fresh_model(cfg: RecipeConfig, device: torch.device) -> GPT2LMHeadModel:
    """The recipe's model, initialised on the device (seconds instead of a minute for 760M parameters on a CPU)."""
    torch.manual_seed(cfg.seed)
    with device:
        return GPT2LMHeadModel(gpt2_config(cfg.model, 1, 2)).train()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepTimer(pl.Callback):
    """The wall time of optimizer steps ``warmup + 1 .. warmup + steps``, synchronised only at the two ends."""

    def __init__(self, warmup: int, steps: int):
        self.warmup, self.steps, self.seconds, self._start = warmup, steps, 0.0, 0.0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, idx: int) -> None:
        if trainer.global_step == self.warmup and not self._start:
            synchronize(pl_module.device)
            self._start = time.perf_counter()
        elif trainer.global_step == self.warmup + self.steps and not self.seconds:
            synchronize(pl_module.device)
            self.seconds = time.perf_counter() - self._start


def package_path(cfg: RecipeConfig, device: torch.device, warmup: int, steps: int) -> float:
    """Seconds for ``steps`` optimizer steps of the package's stage Trainer, after ``warmup`` steps."""
    stage = cfg.stages["stage1"]
    total = warmup + steps
    train = PackedSequences(random_tokens(cfg, total * stage.batch_size), stage.context)
    data = StageData(train, Subset(train, [0]), total * stage.batch_size, cfg.seed, stage.micro_batch_size,
                     stage.batch_size)
    model = fresh_model(cfg, device)
    fpt = flops_per_token(exact_parameters(model.config), cfg.model.n_layer, cfg.model.n_embd, stage.context)
    progress = ProgressAndCurves("stage1", stage.batch_size * stage.context, total, stage.record_every_steps, 1e9, fpt)
    timer = StepTimer(warmup, steps)
    trainer = stage_trainer(stage, cfg.trainer, total, validate_every=total + 1, callbacks=[progress, timer],
                            logger=None)
    trainer.fit(CausalLM(model, stage.optim, total, cfg.trainer), datamodule=data)
    return timer.seconds


def bare_path(cfg: RecipeConfig, device: torch.device, warmup: int, steps: int) -> float:
    """Seconds for ``steps`` optimizer steps of the best hand-written loop, after ``warmup`` steps."""
    stage, o = cfg.stages["stage1"], cfg.stages["stage1"].optim
    model = fresh_model(cfg, device)
    groups = [{"params": [p for p in model.parameters() if p.ndim >= 2], "weight_decay": o.weight_decay},
              {"params": [p for p in model.parameters() if p.ndim < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps, fused=device.type == "cuda")
    total = warmup + steps
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, total, max(1, round(o.warmup_fraction * total)), o.min_lr / o.lr))
    loss_fn = torch.compile(causal_lm_loss)
    ids = torch.randint(1, cfg.model.vocab_size, (4, stage.micro_batch_size, stage.context + 1),
                        generator=torch.Generator().manual_seed(0))
    batches = list(ids.to(device))  # four sets of windows, rotated (random ids, never zeros)
    dtype = torch.bfloat16 if cfg.trainer.precision.startswith("bf16") else None
    start = 0.0
    for step in range(total):
        if step == warmup:
            synchronize(device)
            start = time.perf_counter()
        for micro in range(ACCUMULATION):
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = loss_fn(model, batches[(step * ACCUMULATION + micro) % len(batches)])
            (loss / ACCUMULATION).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    synchronize(device)
    return time.perf_counter() - start


def check_fast_loss(cfg: RecipeConfig, device: torch.device) -> float:
    """Relative difference of the compiled chunked loss (uneven chunks, the gradient-taking path) to the plain eager
    loss, on the same weights and batch; stops the benchmark when it exceeds the dtype's tolerance."""
    model = fresh_model(cfg, device).eval()  # no dropout: both losses see the same activations
    context = cfg.stages["stage1"].context
    batch = torch.randint(1, cfg.model.vocab_size, (2, context + 1), generator=torch.Generator().manual_seed(1))
    batch = batch.to(device)
    dtype = torch.bfloat16 if cfg.trainer.precision.startswith("bf16") else None
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        plain = causal_lm_loss(model, batch).item()
        fast = loss_function("chunked", 500, compile=True)(model, batch).item()
    difference = abs(fast - plain) / abs(plain)
    if not difference < (1e-2 if dtype is not None else 1e-5):
        raise SystemExit(f"fast loss {fast} differs from the plain loss {plain} by {difference:.2e}")
    return difference


def release(device: torch.device) -> None:
    torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def measure(spec: str, variant: list[str], paths: list[str], tiny: bool, warmup: int, steps: int) -> list[Run]:
    model, context, micro = spec.split(":")
    cfg = recipe(model, int(context), int(micro), tiny, variant)
    device = torch.device("cuda" if cfg.trainer.accelerator in ("gpu", "cuda") else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    fpt = flops_per_token(exact_parameters(gpt2_config(cfg.model, 1, 2)), cfg.model.n_layer, cfg.model.n_embd,
                          int(context))
    peak = peak_flops(name, cfg.trainer.precision, tf32=torch.get_float32_matmul_precision() != "highest")
    runs = []
    for path in paths:
        timed = package_path if path == "package" else bare_path
        seconds = timed(cfg, device, warmup, steps)
        rate = steps * cfg.stages["stage1"].batch_size * int(context) / seconds
        runs.append(Run(model, int(context), int(micro), path, variant, rate, mfu(rate, fpt, peak, 1), steps, seconds))
        release(device)
        print(f"{spec} {path} {' '.join(variant)}: {rate:,.0f} tok/s"
              + ("" if runs[-1].mfu is None else f", MFU {100 * runs[-1].mfu:.1f}%"), flush=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(FLOOR_CONFIGS), help="model:context:micro_batch")
    parser.add_argument("--variants", nargs="*", default=[],
                        help="package-path overrides, each timed on its own on the first config")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="a tiny model on the CPU: checks that the script runs")
    parser.add_argument("--out", type=Path, default=Path("results/perf/gpu_mfu.json"))
    args = parser.parse_args()
    torch.set_float32_matmul_precision("high")
    configs = ["tiny:64:4"] if args.tiny else args.configs
    check_cfg = compose_config("reproduce", TINY if args.tiny else [
        "experiment=rugpt3_small_paper", "trainer=gpu", "model.n_layer=2"])  # the loss on the real vocabulary
    device = torch.device("cuda" if check_cfg.trainer.accelerator == "gpu" else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    check = check_fast_loss(check_cfg, device)
    print(f"fast loss check on {name}: relative difference to the plain loss {check:.2e}", flush=True)
    meta = {**package_metadata(), "precision": check_cfg.trainer.precision, "accumulation": ACCUMULATION,
            "warmup_steps": args.warmup, "timed_steps": args.steps, "fast_loss_relative_difference": check}
    runs: list[Run] = []
    timings = [(spec, [], ["package", "bare"]) for spec in configs]
    timings[1:1] = [(configs[0], [override], ["package"]) for override in args.variants]
    for spec, variant, paths in timings:
        runs += measure(spec, variant, paths, args.tiny, args.warmup, args.steps)
        write_json(args.out, {"meta": meta, "device": name, "runs": [vars(r) for r in runs]})  # a timeout keeps these
    print(f"\n{name}, {meta['precision']}, {ACCUMULATION} accumulation steps, {args.steps} timed steps after "
          f"{args.warmup}")
    print(f"{'model':<14}{'context':>8}{'micro':>6}  {'path':<34}{'tok/s':>10}{'MFU':>8}{'vs bare':>9}")
    for r in runs:
        bare = next(b for b in runs if b.path == "bare" and (b.model, b.context, b.micro_batch) ==
                    (r.model, r.context, r.micro_batch))
        label = " ".join([r.path, *r.variant])
        utilisation = "n/a" if r.mfu is None else f"{100 * r.mfu:.1f}%"
        print(f"{r.model:<14}{r.context:>8}{r.micro_batch:>6}  {label:<34}{r.tokens_per_second:>10,.0f}"
              f"{utilisation:>8}{r.tokens_per_second / bare.tokens_per_second:>8.2f}x")
    print(json.dumps({"written": str(args.out)}))


if __name__ == "__main__":
    main()
