"""The whole recipe at any scale: data -> stages -> evaluation -> results -> paper."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import GPT2LMHeadModel

from reproduce.data.manifest import read_manifest
from reproduce.data.prepare import PreparedData, make_resolver, prepare_data
from reproduce.errors import UserError
from reproduce.evaluate.harness import group_accuracy, run_lm_eval
from reproduce.evaluate.lm_eval_tasks import write_rublimp_tasks
from reproduce.evaluate.perplexity import eval_blocks, model_perplexity, token_byte_lengths, unigram_perplexity
from reproduce.io import write_json, write_text
from reproduce.model import gpt2_config, parameter_count
from reproduce.paper.build import build_paper
from reproduce.paths import CONF_DIR, project_path
from reproduce.results import run_metadata
from reproduce.train import StageResult, check_stage, run_stage

_AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def evaluate_perplexity(cfg: DictConfig, data: PreparedData, stages: list[StageResult]) -> dict[str, Any]:
    """Each stage's exported model at every configured context, and the unigram baseline, on the same targets."""
    contexts = sorted(set(cfg.eval.perplexity.contexts))
    blocks = eval_blocks(data.shards["test"], max(contexts), cfg.eval.perplexity.max_tokens)
    byte_lengths = token_byte_lengths(data.tokenizer)
    unigram = unigram_perplexity(data.shards["train"], blocks, len(data.tokenizer), byte_lengths)
    autocast = _AUTOCAST.get(str(cfg.trainer.get("precision")))
    rows = []
    for stage in stages:
        model = GPT2LMHeadModel.from_pretrained(stage.export_dir)
        for context in contexts:
            row = model_perplexity(model, blocks, context, byte_lengths, cfg.eval.perplexity.batch_size, autocast)
            row = {"stage": stage.name, **row, "ratio_to_unigram": row["perplexity"] / unigram["perplexity"]}
            print(f"[eval] {stage.name} at context {context}: perplexity {row['perplexity']:.2f} "
                  f"({row['ratio_to_unigram']:.3f}x unigram {unigram['perplexity']:.1f}), "
                  f"{row['bits_per_byte']:.3f} bits/byte", flush=True)
            rows.append(row)
    return {"perplexity": rows, "unigram": unigram}


def evaluate_rublimp(cfg: DictConfig, work_dir: Path, stages: list[StageResult]) -> dict[str, Any]:
    """RuBLiMP through lm-eval for the configured stages; returns {stage: (summary, raw lm-eval results)}."""
    rublimp = cfg.eval.rublimp
    resolver = make_resolver(cfg.data)
    files = {Path(e.path).stem: resolver.resolve(e) for e in read_manifest(project_path(rublimp.manifest))}
    include = write_rublimp_tasks(files, work_dir / "lm_eval_tasks")
    by_name = {stage.name: stage for stage in stages}
    out = {}
    for name in rublimp.stages:
        raw = run_lm_eval(by_name[name].export_dir, include, ["rublimp"], rublimp.batch_size, rublimp.dtype,
                          limit=rublimp.limit)
        out[name] = (group_accuracy(raw, "rublimp"), raw)
        print(f"[eval] {name} RuBLiMP mean accuracy {out[name][0]['mean']:.4f} "
              f"over {out[name][0]['n_pairs']} pairs", flush=True)
    return out


def architectures(vocab_size: int) -> dict[str, Any]:
    """Every conf/model config's architecture and exact parameter count (``vocab_size: null`` = this run's)."""
    models = {}
    for path in sorted((CONF_DIR / "model").glob("*.yaml")):
        config = gpt2_config(OmegaConf.load(path), vocab_size, 0, 0)
        models[path.stem] = {key: getattr(config, key) for key in ("n_layer", "n_embd", "n_head", "n_positions",
                                                                   "vocab_size")}
        models[path.stem]["parameters"] = parameter_count(config)
    return models


def check_config(cfg: DictConfig) -> None:
    """Every check that needs no data, so a wrong setting fails in a second, not after data preparation."""
    model_cfg, trainer_cfg = OmegaConf.to_container(cfg.model), OmegaConf.to_container(cfg.trainer, resolve=True)
    names = list(cfg.stages)
    for i, (name, stage) in enumerate(cfg.stages.items()):
        check_stage(name, OmegaConf.to_container(stage, resolve=True), model_cfg, trainer_cfg, names[:i])
    for name in cfg.eval.rublimp.stages:
        if name not in names:
            raise UserError(f"eval.rublimp.stages: no stage {name!r}; stages are {names}")
    for context in cfg.eval.perplexity.contexts:
        if max(cfg.eval.perplexity.contexts) % context or context > cfg.model.n_positions:
            raise UserError(f"eval.perplexity.contexts={list(cfg.eval.perplexity.contexts)}: each must divide the "
                            f"largest and be at most model.n_positions={cfg.model.n_positions}")
    if cfg.tokenizer.kind not in ("bbpe", "released"):
        raise UserError(f"tokenizer.kind={cfg.tokenizer.kind!r}: use 'bbpe' (train one) or 'released' (a manifest's)")


def run(cfg: DictConfig) -> dict[str, Any]:
    """Run the recipe of ``cfg`` end to end; returns the summary written to ``results/<run>/summary.json``."""
    check_config(cfg)
    started = time.perf_counter()
    work_dir, results_dir = project_path(cfg.paths.work_dir), project_path(cfg.paths.results_dir)
    data = prepare_data(cfg, work_dir)
    timings = {"prepare": time.perf_counter() - started}

    stages: list[StageResult] = []
    for name, stage in cfg.stages.items():
        init_dir = {s.name: s.export_dir for s in stages}.get(stage.get("init_from"))
        result = run_stage(name, OmegaConf.to_container(stage, resolve=True), OmegaConf.to_container(cfg.model),
                           OmegaConf.to_container(cfg.trainer, resolve=True), data.tokenizer, data.shards["train"],
                           data.shards["validation"], work_dir / "models" / name, cfg.seed, init_dir)
        timings[name] = result.seconds
        stages.append(result)

    eval_started = time.perf_counter()
    perplexity = evaluate_perplexity(cfg, data, stages)
    timings["perplexity"] = time.perf_counter() - eval_started
    eval_started = time.perf_counter()
    rublimp = evaluate_rublimp(cfg, work_dir, stages)
    timings["rublimp"] = time.perf_counter() - eval_started
    timings["total"] = time.perf_counter() - started

    meta = run_metadata(
        run=cfg.run_name, seed=cfg.seed, device=str(cfg.trainer.accelerator), dtype=str(cfg.trainer.precision),
        batch_size={name: stage.batch_size for name, stage in cfg.stages.items()},
        eval_batch_size={"perplexity": cfg.eval.perplexity.batch_size, "rublimp": cfg.eval.rublimp.batch_size},
        rublimp_dtype=cfg.eval.rublimp.dtype,
    )
    summary = {
        "meta": meta, "run": cfg.run_name, **perplexity,
        "rublimp": {name: result[0] for name, result in rublimp.items()},
        "stages": {s.name: {"context": s.context, "steps": s.steps, "tokens": s.tokens, "seconds": s.seconds,
                            "tokens_per_second": s.tokens / s.seconds} for s in stages},
        "timings_s": timings,
    }
    write_json(results_dir / "summary.json", summary)
    write_json(results_dir / "curves.json", {"meta": meta, "train": [p for s in stages for p in s.train_curve],
                                             "validation": [p for s in stages for p in s.validation_curve]})
    write_json(results_dir / "data.json", {"meta": meta, **data.report})
    for name, (_, raw) in rublimp.items():
        write_json(results_dir / f"lm_eval_rublimp_{name}.json", {"meta": meta, **raw})
    write_text(results_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    write_json(results_dir.parent / "architectures.json",
               {"meta": meta, "models": architectures(len(data.tokenizer))})
    if cfg.paths.paper_dir:
        build_paper(results_dir.parent, project_path(cfg.paths.paper_dir))
    print(f"[done] {timings['total'] / 60:.1f} min; results in {results_dir}, paper in {cfg.paths.paper_dir}",
          flush=True)
    return summary
