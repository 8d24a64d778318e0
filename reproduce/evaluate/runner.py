"""One evaluation runner for the recipe's eval step, `reproduce eval` and the tests: which models, which suite, on
which device; one results file per model and suite, written whole or not at all."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from reproduce.config.schema import EvalConfig, GenerateConfig
from reproduce.core import records
from reproduce.core.arithmetic import model_context
from reproduce.core.meta import package_metadata
from reproduce.evaluate.inputs import ModelRef
from reproduce.evaluate.lm_eval_tasks import write_tasks
from reproduce.evaluate.penlp import score_penlp
from reproduce.evaluate.perplexity import model_perplexity
from reproduce.evaluate.suites import ResolvedSuite
from reproduce.model.pretrained import load_causal_lm, load_tokenizer

log = logging.getLogger("reproduce")


def suite_inputs(suite: ResolvedSuite, folder: Path) -> Path | None:
    """lm-eval's task folder for a resolved suite: its benchmark folders written under ``folder`` with their verified
    data files; None where lm-eval reads its own tasks only, or where the PenLP scorer reads the suite's files."""
    if suite.scorer == "penlp" or not suite.benchmarks:
        return None
    return write_tasks(suite.benchmarks, folder)


def evaluate_model(ref: ModelRef, suite: ResolvedSuite, tasks: Path | None, evaluation: EvalConfig, device: str,
                   seed: int, out_file: Path, verbose: bool = False) -> dict[str, Any]:
    """Score one model on a resolved suite (``tasks``: its lm-eval task folder, ``suite_inputs``); ``out_file`` gets
    the scores plus everything that changes a score (lm-eval's own results, or the PenLP run's details)."""
    load_causal_lm("model", ref.source)  # lm-eval and PenLP load it themselves: first refuse weights not whole
    meta = {**package_metadata(), "model": ref.name, "source": ref.source, "suite": suite.name, "tasks": suite.tasks,
            "dtype": evaluation.dtype, "device": device, "batch_size": evaluation.batch_size, "seed": seed,
            "limit": evaluation.limit, "num_fewshot": evaluation.num_fewshot, "task_files": suite.task_file_hashes}
    if suite.scorer == "penlp":
        scored = score_penlp(ref.source, suite.penlp_files, evaluation.batch_size, evaluation.dtype, device)
        metrics = {suite.tasks[0]: scored.metrics}
        records.suite_results.write(out_file, {"meta": meta, "metrics": metrics, "penlp": scored.details})
    else:  # lm-eval (and the datasets library) only where it scores: PenLP needs neither
        from reproduce.evaluate.harness import cli_model_args, model_arguments, run_lm_eval, task_metrics

        args = model_arguments(ref.source, evaluation.batch_size, evaluation.dtype, device, evaluation.prefix_token)
        raw = run_lm_eval(args, tasks, suite.tasks, evaluation.limit, evaluation.num_fewshot, suite.builtin, verbose)
        meta |= {"model_args": args, "lm_eval_model_args": cli_model_args(args),
                 "prefix_token": evaluation.prefix_token, "device": raw.pop("device")}
        metrics = task_metrics(raw)
        records.suite_results.write(out_file, {"meta": meta, "metrics": metrics, "lm_eval": raw})
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


def sample_settings(evaluation: EvalConfig) -> dict[str, Any]:
    gen = evaluation.generate
    return {"max_new_tokens": gen.max_new_tokens, "temperature": gen.temperature, "top_k": gen.top_k,
            "top_p": gen.top_p, "num_samples": gen.num_samples, "seed": gen.seed}


def generate_samples(model: str | Path, gen: GenerateConfig, prompts: list[str], device: str) -> list[dict[str, Any]]:
    """Samples of one model for each prompt, with the generation settings of ``gen``."""
    from reproduce.evaluate.generate import generate

    lm = load_causal_lm("model", model).to(device)
    tokenizer = load_tokenizer("model", model)
    return generate(lm, tokenizer, prompts, gen.max_new_tokens, gen.temperature, gen.top_k, gen.top_p, gen.seed,
                    gen.num_samples, device=device)


def perplexity_of_texts(ref: ModelRef, texts: list[str], evaluation: EvalConfig, device: str) -> dict[str, Any]:
    """Sliding-window perplexity and bits per byte of one model on whole texts, at its full context."""
    from reproduce.evaluate.perplexity import text_perplexity

    model = load_causal_lm("model", ref.source).to(device)
    context = model_context(model.config.to_dict())
    stride = evaluation.perplexity.stride or max(1, context // 2)  # the pre-flight checked it against the context
    autocast = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(evaluation.dtype)
    row = text_perplexity(model, load_tokenizer("model", ref.source), texts, context, stride,
                          evaluation.perplexity.batch_size, autocast)
    return {**row, "parameters": model.num_parameters()}


# ------------------------------------------------------------------ benchmarks over training (eval_curve.json)


def score_point(folder: Path, name: str, suite: ResolvedSuite, tasks: Path | None, evaluation: EvalConfig,
                device: str, seed: int, out_file: Path, validation: tuple[np.ndarray, int, np.ndarray] | None
                ) -> list[dict[str, Any]]:
    """One point of a curve: a model folder (an in-training export or a kept checkpoint's) scored as the final
    evaluation scores it: loss and bits per byte on validation blocks (``validation``: blocks, context, byte lengths
    of the ids), and the suite through ``evaluate_model``. Rows of task, metric, value and items (``n``)."""
    rows = []
    if validation is not None:
        blocks, context, byte_lengths = validation
        model = load_causal_lm("model", folder).to(device)
        autocast = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(evaluation.dtype)
        row = model_perplexity(model, blocks, context, byte_lengths, evaluation.perplexity.batch_size, autocast)
        rows += [{"task": "validation", "metric": metric, "value": row[key], "n": row["tokens"]}
                 for metric, key in (("loss", "nll_per_token"), ("bits_per_byte", "bits_per_byte"))]
    if suite.tasks:
        metrics = evaluate_model(ModelRef(name, folder.as_posix()), suite, tasks, evaluation, device, seed, out_file)
        for task in suite.tasks:
            found = metrics.get(task, {})
            rows += [{"task": task, "metric": key, "value": value, "n": int(found.get("n", 0))}
                     for key, value in sorted(found.items()) if key != "n"]
    return rows


def curve_points(path: Path) -> list[dict[str, Any]]:
    """The points of an eval_curve.json ([] where there is none yet)."""
    return records.eval_curve.read(path)["points"] if path.is_file() else []


def has_point(points: list[dict[str, Any]], stage: str, step: int, tasks: list[str]) -> bool:
    """Whether every one of ``tasks`` has a point at (stage, step) already."""
    found = {p["task"] for p in points if p["stage"] == stage and p["step"] == step}
    return set(tasks) <= found


def drop_stage_points(path: Path, stage: str) -> int:
    """A stage trained from its first step: its points already in eval_curve.json (another training's: an earlier run
    of the same name, or the committed results a fresh clone starts with) removed, so that this training computes
    them anew; how many."""
    if not path.is_file():
        return 0
    record = records.eval_curve.read(path)
    kept = [p for p in record["points"] if p["stage"] != stage]
    if len(kept) < len(record["points"]):
        records.eval_curve.write(path, {**record, "points": kept})
    return len(record["points"]) - len(kept)


def add_points(path: Path, meta: dict[str, Any], points: list[dict[str, Any]]) -> None:
    """``points`` added to eval_curve.json (a point already there for the same stage, step, task and metric is kept),
    sorted by tokens seen, task and metric; written whole."""
    key = lambda p: (p["stage"], p["step"], p["task"], p["metric"])  # noqa: E731
    merged = {key(p): p for p in points} | {key(p): p for p in curve_points(path)}
    ordered = sorted(merged.values(), key=lambda p: (p["tokens_seen"], p["task"], p["metric"]))
    records.eval_curve.write(path, {"meta": meta, "points": ordered})
