"""One evaluation runner for the recipe's eval step, `reproduce eval` and the tests: which models, which suite, on
which device; one results file per model and suite, written whole or not at all."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from reproduce.config import EvalConfig, GenerateConfig
from reproduce.data.manifest import Resolver, read_manifest
from reproduce.errors import UserError
from reproduce.evaluate.harness import cli_model_args, model_arguments, run_lm_eval, task_metrics
from reproduce.evaluate.inputs import ModelRef
from reproduce.evaluate.lm_eval_tasks import TASKS_DIR, data_names, write_tasks
from reproduce.evaluate.suites import Suite
from reproduce.io import write_json
from reproduce.paths import config_file
from reproduce.results import package_metadata

log = logging.getLogger("reproduce")


def manifest_resolver(resolver: Resolver) -> Callable[[str, str], Path]:
    """``mirror:<path>`` of a benchmark -> the local file of that row of conf/manifests/<benchmark>.tsv."""
    def resolve(benchmark: str, path: str) -> Path:
        manifest = config_file(f"manifests/{benchmark}.tsv")
        entries = {entry.path: entry for entry in read_manifest(manifest)}
        if path not in entries:
            raise UserError(f"reproduce/evaluate/tasks/{benchmark}: mirror:{path} is not a row of {manifest}")
        return resolver.resolve(entries[path])
    return resolve


def write_suite_tasks(suite: Suite, folder: Path, resolver: Resolver) -> Path | None:
    """The suite's benchmark folders with resolved data files (None for lm-eval's own tasks only)."""
    if not suite.benchmarks:
        return None
    return write_tasks(suite.benchmarks, folder, manifest_resolver(resolver))


def task_file_hashes(suite: Suite) -> dict[str, str]:
    """sha256 of every task file of the suite's benchmark folders (before paths are filled in), and of each data
    file they name (the manifest's sha256, which the resolved copy was checked against)."""
    hashes = {}
    for benchmark in suite.benchmarks:
        folder = TASKS_DIR / benchmark
        hashes.update({p.relative_to(TASKS_DIR).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                       for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts})
        names = data_names(benchmark)
        if names:
            rows = {e.path: e.sha256 for e in read_manifest(config_file(f"manifests/{benchmark}.tsv"))}
            hashes.update({f"mirror:{name}": rows[name] for name in names})
    return hashes


def evaluate_model(ref: ModelRef, suite: Suite, include: Path | None, e: EvalConfig, device: str, seed: int,
                   out_file: Path, verbose: bool = False) -> dict[str, Any]:
    """Score one model on a suite; ``out_file`` gets lm-eval's results plus everything that changes a score."""
    args = model_arguments(ref.source, e.batch_size, e.dtype, device, e.prefix_token)
    raw = run_lm_eval(args, include, suite.tasks, e.limit, e.num_fewshot, suite.builtin, verbose)
    meta = {**package_metadata(), "model": ref.name, "source": ref.source, "suite": suite.name, "tasks": suite.tasks,
            "model_args": args, "lm_eval_model_args": cli_model_args(args), "prefix_token": e.prefix_token,
            "dtype": e.dtype, "device": raw.pop("device"), "batch_size": e.batch_size, "seed": seed,
            "limit": e.limit, "num_fewshot": e.num_fewshot, "task_files": task_file_hashes(suite)}
    metrics = task_metrics(raw)
    write_json(out_file, {"meta": meta, "metrics": metrics, "lm_eval": raw})
    for task in suite.tasks:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.get(task, {}).items() if k != "n")
        log.info(f"[eval] {ref.name} {task}: {shown} ({metrics.get(task, {}).get('n', 0)} items)")
    return metrics


def rublimp_summary(metrics: dict[str, dict[str, float]]) -> dict[str, Any]:
    """RuBLiMP's mean accuracy, tie rate and pair count, and each phenomenon's accuracy (for the paper)."""
    group = metrics["rublimp"]
    return {"mean": group["acc"], "ties": group.get("tie"), "n_pairs": int(group["n"]),
            "per_phenomenon": {name.removeprefix("rublimp_"): m["acc"] for name, m in sorted(metrics.items())
                               if name.startswith("rublimp_")}}


def sample_settings(e: EvalConfig) -> dict[str, Any]:
    g = e.generate
    return {"max_new_tokens": g.max_new_tokens, "temperature": g.temperature, "top_k": g.top_k, "top_p": g.top_p,
            "num_samples": g.num_samples, "seed": g.seed}


def generate_samples(model: str | Path, g: GenerateConfig, prompts: list[str], device: str) -> list[dict[str, Any]]:
    """Samples of one model for each prompt, with the generation settings of ``g``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reproduce.evaluate.generate import generate

    lm = AutoModelForCausalLM.from_pretrained(model).to(device)
    tokenizer = AutoTokenizer.from_pretrained(model)
    return generate(lm, tokenizer, prompts, g.max_new_tokens, g.temperature, g.top_k, g.top_p, g.seed,
                    g.num_samples, device=device)


def perplexity_of_texts(ref: ModelRef, texts: list[str], e: EvalConfig, device: str) -> dict[str, Any]:
    """Sliding-window perplexity and bits per byte of one model on whole texts, at its full context."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reproduce.evaluate.perplexity import text_perplexity

    model = AutoModelForCausalLM.from_pretrained(ref.source).to(device)
    context = model.config.n_positions
    stride = e.perplexity.stride or max(1, context // 2)
    if stride > context:
        raise UserError(f"eval.perplexity.stride={stride}: more than the model's context {context}; lower it")
    autocast = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(e.dtype)
    row = text_perplexity(model, AutoTokenizer.from_pretrained(ref.source), texts, context, stride,
                          e.perplexity.batch_size, autocast)
    return {**row, "parameters": model.num_parameters()}
