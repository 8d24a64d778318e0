"""The model card of an export (``README.md`` in runs/<run>/models/<stage>/): the Hugging Face Hub's metadata header
and the run's facts, written from the results files (train.json, data.json, summary.json) when the stage is exported
and again when its evaluation is done. Not in the export's SHA256SUMS: it changes as results come in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCardData

from reproduce.config.schema import RecipeConfig
from reproduce.core import layout, records
from reproduce.core.io import write_text
from reproduce.core.records import top_level_tasks

LICENSE = "mit"  # the package's licence; RusLit is public domain
CITATION = """@misc{zmitrovich2023family,
  title={A Family of Pretrained Transformer Language Models for Russian},
  author={Dmitry Zmitrovich and Alexander Abramov and Andrey Kalmykov and Maria Tikhonova and Ekaterina Taktasheva
          and Danil Astafurov and Mark Baushenko and Artem Snegirev and Tatiana Shavrina and Sergey Markov
          and Vladislav Mikhailov and Alena Fenogenova},
  year={2023}, eprint={2309.10931}, archivePrefix={arXiv}, primaryClass={cs.CL}
}"""  # as the model cards of ai-forever/rugpt3*_based_on_gpt2 print it (PUBLISHED.md §6), lines wrapped


def _read(record: records.Record, path: Path) -> dict[str, Any]:
    return record.read(path) if path.is_file() else {}


def eval_results(cfg: RecipeConfig, stage: str) -> list[EvalResult]:
    """The stage's scores in results/<run>/summary.json: perplexity and bits per byte on the run's test documents at
    every context, and its suite's metrics (top-level tasks)."""
    summary = _read(records.summary, cfg.layout.result(layout.SUMMARY))
    test = f"{cfg.run_name} test documents"
    found = []
    for row in summary.get("perplexity", []):
        if row["stage"] == stage:
            for metric in ("perplexity", "bits_per_byte"):
                found.append(EvalResult(task_type="text-generation", dataset_type="text", dataset_name=test,
                                        dataset_split="test", metric_type=metric, metric_value=row[metric],
                                        metric_name=f"{metric} (context {row['context']})",
                                        metric_config=f"context={row['context']}"))
    tasks = summary.get("suite", {}).get(stage, {})
    for task in top_level_tasks(tasks):
        for metric, value in sorted(tasks[task].items()):
            if metric != "n":
                found.append(EvalResult(task_type="text-generation", dataset_type=task, dataset_name=task,
                                        metric_type=metric, metric_value=value,
                                        dataset_config=summary.get("suite_name")))
    return found


def _datasets(cfg: RecipeConfig) -> list[str]:
    """The corpus: a Hugging Face dataset by its id, another source by its name."""
    return [source.dataset if source.kind == "hf" else name for name, source in cfg.data.sources.items()]


def model_card(cfg: RecipeConfig, stage: str) -> str:
    """The card's text: metadata header and body."""
    run, stage_cfg = cfg.layout, cfg.stages[stage]
    record = _read(records.train, run.result(layout.TRAIN)).get("stages", {}).get(stage, {})
    data = _read(records.data, run.result(layout.DATA))
    init_from = stage_cfg.init_from
    base = (run.model_name(init_from) if init_from in cfg.stages else init_from)
    card = ModelCardData(language="ru", license=LICENSE, library_name="transformers", pipeline_tag="text-generation",
                         datasets=_datasets(cfg), base_model=base, model_name=run.model_name(stage),
                         tags=["gpt2", "rugpt3", "reproduction"], eval_results=eval_results(cfg, stage) or None)
    model = cfg.model
    tokens = f"{record['tokens']:,}" if "tokens" in record else "(not yet recorded)"
    train_tokens = data.get("split", {}).get("train", {}).get("tokens")
    lines = [
        f"# {run.model_name(stage)}", "",
        f"Stage `{stage}` of the run `{cfg.run_name}` of the ruGPT-3 reproduction package: a GPT-2 "
        f"({model.n_layer} layers, width {model.n_embd}, {model.n_head} heads, {model.n_positions} positions, "
        f"vocabulary {model.vocab_size}" + (f", {record['parameters']:,} parameters" if "parameters" in record else "")
        + ") trained on Russian text with the recipe of *A Family of Pretrained Transformer Language Models for "
        "Russian* (Zmitrovich et al., arXiv 2309.10931): a short context first, then twice the context.", "",
        "## Training", "",
        f"- Stage: context {stage_cfg.context}, {stage_cfg.epochs:g} epochs of the train split"
        f"{f' ({train_tokens:,} tokens)' if train_tokens else ''}, batch {stage_cfg.batch_size} sequences, "
        f"{tokens} tokens trained" + (f", starting from `{base}`" if base else ", from scratch") + ".",
        f"- Optimizer: AdamW, lr {stage_cfg.optim.lr:g} (warmup {stage_cfg.optim.warmup_fraction:.1%}, cosine to "
        f"{stage_cfg.optim.min_lr:g}), weight decay {stage_cfg.optim.weight_decay:g}, betas "
        f"{list(stage_cfg.optim.betas)}, gradient clipping {stage_cfg.optim.grad_clip}.",
        f"- Data: {', '.join(f'{name} ({source.kind})' for name, source in cfg.data.sources.items())}; tokenizer "
        f"{cfg.tokenizer.kind} of {cfg.tokenizer.vocab_size:,} ids; seed {cfg.seed}; precision "
        f"{cfg.trainer.precision}.",
        f"- The whole config: `results/{cfg.run_name}/config.yaml` of the package; the results in "
        f"`results/{cfg.run_name}/` (train.json, summary.json).", "",
        "## Evaluation", "",
        "The `model-index` above: perplexity and bits per byte on the run's held-out test documents, and zero-shot "
        "Russian tasks through lm-eval, as `results/<run>/summary.json` records them." if card.eval_results else
        "Not evaluated yet.", "",
        "## Citation", "", "```bibtex", CITATION, "```", ""]
    return f"---\n{card.to_yaml()}\n---\n\n" + "\n".join(lines)


def write_model_card(cfg: RecipeConfig, stage: str) -> Path:
    """README.md of the stage's export, from the results files as they are now."""
    path = cfg.layout.model(stage) / layout.MODEL_CARD
    write_text(path, model_card(cfg, stage))
    return path
