"""Scoring any model outside a recipe run: ``reproduce eval model=...`` (the suite and perplexity of each model,
results/eval/<name>/) and ``reproduce generate model=... prompt=...`` (samples, printed). Neither keeps a run
record: the results folder is the model's."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from reproduce.config.schema import RecipeConfig
from reproduce.core import layout, records
from reproduce.core.io import read_json
from reproduce.core.locks import all_locked
from reproduce.core.meta import package_metadata
from reproduce.data.manifest import make_resolver
from reproduce.data.prepared_set import load_prepared
from reproduce.evaluate.inputs import check_results_name, eval_device, named_models, read_texts, record_source
from reproduce.evaluate.runner import evaluate_model, generate_samples, perplexity_of_texts, suite_inputs
from reproduce.evaluate.suites import resolve_suite

log = logging.getLogger("reproduce")


def run_test_texts(run_dir: Path) -> list[str]:
    """The test documents of the run a run directory holds, decoded from its prepared shards."""
    data = load_prepared(Path(read_json(run_dir / layout.PREPARED_POINTER)["folder"]))
    return [data.tokenizer.decode(tokens.tolist()) for _, tokens in data.documents("test")]


def evaluate_models(cfg: RecipeConfig) -> dict[str, Any]:
    """`reproduce eval model=...`: each model ``eval.model`` names on the suite, and its sliding-window perplexity on
    ``eval.perplexity.texts`` (a run's models without texts: the run's test documents); results/eval/<name>/."""
    evaluation = cfg.eval
    refs = named_models(evaluation.model, evaluation.name)
    suite = resolve_suite(evaluation, make_resolver(cfg.data))
    device = eval_device(evaluation.device, cfg.trainer.accelerator)
    folders = layout.EvalLayout.of(cfg.paths.results, cfg.paths.runs)
    tasks = suite_inputs(suite, folders.task_folders(suite.name))
    run_dir = Path(evaluation.model).expanduser()
    texts = read_texts(evaluation.perplexity.texts)
    if not evaluation.perplexity.texts and (run_dir / layout.PREPARED_POINTER).is_file():
        texts.texts = run_test_texts(run_dir)
    results: dict[str, Any] = {}
    with all_locked([(folders.model(ref.name), "scored model") for ref in refs]):
        for ref in refs:
            check_results_name(folders, ref, cfg.overwrite)
            if suite.tasks:  # eval.tasks=[]: perplexity only
                results[ref.name] = evaluate_model(ref, suite, tasks, evaluation, device, cfg.seed,
                                                   folders.suite_file(ref.name, suite.name, evaluation.num_fewshot),
                                                   cfg.verbose)
            if texts.texts:
                row = perplexity_of_texts(ref, texts.texts, evaluation, device)
                meta = {**package_metadata(), "model": ref.name, "source": ref.source, "device": device,
                        "seed": cfg.seed, "texts": evaluation.perplexity.texts or f"{run_dir} test documents",
                        "skipped": texts.skipped}
                records.eval_perplexity.write(folders.perplexity_file(ref.name), {"meta": meta, **row})
                log.info(f"[eval] {ref.name} perplexity {row['perplexity']:.2f}, {row['bits_per_byte']:.3f} "
                         f"bits/byte over {row['tokens']:,} tokens (context {row['context']}, stride {row['stride']})")
            record_source(folders, ref)  # with its results: a model that fails to load leaves nothing
    log.info(f"[done] results in {folders.results}")
    return results


def generate(cfg: RecipeConfig, data: None = None) -> dict[str, list[dict[str, Any]]]:
    """`reproduce generate model=... prompt=...`: samples of each model ``eval.model`` names, printed."""
    gen = cfg.eval.generate
    prompts = [gen.prompt] if gen.prompt is not None else list(gen.prompts)
    device = eval_device(cfg.eval.device, cfg.trainer.accelerator)
    samples = {}
    for ref in named_models(cfg.eval.model, cfg.eval.name):
        samples[ref.name] = generate_samples(ref.source, gen, prompts, device)
        for sample in samples[ref.name]:
            print(f"[{ref.name} #{sample['sample_index']}] {sample['prompt']}{sample['text']}", flush=True)
    return samples
