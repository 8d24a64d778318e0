"""The recipe's eval step: each stage's perplexity on the test split, the eval suite, samples; summary.json."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from transformers import GPT2LMHeadModel

from reproduce.config.schema import RecipeConfig
from reproduce.core import layout, records
from reproduce.core.meta import run_metadata
from reproduce.data.manifest import make_resolver
from reproduce.data.prepared_set import PreparedData, run_prepared
from reproduce.evaluate.inputs import ModelRef, eval_device
from reproduce.evaluate.perplexity import eval_blocks, model_perplexity, token_byte_lengths, unigram_perplexity
from reproduce.evaluate.runner import evaluate_model, generate_samples, rublimp_summary, sample_settings, suite_inputs
from reproduce.evaluate.suites import resolve_suite
from reproduce.train.in_training_eval import score_checkpoints
from reproduce.train.model_card import write_model_card
from reproduce.train.trackers import log_final

log = logging.getLogger("reproduce")
_AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def _perplexity(cfg: RecipeConfig, data: PreparedData, device: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each stage's exported model at every eval context, and the unigram baseline, on the same targets; and each
    model's mean loss at every position, by stage and context."""
    contexts = sorted(set(cfg.eval.perplexity.contexts))
    blocks = eval_blocks(data.shards["test"], max(contexts), cfg.eval.perplexity.max_tokens)
    byte_lengths = token_byte_lengths(data.tokenizer)
    unigram = unigram_perplexity(data.shards["train"].bincount(len(data.tokenizer)), blocks, byte_lengths)
    autocast = _AUTOCAST.get(cfg.trainer.precision)
    rows, by_position = [], {}
    for name in cfg.stages:
        model = GPT2LMHeadModel.from_pretrained(cfg.layout.model(name), trust_remote_code=False).to(device)
        for context in contexts:
            row = model_perplexity(model, blocks, context, byte_lengths, cfg.eval.perplexity.batch_size, autocast)
            by_position.setdefault(name, {})[str(context)] = row.pop("nll_by_position")
            row = {"stage": name, **row, "ratio_to_unigram": row["perplexity"] / unigram["perplexity"]}
            log.info(f"[eval] {name} at context {context}: perplexity {row['perplexity']:.2f} "
                     f"({row['ratio_to_unigram']:.3f}x unigram {unigram['perplexity']:.1f}), "
                     f"{row['bits_per_byte']:.3f} bits/byte; mean loss over positions 0-{context // 2 - 1} "
                     f"{row['nll_positions_first_half']:.3f}, {context // 2}-{context - 1} "
                     f"{row['nll_positions_second_half']:.3f}")
            rows.append(row)
    return {"perplexity": rows, "unigram": unigram, "perplexity_device": device}, by_position


def evaluate(cfg: RecipeConfig, data: PreparedData | None = None) -> dict[str, Any]:
    """Perplexity, then the eval suite for each configured stage, then samples; summary.json is rewritten after each.
    Everything runs on ``eval.device`` (default: the trainer's device)."""
    data = data or run_prepared(cfg)
    if cfg.eval.checkpoints is not None:  # kept checkpoints into eval_curve.json, not the run's own evaluation
        return {"points": score_checkpoints(cfg, data)}
    run = cfg.layout
    stages = records.train.read(run.result(layout.TRAIN))["stages"]
    timings = {"prepare": sum(records.data.read(run.result(layout.DATA))["timings_s"].values()),
               **{name: stage["seconds"] for name, stage in stages.items()}}
    summary: dict[str, Any] = {"meta": run_metadata(cfg), "run": cfg.run_name, "stages": stages, "rublimp": {},
                               "suite": {}, "timings_s": timings}
    device = eval_device(cfg.eval.device, cfg.trainer.accelerator)

    def save(step: str, started: float) -> None:
        timings[step] = time.perf_counter() - started
        timings["total"] = sum(v for k, v in timings.items() if k != "total")
        records.summary.write(run.result(layout.SUMMARY), summary)

    started = time.perf_counter()
    perplexity, by_position = _perplexity(cfg, data, device)
    windows = {str(c): perplexity["unigram"]["tokens"] // c for c in sorted(set(cfg.eval.perplexity.contexts))}
    records.loss_by_position.write(run.result(layout.LOSS_BY_POSITION),
               {"meta": summary["meta"], "unit": "mean test NLL (nats) at each position of a window",
                "windows": windows, "stages": by_position})
    summary.update(perplexity)
    save("perplexity", started)

    started = time.perf_counter()
    suite = resolve_suite(cfg.eval, make_resolver(cfg.data))
    tasks = suite_inputs(suite, run.task_folders)
    summary["suite_name"] = suite.name
    for name in cfg.eval.stages:
        ref = ModelRef(run.model_name(name), run.model(name).as_posix())
        metrics = evaluate_model(ref, suite, tasks, cfg.eval, device, cfg.seed, run.lm_eval(suite.name, name),
                                 cfg.verbose)
        summary["suite"][name] = metrics
        if "rublimp" in metrics:
            summary["rublimp"][name] = rublimp_summary(metrics)
        save("suite", started)

    started = time.perf_counter()
    samples = {name: generate_samples(run.model(name), cfg.eval.generate, cfg.eval.generate.prompts, device)
               for name in cfg.stages}
    records.samples.write(run.result(layout.SAMPLES), {"meta": summary["meta"], "settings": sample_settings(cfg.eval),
                                            "stages": samples})
    save("samples", started)
    for name in cfg.stages:  # the model cards, now with the stages' scores
        write_model_card(cfg, name)
    log_final(cfg, sum(s["steps"] for s in stages.values()), sum(s["tokens"] for s in stages.values()),
              final_metrics(summary))
    return summary


def final_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The eval step's headline numbers for the trackers: each stage's perplexity and bits per byte at each context,
    and each top-level task's metrics."""
    metrics = {}
    for row in summary["perplexity"]:
        for key in ("perplexity", "bits_per_byte"):
            metrics[f"final/{row['stage']}/{key}_{row['context']}"] = row[key]
    for stage, tasks in summary["suite"].items():
        for task in records.top_level_tasks(tasks):
            metrics.update({f"final/{stage}/{task}/{k}": v for k, v in tasks[task].items() if k != "n"})
    return metrics
