"""Training tokens/s and MFU of the package's own GPU path against the best bare loop, side by side in one run.

For each configuration (model, context, micro-batch; 4 accumulation steps, bf16-mixed, dropout as configured):
1. ``package``: the recipe's config (``experiment=rugpt3_<size>_paper trainer=gpu``, so the fast step as configured:
   torch.compile, fused AdamW, the configured loss), the stage's own Lightning Trainer (``stage_trainer``), module
   (``CausalLM``), data module and progress callback, as ``run_stage`` builds them; checkpoints are left out (their
   writes are I/O, not the step) and validation is not due inside the timed steps.
2. ``bare``: a hand-written loop over the same GPT2LMHeadModel (the configured attention kernel and vocabulary
   padding): bf16 autocast over fp32 weights, the loss compiled with the model, fused AdamW with the same groups and
   schedule, gradient clipping, no host synchronisation.
After the timed steps of the package's path, one more optimizer step runs under torch.profiler: the names of the
attention ops and kernels that ran (flash, memory-efficient or cuDNN) go beside the run.
Before timing, a correctness check on the device: the fast loss (compiled, chunked) equals the plain eager loss on
the same weights and batch within bf16 tolerance. Prints a table with the card's name last and writes
results/perf/gpu_mfu.json after every run (read by `reproduce plan` for measured MFU).

    python bench/gpu_mfu.py                               # the issue-7 floors: small and large at 1024, large at 2048
    python bench/gpu_mfu.py --configs rugpt3_large:1024:16 --variants trainer.loss=chunked trainer.compile=false
    python bench/gpu_mfu.py --opt-in model.attn_pdrop=0.125 --budget-s 200   # recipe changes; a time budget
    python bench/gpu_mfu.py --tiny --out /tmp/gpu_mfu.json  # a few steps of a tiny model on the CPU, compiled
    python bench/gpu_mfu.py --smoke    # --tiny without compiling, 2 steps: seconds; written to a temporary file

On the GPU machine, whose image lacks hydra-core and omegaconf, run it through bench/gpu_check.sh (part a), which
unpacks the offline bundle of bench/gpu_bundle.py (docs/gpus.md, "The GPU check").
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce.core.logs import silence_progress_bars  # noqa: E402

silence_progress_bars()
import numpy as np  # noqa: E402
import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import Subset  # noqa: E402
from transformers import GPT2LMHeadModel  # noqa: E402

from reproduce.config.compose import compose_config  # noqa: E402
from reproduce.config.schema import RecipeConfig  # noqa: E402
from reproduce.core import records  # noqa: E402
from reproduce.core.arithmetic import flops_per_token  # noqa: E402
from reproduce.core.meta import package_metadata  # noqa: E402
from reproduce.core.perf import mfu, peak_flops  # noqa: E402
from reproduce.data.sequences import PackedSequences  # noqa: E402
from reproduce.model.gpt2 import (  # noqa: E402
    CausalLM,
    causal_lm_loss,
    exact_parameters,
    gpt2_config,
    loss_function,
    pad_vocabulary,
    warmup_cosine,
)
from reproduce.train.progress import ProgressAndCurves  # noqa: E402
from reproduce.train.stage import StageData, stage_trainer  # noqa: E402

ACCUMULATION = 4
FLOOR_CONFIGS = ("rugpt3_large:1024:8", "rugpt3_small:1024:8", "rugpt3_large:2048:4")  # the 45% floor first
TINY = ["trainer=cpu", "trainer.compile=true", "trainer.fused_optimizer=true", "model.n_layer=2", "model.n_embd=64",
        "model.n_head=2", "model.n_positions=128", "tokenizer.vocab_size=500", "model.vocab_size=500",
        "model.pad_vocab_multiple=64", "model.attn_implementation=sdpa_causal"]  # the GPU recipe's levers, tiny
PROFILED_STEPS = 1  # optimizer steps under torch.profiler after the timed ones (the package's path)
ATTENTION_WORDS = ("scaled_dot_product", "attention", "flash", "fmha", "sdpa")  # in the ops' and kernels' names


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
    wall_seconds: float  # the whole measurement: building, compiling, warmup, timed and profiled steps
    opt_in: bool = False  # the variant changes the recipe (e.g. its dropout): listed, never a default
    attention_kernels: list[str] = field(default_factory=list)  # ops and kernels of the profiled step (package)


def recipe(model: str, context: int, micro: int, variant: list[str], extra: tuple[str, ...] = ()) -> RecipeConfig:
    """The paper recipe of ``model`` (``tiny``: TINY) with stage 1 at ``context`` and ``micro`` x 4 accumulation on
    one device; ``extra``: overrides under every run (before the variant's)."""
    base = TINY if model == "tiny" else [f"experiment={model}_paper", "trainer=gpu"]
    return compose_config("reproduce", [*base, *extra, f"stages.stage1.context={context}",
                                        f"stages.stage1.micro_batch_size={micro}",
                                        f"stages.stage1.batch_size={micro * ACCUMULATION}", *variant])


def random_tokens(cfg: RecipeConfig, windows: int, seed: int = 0) -> np.ndarray:
    """Uniform random ids (throughput does not depend on their values; never zeros)."""
    context = cfg.stages["stage1"].context
    return np.random.default_rng(seed).integers(0, cfg.model.vocab_size, windows * context + 1).astype(np.uint16)


def fresh_model(cfg: RecipeConfig, device: torch.device) -> GPT2LMHeadModel:
    """The recipe's model as run_stage trains it (vocabulary padded), initialised on the device (seconds instead of a
    minute for 760M parameters on a CPU)."""
    torch.manual_seed(cfg.seed)
    with device:
        model = GPT2LMHeadModel(gpt2_config(cfg.model, 1, 2)).train()
    pad_vocabulary(model, cfg.model.pad_vocab_multiple)
    return model


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


def is_attention(name: str) -> bool:
    """An attention op or kernel that says which kernel ran (not the dispatching op, not autograd's nodes)."""
    generic = name == "aten::scaled_dot_product_attention" or name.startswith("autograd::") \
        or name.endswith("Backward0")
    return not generic and any(word in name.lower() for word in ATTENTION_WORDS)


class AttentionKernels(pl.Callback):
    """The attention ops and kernels (names holding one of ``ATTENTION_WORDS``) of optimizer steps ``start + 1 ..
    start + steps``, read from torch.profiler: e.g. aten::_scaled_dot_product_flash_attention and flash_fwd_kernel,
    or the memory-efficient fmha_cutlass kernels, or cuDNN's."""

    def __init__(self, start: int, steps: int):
        self.start, self.steps, self.names = start, steps, []
        self._profile: torch.profiler.profile | None = None

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Any, batch: Any, idx: int) -> None:
        if self._profile is None and trainer.global_step == self.start:
            activities = [torch.profiler.ProfilerActivity.CPU]
            if pl_module.device.type == "cuda":
                activities.append(torch.profiler.ProfilerActivity.CUDA)
            self._profile = torch.profiler.profile(activities=activities)
            self._profile.__enter__()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, idx: int) -> None:
        if self._profile is not None and not self.names and trainer.global_step == self.start + self.steps:
            synchronize(pl_module.device)
            self._profile.__exit__(None, None, None)
            self.names = sorted({event.key[:160] for event in self._profile.key_averages() if is_attention(event.key)})


def package_path(cfg: RecipeConfig, device: torch.device, warmup: int, steps: int) -> tuple[float, list[str]]:
    """Seconds for ``steps`` optimizer steps of the package's stage Trainer, after ``warmup`` steps; and the attention
    ops and kernels of one more step."""
    stage = cfg.stages["stage1"]
    total = warmup + steps + PROFILED_STEPS
    train = PackedSequences(random_tokens(cfg, total * stage.batch_size), stage.context)
    data = StageData(train, Subset(train, [0]), total * stage.batch_size, cfg.seed, stage.micro_batch_size,
                     stage.batch_size)
    fpt = flops_per_token(exact_parameters(gpt2_config(cfg.model, 1, 2)), cfg.model.n_layer, cfg.model.n_embd,
                          stage.context)
    model = fresh_model(cfg, device)
    progress = ProgressAndCurves("stage1", stage.batch_size * stage.context, total, stage.record_every_steps, 1e9, fpt)
    timer, kernels = StepTimer(warmup, steps), AttentionKernels(warmup + steps, PROFILED_STEPS)
    trainer = stage_trainer(stage, cfg.trainer, total, validate_every=total + 1,
                            callbacks=[progress, timer, kernels], logger=None)
    trainer.fit(CausalLM(model, stage.optim, total, cfg.trainer, cfg.model.vocab_size), datamodule=data)
    return timer.seconds, kernels.names


def bare_path(cfg: RecipeConfig, device: torch.device, warmup: int, steps: int) -> tuple[float, list[str]]:
    """Seconds for ``steps`` optimizer steps of the best hand-written loop, after ``warmup`` steps (compiled as the
    config compiles)."""
    stage, o = cfg.stages["stage1"], cfg.stages["stage1"].optim
    model = fresh_model(cfg, device)
    groups = [{"params": [p for p in model.parameters() if p.ndim >= 2], "weight_decay": o.weight_decay},
              {"params": [p for p in model.parameters() if p.ndim < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps, fused=device.type == "cuda")
    total = warmup + steps
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, total, max(1, round(o.warmup_fraction * total)), o.min_lr / o.lr))
    loss_fn = functools.partial(causal_lm_loss, vocab=cfg.model.vocab_size)
    loss_fn = torch.compile(loss_fn, mode=cfg.trainer.compile_mode) if cfg.trainer.compile else loss_fn
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
    return time.perf_counter() - start, []


def check_fast_loss(cfg: RecipeConfig, device: torch.device) -> float:
    """Relative difference of the chunked loss (uneven chunks, the gradient-taking path; compiled as the config
    compiles) to the plain eager loss, on the same weights and batch; stops the benchmark when it exceeds the dtype's
    tolerance."""
    model = fresh_model(cfg, device).eval()  # no dropout: both losses see the same activations
    context = cfg.stages["stage1"].context
    batch = torch.randint(1, cfg.model.vocab_size, (2, context + 1), generator=torch.Generator().manual_seed(1))
    batch = batch.to(device)
    dtype = torch.bfloat16 if cfg.trainer.precision.startswith("bf16") else None
    vocab = cfg.model.vocab_size  # the model's rows past it are padding
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        plain = causal_lm_loss(model, batch, vocab).item()
        fast = loss_function("chunked", 500, cfg.trainer.compile, vocab)(model, batch).item()
    difference = abs(fast - plain) / abs(plain)
    if not difference < (1e-2 if dtype is not None else 1e-5):
        raise SystemExit(f"fast loss {fast} differs from the plain loss {plain} by {difference:.2e}")
    return difference


def release(device: torch.device) -> None:
    torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def measure(spec: str, variant: list[str], paths: list[str], warmup: int, steps: int, opt_in: bool = False,
            extra: tuple[str, ...] = ()) -> list[Run]:
    model, context, micro = spec.split(":")
    cfg = recipe(model, int(context), int(micro), variant, extra)
    device = torch.device("cuda" if cfg.trainer.accelerator in ("gpu", "cuda") else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    fpt = flops_per_token(exact_parameters(gpt2_config(cfg.model, 1, 2)), cfg.model.n_layer, cfg.model.n_embd,
                          int(context))
    peak = peak_flops(name, cfg.trainer.precision, tf32=torch.get_float32_matmul_precision() != "highest")
    runs = []
    for path in paths:
        started = time.perf_counter()
        timed = package_path if path == "package" else bare_path
        seconds, kernels = timed(cfg, device, warmup, steps)
        rate = steps * cfg.stages["stage1"].batch_size * int(context) / seconds
        runs.append(Run(model, int(context), int(micro), path, variant, rate, mfu(rate, fpt, peak, 1), steps, seconds,
                        time.perf_counter() - started, opt_in, kernels))
        release(device)
        print(f"{spec} {path} {' '.join(variant)}: {rate:,.0f} tok/s"
              + ("" if runs[-1].mfu is None else f", MFU {100 * runs[-1].mfu:.1f}%")
              + (f"; attention: {', '.join(kernels)}" if kernels else ""), flush=True)
    return runs


def bench(configs: list[str], variants: list[str], opt_in: list[str], out: Path, steps: int = 10, warmup: int = 3,
          budget_s: float | None = None, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Time each config (package path and bare loop), then each variant and opt-in on the first config (package
    path), after the fast-loss check; ``out`` is rewritten after every measurement. Returns what it wrote."""
    torch.set_float32_matmul_precision("high")
    tiny = configs[0].startswith("tiny:")
    check_cfg = compose_config("reproduce", [*TINY, *extra] if tiny else [
        "experiment=rugpt3_small_paper", "trainer=gpu", "model.n_layer=2"])  # the loss on the real vocabulary
    device = torch.device("cuda" if check_cfg.trainer.accelerator == "gpu" else "cpu")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    check = check_fast_loss(check_cfg, device)
    print(f"fast loss check on {name}: relative difference to the plain loss {check:.2e}", flush=True)
    meta = {**package_metadata(), "precision": check_cfg.trainer.precision, "accumulation": ACCUMULATION,
            "warmup_steps": warmup, "timed_steps": steps, "profiled_steps": PROFILED_STEPS,
            "fast_loss_relative_difference": check}
    runs: list[Run] = []
    skipped: list[dict[str, Any]] = []
    timings = [(spec, [], ["package", "bare"], False) for spec in configs]
    timings[1:1] = [(configs[0], [override], ["package"], False) for override in variants]
    timings += [(configs[0], [override], ["package"], True) for override in opt_in]
    started = time.perf_counter()
    result: dict[str, Any] = {}
    for spec, variant, paths, is_opt_in in timings:
        longest = max((r.wall_seconds for r in runs), default=0.0) * len(paths)
        if budget_s is not None and time.perf_counter() - started + longest > budget_s:
            skipped.append({"config": spec, "variant": variant, "paths": paths, "opt_in": is_opt_in,
                            "why": f"a time budget of {budget_s:g} s would be passed"})
        else:
            runs += measure(spec, variant, paths, warmup, steps, is_opt_in, extra)
        result = {"meta": meta, "device": name, "runs": [vars(r) for r in runs], "skipped": skipped}
        records.gpu_mfu.write(out, result)  # after every measurement: a timeout keeps what finished
    print(f"\n{name}, {meta['precision']}, {ACCUMULATION} accumulation steps, {steps} timed steps after {warmup}")
    print(f"{'model':<14}{'context':>8}{'micro':>6}  {'path':<34}{'tok/s':>10}{'MFU':>8}{'vs bare':>9}")
    for r in runs:
        bare = next((b for b in runs if b.path == "bare" and (b.model, b.context, b.micro_batch) ==
                     (r.model, r.context, r.micro_batch)), None)
        label = " ".join([r.path, *r.variant, *(["(opt-in)"] if r.opt_in else [])])
        utilisation = "n/a" if r.mfu is None else f"{100 * r.mfu:.1f}%"
        ratio = "" if bare is None else f"{r.tokens_per_second / bare.tokens_per_second:>8.2f}x"
        print(f"{r.model:<14}{r.context:>8}{r.micro_batch:>6}  {label:<34}{r.tokens_per_second:>10,.0f}"
              f"{utilisation:>8}{ratio}")
    for skip in skipped:
        print(f"skipped: {skip['config']} {' '.join(skip['variant'])} ({skip['why']})")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", help="model:context:micro_batch (model tiny: --tiny's); default: "
                        f"{' '.join(FLOOR_CONFIGS)}, or tiny:64:4 with --tiny")
    parser.add_argument("--variants", nargs="*", default=[],
                        help="package-path overrides, each timed on its own on the first config")
    parser.add_argument("--opt-in", nargs="*", default=[],
                        help="like --variants, for overrides that change the recipe (listed as opt-in), timed last")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="start no measurement that would end past this many seconds (by the longest so far); "
                             "the ones left out are listed as skipped")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 10; --smoke: 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3; --smoke: 1)")
    parser.add_argument("--tiny", action="store_true", help="a tiny model on the CPU: checks that the script runs")
    parser.add_argument("--smoke", action="store_true", help="--tiny without torch.compile, 2 steps: seconds")
    parser.add_argument("--out", type=Path, default=None,
                        help="default results/perf/gpu_mfu.json (--tiny, --smoke: a temporary file)")
    args = parser.parse_args()
    tiny = args.tiny or args.smoke
    configs = args.configs or (["tiny:64:4"] if tiny else list(FLOOR_CONFIGS))
    out = args.out or (Path(tempfile.gettempdir()) / "gpu_mfu_tiny.json" if tiny else Path("results/perf/gpu_mfu.json"))
    steps, warmup = (2, 1) if args.smoke else (10, 3)
    steps, warmup = steps if args.steps is None else args.steps, warmup if args.warmup is None else args.warmup
    bench(configs, args.variants, args.opt_in, out, steps, warmup, args.budget_s,
          extra=("trainer.compile=false",) if args.smoke else ())
    print(json.dumps({"written": str(out)}))


if __name__ == "__main__":
    main()
