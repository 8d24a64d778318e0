"""The GPU path end to end in one call (run by bench/gpu_check.sh; docs/gpus.md, "The GPU check"), in three parts, each
writing as it goes, so that a timeout keeps what finished:

a. MFU: bench/gpu_mfu.py's configurations and each lever (the attention kernel sdpa_causal against transformers'
   sdpa, the padded vocabulary, micro-batch 32, torch.compile's max-autotune-no-cudagraphs; dropout 0.125 as an
   opt-in that changes the recipe), package path and bare loop, with the attention kernels that ran ->
   results/perf/gpu_mfu.json.
b. The recipe (experiment=gpu_check): prepare, train (stage 1 stopped by SIGTERM once its first checkpoint is written,
   then the same command again resumes it and trains stage 2), eval (perplexity, bits/byte, ru_local through lm-eval,
   samples), paper tables -> results/gpu_check/; its test bits/byte and RuBLiMP beside the CPU mini run's.
c. Engines on one device: a few steps under trainer=ddp and trainer=fsdp (devices=1), each stopped by SIGTERM at a
   checkpoint and resumed, then exported; each export equals the same weights exported from the stage's final
   checkpoint by a plain (DDP-style) save, and the two engines' exports are compared.
The facts of each part go to results/gpu_check/check.json. Commands run in this process (``reproduce.cli.main``),
as a launcher would run them; the stop signal is this process's own SIGTERM.

    python bench/gpu_check.py                  # on one GPU, all parts (about 9 minutes on an H200, not yet measured)
    python bench/gpu_check.py --parts b,c      # a subset
    python bench/gpu_check.py --tiny           # the same parts on a CPU: micro model and corpus, runs/gpu_check_tiny/
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import shutil
import signal
import sys
import tarfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
# What the commands import; the GPU image lacks the first four (the offline bundle brings them: bench/gpu_bundle.py).
IMPORTS = ("hydra", "omegaconf", "datasets", "lm_eval.evaluator", "lm_eval.models.huggingface", "torch",
           "pytorch_lightning", "transformers", "tokenizers", "safetensors", "matplotlib", "yaml", "sklearn.metrics")
RUN = "gpu_check"
VARIANTS = ["model.attn_implementation=sdpa", "model.pad_vocab_multiple=1",
            "trainer.compile_mode=max-autotune-no-cudagraphs"]
OPT_IN = ["model.attn_pdrop=0.125"]  # cuDNN's attention takes dropout in multiples of 1/16: changes the recipe
MFU_CONFIGS = ["rugpt3_large:1024:8", "rugpt3_large:1024:32", "rugpt3_small:1024:8", "rugpt3_large:2048:4"]
TINY_MFU_CONFIGS = ["tiny:64:4", "tiny:64:8"]
# Part c: the recipe's model cut to 4 blocks (4 FSDP units), about 24 steps with a checkpoint every 8.
ENGINE = ["~stages.stage2", "eval.stages=[stage1]", "model.n_layer=4", "stages.stage1.epochs=0.17",
          "stages.stage1.checkpoint_every_tokens=524288", "eval.perplexity.contexts=[1024]"]
# Where the data comes from: the mirror or the cache (the offline bundle's data.tar.xz on the GPU machine), never the
# network; --tiny: the micro recipe's corpus (conf/experiment/micro.yaml).
DATA = ["data.allow_download=false"]
TINY_DATA = [*DATA, "data.sources.ruslit.manifest=manifests/ruslit_micro.tsv"]
# --tiny: a micro model and corpus, and a trained 384-id vocabulary (ruGPT-3's 50,257 ids cost ~0.7 s a step on 2
# cores); the model keeps 400 rows, padded to 448, so padding and export slicing run as on the GPU.
TINY = ["tokenizer=bbpe", "tokenizer.vocab_size=384", "model.vocab_size=400", "model.n_layer=2", "model.n_embd=64",
        "model.n_head=2", "model.n_positions=256", "trainer=cpu", "data.workers=1", "data.shard_tokens=50000",
        "data.validation_fraction=0.05", "data.test_fraction=0.1", "stages.stage1.context=32",
        "stages.stage1.epochs=0.04", "stages.stage1.batch_size=16", "stages.stage1.micro_batch_size=8",
        "stages.stage1.checkpoint_every_tokens=4096", "stages.stage1.validation_windows=8",
        "stages.stage1.validate_every_steps=10", "stages.stage2.context=64", "stages.stage2.epochs=0.02",
        "stages.stage2.batch_size=8", "stages.stage2.micro_batch_size=8", "stages.stage2.validation_windows=8",
        "stages.stage2.validate_every_steps=10", "eval.dtype=float32", "eval.limit=4", "eval.batch_size=16",
        "eval.perplexity.max_tokens=2048", "eval.perplexity.contexts=[32,64]", "eval.perplexity.batch_size=8",
        "eval.generate.max_new_tokens=8", "eval.generate.num_samples=1"]
TINY_ENGINE = ["~stages.stage2", "eval.stages=[stage1]", "eval.perplexity.contexts=[32]", "trainer.accelerator=cpu",
               "trainer.precision=32-true", "trainer.compile=false", "trainer.fused_optimizer=false"]


class CheckFailed(Exception):
    """A part did not do what it must; the message says what."""


def import_problems() -> list[str]:
    """The modules of IMPORTS that do not import here, each with what is missing or wrong."""
    problems = []
    for module in IMPORTS:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            missing = exc.name or module
            problems.append(missing if missing == module.split(".")[0] else f"{missing} (for {module})")
        except Exception as exc:  # noqa: BLE001 (e.g. a version check of the library itself)
            problems.append(f"{module} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
    return problems


def copy_out(check: Check, out: Path) -> None:
    """With $OUT set: the key results files, and every results file of the check in one archive whose
    paths are the repository's (``tar -xzf gpu_check_results.tar.gz`` at its root)."""
    run_results = check.results / RUN
    for path in (check.results / "perf" / "gpu_mfu.json", check.file, run_results / "summary.json",
                 run_results / "train.json"):
        if path.is_file():
            shutil.copy(path, out / path.name)
    with tarfile.open(out / "gpu_check_results.tar.gz", "w:gz") as archive:
        for path in [check.results / "perf" / "gpu_mfu.json", *sorted(run_results.glob("*")),
                     check.runs / RUN / "reproduce.log"]:
            if path.is_file():
                archive.add(path, arcname=str(path.relative_to(check.results.parent)))


def release() -> None:
    """Free what a command left: compiled graphs, cached GPU memory."""
    import torch

    torch._dynamo.reset()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def reproduce(args: list[str], expect: int = 0) -> float:
    """`reproduce <args>` in this process; its seconds. Raises CheckFailed on another exit code."""
    from reproduce.cli import main

    print(f"[gpu_check] reproduce {' '.join(args)}", flush=True)
    started = time.perf_counter()
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    release()
    if code != expect:
        raise CheckFailed(f"`reproduce {' '.join(args)}` exited with {code}, not {expect}")
    return time.perf_counter() - started


def stopped_and_resumed(args: list[str], folder: Path, train_json: Path) -> dict[str, Any]:
    """``reproduce train <args>``, stopped by SIGTERM once stage 1's first checkpoint is in ``folder``; then the same
    command again, which resumes from the checkpoint the signal made and trains every step (``train_json``)."""
    from reproduce.core.io import read_json
    from reproduce.train.checkpoint import checkpoint_step, checkpoints

    stop = threading.Event()
    seen: dict[str, int] = {}

    def signal_at_first_checkpoint() -> None:
        while not stop.is_set():
            if found := checkpoints(folder):
                seen["checkpoint"] = checkpoint_step(found[-1])
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=signal_at_first_checkpoint, daemon=True)
    watcher.start()
    try:
        stopped_s = reproduce(["train", *args], expect=128 + signal.SIGTERM)
    finally:
        stop.set()
        watcher.join()
    stopped_at = checkpoint_step(checkpoints(folder)[-1])
    if stopped_at <= seen["checkpoint"]:
        raise CheckFailed(f"the SIGTERM after the checkpoint of step {seen['checkpoint']} made no newer checkpoint")
    resumed_s = reproduce(["train", *args])
    final, steps = checkpoint_step(checkpoints(folder)[-1]), read_json(train_json)["stages"]["stage1"]["steps"]
    if final != steps:
        raise CheckFailed(f"stage 1 resumed at step {stopped_at} ended at step {final} of {steps}")
    return {"first_checkpoint_step": seen["checkpoint"], "stopped_at_step": stopped_at, "final_step": final,
            "seconds": {"stopped": stopped_s, "resumed": resumed_s}}


class Check:
    """Where everything goes, and the parts; ``tiny``: a micro model and corpus on this CPU, under ``root``."""

    def __init__(self, tiny: bool, root: Path, mfu_budget_s: float | None):
        self.tiny, self.mfu_budget_s = tiny, mfu_budget_s
        self.results, self.runs, self.prepared = (root / "results", root / "runs", root / "prepared") if tiny else (
            ROOT / "results", ROOT / "runs", ROOT / "prepared")
        self.data = list(DATA)
        if tiny:
            shutil.copytree(ROOT / "results" / "published", self.results / "published", dirs_exist_ok=True)
            self.data = [*TINY_DATA, f"data.cache_dir={root}/cache"]
        self.file = self.results / RUN / "check.json"

    def recipe(self, run: str, *extra: str, results: Path | None = None) -> list[str]:
        """The overrides of ``run``: experiment=gpu_check (--tiny: shrunk), its folders (results: ``results``)."""
        paths = [f"paths.results={results or self.results}", f"paths.runs={self.runs}",
                 f"paths.prepared={self.prepared}"]
        return [f"experiment={RUN}", f"run_name={run}", *paths, *self.data, *(TINY if self.tiny else []), *extra]

    def fresh(self, run: str, results: Path, keep: str | None = None) -> None:
        """Start ``run`` over: its artifacts and results go (the prepared set stays, and is reused)."""
        shutil.rmtree(self.runs / run, ignore_errors=True)
        for path in results.glob(f"{run}/*"):
            if path.name != keep:
                shutil.rmtree(path) if path.is_dir() else path.unlink()

    # -- a. MFU
    def mfu(self) -> dict[str, Any]:
        import torch
        from gpu_mfu import bench

        out = self.results / "perf" / "gpu_mfu.json"
        configs = TINY_MFU_CONFIGS if self.tiny else MFU_CONFIGS
        extra = ("trainer.compile=false",) if self.tiny else ()  # compiling costs half a minute a run on 2 cores
        precision = torch.get_float32_matmul_precision()  # the bench sets "high"; the recipe's parts keep their own
        try:
            result = bench(configs, VARIANTS, OPT_IN, out, steps=2 if self.tiny else 10, warmup=1 if self.tiny else 3,
                           budget_s=self.mfu_budget_s, extra=extra)
        finally:
            torch.set_float32_matmul_precision(precision)
        return {"file": str(out), "device": result["device"], "runs": len(result["runs"]),
                "skipped": len(result["skipped"]), "first": result["runs"][0] if result["runs"] else None}

    # -- b. the recipe
    def recipe_end_to_end(self) -> dict[str, Any]:
        from reproduce.core.io import read_json

        self.fresh(RUN, self.results, keep=self.file.name)
        args, seconds = self.recipe(RUN), {}
        seconds["prepare"] = reproduce(["prepare", *args])
        train = stopped_and_resumed(args, self.runs / RUN / "checkpoints" / "stage1", self.results / RUN / "train.json")
        seconds["eval"] = reproduce(["eval", *args])
        paper = self.runs / RUN / "paper"
        seconds["paper"] = reproduce(["paper", f"paper.runs=[{RUN}]", "paper.extra_runs=[]",
                                      f"paths.results={self.results}", f"paths.paper={paper}"])
        summary, stages = read_json(self.results / RUN / "summary.json"), read_json(self.results / RUN / "train.json")
        mini = read_json(ROOT / "results" / "mini" / "summary.json")
        return {"train": train, "seconds": seconds, "stages": {name: {key: stage.get(key) for key in (
                    "steps", "tokens", "seconds", "median_window_tokens_per_second", "median_window_mfu", "device")}
                for name, stage in stages["stages"].items()},
                "test_bits_per_byte": {RUN: final_bits_per_byte(summary), "mini": final_bits_per_byte(mini)},
                "rublimp": {RUN: rublimp(summary), "mini": rublimp(mini)},
                "paper_tables": sorted(p.name for p in (paper / "tables").glob("*.md"))}

    # -- c. engines
    def engines(self) -> dict[str, Any]:
        import torch

        results = self.runs / f"{RUN}_engines"
        engines = ["ddp"] + (["fsdp"] if torch.cuda.is_available() else [])
        facts: dict[str, Any] = {} if "fsdp" in engines else {"fsdp": "not run: Lightning's FSDP needs CUDA GPUs"}
        for engine in engines:
            run = f"{RUN}_{engine}"
            self.fresh(run, results)
            options = TINY_ENGINE if self.tiny else ENGINE
            args = self.recipe(run, f"trainer={engine}", "trainer.devices=1", *options, results=results)
            reproduce(["prepare", *args])
            facts[engine] = stopped_and_resumed(args, self.runs / run / "checkpoints" / "stage1",
                                                results / run / "train.json")
            facts[engine]["export_vs_checkpoint"] = export_equals_checkpoint(self.runs / run)
        if len(engines) == 2:
            facts["ddp_vs_fsdp_max_abs_logit_difference"] = logit_difference(
                *(self.runs / f"{RUN}_{engine}" / "models" / "stage1" for engine in engines))
        return facts


def final_bits_per_byte(summary: dict[str, Any]) -> dict[str, Any]:
    """The last stage's test bits/byte at its largest eval context."""
    row = max(summary["perplexity"], key=lambda r: (list(summary["stages"]).index(r["stage"]), r["context"]))
    return {key: row[key] for key in ("stage", "context", "bits_per_byte", "perplexity", "tokens")}


def rublimp(summary: dict[str, Any]) -> dict[str, Any] | None:
    stage, scores = next(reversed(summary["rublimp"].items()), (None, None))
    return None if scores is None else {"stage": stage, "mean": scores["mean"], "pairs": scores["n_pairs"],
                                        "ties": scores["ties"]}


def _logits(folder: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = torch.randint(5, model.config.vocab_size, (2, 64), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model(input_ids=ids).logits


def logit_difference(a: Path, b: Path) -> float:
    return float((_logits(a) - _logits(b)).abs().max())


def export_equals_checkpoint(run_dir: Path) -> dict[str, Any]:
    """The stage's export against the weights of its final checkpoint saved the plain way (no FSDP gather): the same
    tensors and the same logits; both load with AutoModelForCausalLM.from_pretrained."""
    import tempfile

    import torch
    from safetensors.torch import load_file
    from transformers import GPT2LMHeadModel

    from reproduce.model.gpt2 import save_export
    from reproduce.train.checkpoint import checkpoints

    export = run_dir / "models" / "stage1"
    final = checkpoints(run_dir / "checkpoints" / "stage1")[-1]
    state = torch.load(final, map_location="cpu", weights_only=True)["state_dict"]
    weights = {key.removeprefix("model."): value for key, value in state.items()}
    model = GPT2LMHeadModel.from_pretrained(export)
    vocab, rows = model.config.vocab_size, weights["transformer.wte.weight"].shape[0]
    if rows != vocab:
        model.resize_token_embeddings(rows, mean_resizing=False)  # the training model's padding rows
    model.load_state_dict(weights)
    with tempfile.TemporaryDirectory() as tmp:
        save_export(model, Path(tmp), vocab)
        ours, theirs = load_file(export / "model.safetensors"), load_file(Path(tmp) / "model.safetensors")
        same = ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
        difference = logit_difference(export, Path(tmp))
    if not same or difference != 0:
        raise CheckFailed(f"{export} differs from the weights of {final} (max logit difference {difference})")
    return {"checkpoint": final.name, "same_tensors": same, "max_abs_logit_difference": difference}


PARTS: dict[str, tuple[str, Callable[[Check], dict[str, Any]]]] = {
    "a": ("mfu", Check.mfu), "b": ("recipe", Check.recipe_end_to_end), "c": ("engines", Check.engines)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="a,b,c", help="comma-separated subset of a,b,c")
    parser.add_argument("--tiny", "--smoke", action="store_true", help="a micro model and corpus on this CPU")
    parser.add_argument("--root", type=Path, default=ROOT / "runs" / "gpu_check_tiny", help="--tiny's folder")
    parser.add_argument("--mfu-budget-s", type=float, default=None,
                        help="part a starts no measurement past this (default: 180 s with other parts, else 480 s)")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if not parts or set(parts) - set(PARTS):
        raise SystemExit(f"error: --parts={args.parts}: choose from a,b,c")
    problems = import_problems()
    if problems:
        raise SystemExit(f"error: cannot import {', '.join(problems)}; build the offline bundle where they are "
                         "installed (.venv/bin/python bench/gpu_bundle.py) and copy .gpu_site with the checkout "
                         "(docs/gpus.md)")
    import torch

    from reproduce.core.io import read_json, write_json
    from reproduce.core.logs import silence_progress_bars
    from reproduce.core.meta import package_metadata

    silence_progress_bars()
    if args.tiny:
        torch.set_num_threads(1)  # a micro model gains nothing from more, and a second thread waits on a busy core
    budget = args.mfu_budget_s if args.mfu_budget_s is not None else (480.0 if parts == ["a"] else 180.0)
    check = Check(args.tiny, args.root, None if args.tiny else budget)
    record = read_json(check.file) if check.file.is_file() else {"parts": {}}
    failed = []
    for part in parts:
        name, run = PARTS[part]
        started = time.perf_counter()
        try:
            facts = {"ok": True, **run(check)}
        except Exception as exc:  # noqa: BLE001 (a failed part is recorded, and the next one runs)
            traceback.print_exc()
            facts, failed = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}, [*failed, part]
        facts["wall_seconds"] = time.perf_counter() - started
        record["parts"][f"{part}_{name}"] = facts
        record.update(meta=package_metadata(), tiny=args.tiny)
        write_json(check.file, record)
        print(f"[gpu_check] part {part} ({name}): {'ok' if facts['ok'] else 'FAILED'} in "
              f"{facts['wall_seconds']:.0f} s; {check.file}", flush=True)
        if os.environ.get("OUT"):
            copy_out(check, Path(os.environ["OUT"]))
    if failed:
        raise SystemExit(f"error: part(s) {', '.join(failed)} failed; see {check.file}")


if __name__ == "__main__":
    main()
