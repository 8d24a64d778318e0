"""The recipe's steps (prepare, contamination, train, eval; reproduce/recipe/steps.py), each one command, and
``run``, which chains them in the step table's order and then rebuilds the paper. Scoring any model lives in
reproduce/commands/scoring.py.

Each step writes its results under results/<run_name>/ as soon as it finishes, so a failure late in a run
keeps everything that finished before it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import GPT2LMHeadModel

from reproduce.config.schema import RecipeConfig
from reproduce.core import layout, records
from reproduce.core.arithmetic import stage_counts
from reproduce.core.checksums import sums_problem
from reproduce.core.io import read_json, write_json
from reproduce.core.meta import run_metadata
from reproduce.data.contamination import batch_encoder, contamination_report
from reproduce.data.manifest import make_resolver
from reproduce.data.prepare import prepare_set, report
from reproduce.data.prepared_set import (
    MANIFEST,
    PreparedData,
    load_prepared,
    prepared_folder,
    prepared_inputs,
    run_prepared,
)
from reproduce.evaluate.inputs import ModelRef, eval_device
from reproduce.evaluate.perplexity import eval_blocks, model_perplexity, token_byte_lengths, unigram_perplexity
from reproduce.evaluate.runner import (
    evaluate_model,
    generate_samples,
    rublimp_summary,
    sample_settings,
    suite_inputs,
)
from reproduce.evaluate.suites import resolve_suite
from reproduce.paper.build import make_paper
from reproduce.recipe.compare import NoReference, judge, report_verdict
from reproduce.recipe.record import missing_output
from reproduce.recipe.steps import STEPS
from reproduce.train.checkpoint import checkpoints
from reproduce.train.distributed import is_rank_zero
from reproduce.train.in_training_eval import score_checkpoints
from reproduce.train.model_card import write_model_card
from reproduce.train.stage import InitFrom, run_stage, warn_if_bf16_is_emulated
from reproduce.train.trackers import log_final
from reproduce.train.watch import check_interval

log = logging.getLogger("reproduce")
_AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def prepare(cfg: RecipeConfig, data: PreparedData | None = None) -> PreparedData:
    """The run's prepared set (<paths.prepared>/<hash>/: made, finished, or reused when another run made it), named in
    runs/<run>/prepared.json; the report in results/<run>/data.json.

    With ``resume=auto``, data prepared before for this config (results/<run>/config.yaml vouches) is loaded at once.
    """
    pointer = cfg.layout.prepared_pointer
    if cfg.resume == "auto" and missing_output(cfg, "prepare") is None:
        folder = Path(read_json(pointer)["folder"])
        if (folder / MANIFEST).is_file():  # else the set was deleted: made again below
            log.info(f"[data] prepared before for this config: {folder} (resume=never prepares again)")
            return load_prepared(folder)
    inputs = prepared_inputs(cfg)
    folder = prepared_folder(cfg, inputs)
    reused = cfg.resume == "auto" and (folder / MANIFEST).is_file()
    if reused:
        log.info(f"[data] reusing {folder}: prepared before with the same data and tokenizer settings")
    timings = prepare_set(cfg, inputs, folder, fresh=cfg.resume == "never")
    data = load_prepared(folder)
    write_json(pointer, {"folder": folder.as_posix(), "hash": data.manifest["hash"]})
    records.data.write(cfg.layout.result(layout.DATA), {"meta": run_metadata(cfg), **report(data, timings, reused)})
    log.info(f"[data] tokenizer of {len(data.tokenizer)} ids; tokens: "
             + ", ".join(f"{k} {len(v) / 1e6:.2f}M" for k, v in data.shards.items()))
    return data


def contamination(cfg: RecipeConfig, data: PreparedData | None = None) -> dict[str, Any]:
    """n-gram overlap of every evaluation set (and the test documents) with the train shards: contamination.json."""
    data = data or run_prepared(cfg)
    result = contamination_report(
        cfg.contamination, make_resolver(cfg.data), batch_encoder(data.tokenizer), data.shards["train"].chunks(1 << 24),
        data.documents("test") if cfg.contamination.test_works else None)
    records.contamination.write(cfg.layout.result(layout.CONTAMINATION),
               {"meta": run_metadata(cfg), "prepared": data.manifest["hash"], **result})
    for name, row in result["sets"].items():
        share = "n/a" if row["share"] is None else f"{100 * row['share']:.2f}%"
        log.info(f"[contamination] {name}: {row['contaminated']} of {row['checked']} checked items ({share}) share a "
                 f"{cfg.contamination.n}-token sequence with the train split")
    return result


def wait_for_prepared_data(cfg: RecipeConfig, poll_s: float = 2.0) -> None:
    """On the other ranks of a run whose processes start together (torchrun, srun): wait for rank zero's data.

    Rank zero's failure ends the whole group (torchrun and srun --kill-on-bad-exit stop every process), so the wait
    has no time limit of its own.
    """
    waited = 0.0
    while missing_output(cfg, "prepare") is not None:
        if waited % 60 < poll_s:
            log.warning(f"[data] waiting for rank zero to prepare the data ({cfg.layout.prepared_pointer})")
        time.sleep(poll_s)
        waited += poll_s


def _finished_stages(cfg: RecipeConfig) -> dict[str, dict[str, Any]]:
    """Stages of this config trained before (in train.json, with an export that matches its SHA256SUMS), up to the
    first one that is not."""
    run = cfg.layout
    train_json, curves_json = run.result(layout.TRAIN), run.result(layout.CURVES)
    if cfg.resume != "auto" or not (train_json.is_file() and curves_json.is_file()):
        return {}
    trained, curves = records.train.read(train_json)["stages"], records.curves.read(curves_json)
    finished = {}
    for name in cfg.stages:
        if name not in trained:
            break
        if problem := sums_problem(run.model(name)):
            if checkpoints(run.checkpoints(name)):
                log.warning(f"[{name}] warning: the export {run.model(name)} is not intact ({problem}); "
                            "exporting it again from the stage's last checkpoint")
            else:  # results without the run's folder (a fresh clone's committed results): nothing was lost here
                log.info(f"[{name}] results of this config, but neither its export nor a checkpoint: training it")
            break
        finished[name] = {"record": trained[name],
                          **{kind: [p for p in curves[kind] if p["stage"] == name] for kind in ("train", "validation")}}
    return finished


def train(cfg: RecipeConfig, data: PreparedData | None = None) -> dict[str, dict[str, Any]]:
    """Every stage in order, skipping those finished before; train.json and curves.json after each one."""
    data = data or run_prepared(cfg)
    warn_if_bf16_is_emulated(cfg.trainer)
    rank_zero = is_rank_zero(cfg.trainer.devices)
    run = cfg.layout
    check_interval(cfg, len(data.shards["train"]))  # before any training; the pre-flight checks it when it can
    done = _finished_stages(cfg)
    steps_before = tokens_before = 0  # the trackers' run axis: stage 2 continues stage 1's steps and tokens
    for name, stage in cfg.stages.items():
        counts = stage_counts(stage, len(data.shards["train"]), cfg.world_size)
        steps_before, tokens_before = steps_before + counts.steps, tokens_before + counts.tokens
        if name in done:
            log.info(f"[{name}] trained before for this config: {run.model(name)} (resume=never trains it again)")
            continue
        result = run_stage(name, stage, cfg, data, _init_from(cfg, name), steps_before - counts.steps,
                           tokens_before - counts.tokens)
        done[name] = {"record": result.record(), "train": result.train_curve, "validation": result.validation_curve}
        if not rank_zero:
            continue
        meta = run_metadata(cfg)
        records.train.write(run.result(layout.TRAIN), {"meta": meta,
                                                        "stages": {n: s["record"] for n, s in done.items()}})
        records.curves.write(run.result(layout.CURVES), {"meta": meta, **{
            kind: [p for s in done.values() for p in s[kind]] for kind in ("train", "validation")}})
        write_model_card(cfg, name)
    return done


def _init_from(cfg: RecipeConfig, name: str) -> InitFrom | None:
    """What a stage starts from: an earlier stage's export (with the context it trained at), a released checkpoint,
    or nothing (a fresh model)."""
    source = cfg.stages[name].init_from
    if source is None:
        return None
    if source in cfg.stages:
        return InitFrom(cfg.layout.model(source), cfg.stages[source].context)
    return InitFrom(source, None)


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


def run(cfg: RecipeConfig) -> None:
    """The whole recipe: every step of the step table in its order (prepare first: the others read its data), the
    verdict against the reference (written before paper/, which shows its seed spread; printed last), and paper/ when
    the run is one of ``paper.runs``. The other ranks of a multi-process run (started by Lightning once
    rank zero has prepared the data) only train."""
    started = time.perf_counter()
    if not is_rank_zero(cfg.trainer.devices):
        wait_for_prepared_data(cfg)
        train(cfg)
        return
    first, *later = STEPS
    data = STEP_FUNCTIONS[first.name](cfg)
    for step in later:
        STEP_FUNCTIONS[step.name](cfg, data)
    try:
        verdict, no_reference = judge(cfg), None  # before the paper, which shows the seed spread it writes
    except NoReference as exc:
        verdict, no_reference = None, exc
    if cfg.paper.includes(cfg.run_name):
        make_paper(cfg.paths, cfg.paper)
    else:
        log.info(f"[paper] not rebuilt: run {cfg.run_name!r} is not in paper.runs {cfg.paper.runs}; add it with "
                 f"`reproduce paper 'paper.runs=[{','.join([*cfg.paper.runs, cfg.run_name])}]'`")
    log.info(f"[done] {(time.perf_counter() - started) / 60:.1f} min; results in {cfg.layout.results}")
    if verdict is None:
        log.info(f"[verdict] none: {no_reference}")
    else:
        report_verdict(cfg, verdict)  # raises Differs (exit code 3) when a metric is outside its seed spread


# The function of each step of the step table (reproduce/recipe/steps.py): (cfg, prepared data or None) -> its result.
STEP_FUNCTIONS: dict[str, Callable[..., Any]] = {"prepare": prepare, "contamination": contamination, "train": train,
                                                 "eval": evaluate}
