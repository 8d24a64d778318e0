"""Evaluation floors, measured side by side in one run on the mini recipe's final model.

1. Perplexity: `text_perplexity` (sliding window, the run's test works) in tokens/s over a raw batched forward pass
   with cross-entropy over the very same windows, model and batch size. Floor: 0.9.
2. RuBLiMP through lm-eval (the package's runner: TaskManager, HFLM, the rublimp task folder) in minimal pairs/s over
   a raw batched scoring of the same pairs ([</s>, *sentence] sorted by length, padded, one forward per batch,
   log-softmax, gathered), same model, dtype and batch size; the two must agree on every pair. Floor: 0.7.
3. The whole local suite (ru_local: RuBLiMP, XWinograd-ru, PARus, RuCoLA) through the runner. Floor: 4 minutes.

Needs the mini run's model and prepared data (`make reproduce`). Usage:
    python bench/eval_throughput.py [--model runs/mini/models/stage2] [--out results/perf/eval_throughput.json]
    python bench/eval_throughput.py --smoke --model runs/micro/models/stage2   # 2 items per task (a micro run's model:
        # experiment=micro): seconds; the floors are not judged; written to a temporary file
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
from reproduce.core.logs import silence_progress_bars  # noqa: E402

silence_progress_bars()
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import AutoTokenizer, GPT2LMHeadModel  # noqa: E402

from reproduce.commands.scoring import run_test_texts  # noqa: E402
from reproduce.config.compose import compose_config  # noqa: E402
from reproduce.core.io import write_json  # noqa: E402
from reproduce.core.meta import package_metadata  # noqa: E402
from reproduce.data.manifest import make_resolver  # noqa: E402
from reproduce.evaluate.harness import model_arguments, run_lm_eval, task_metrics  # noqa: E402
from reproduce.evaluate.inputs import ModelRef, text_files  # noqa: E402
from reproduce.evaluate.perplexity import text_perplexity, text_windows  # noqa: E402
from reproduce.evaluate.runner import evaluate_model, suite_inputs  # noqa: E402
from reproduce.evaluate.suites import resolve_suite  # noqa: E402

BATCH = 64


@torch.no_grad()
def raw_perplexity_seconds(model: GPT2LMHeadModel, tokenizer, texts: list[str], context: int, stride: int) -> float:
    """Seconds of a bare batched forward + cross-entropy over the same windows (inputs built before timing)."""
    windows = [w for text in texts for w in text_windows([tokenizer.eos_token_id] + tokenizer(
        text, add_special_tokens=False)["input_ids"], context, stride)]
    batches = []
    for i in range(0, len(windows), BATCH):
        chunk = windows[i : i + BATCH]
        width = max(len(ids) for ids, _, _ in chunk)
        inputs = torch.zeros(len(chunk), width, dtype=torch.long)
        targets = torch.full((len(chunk), width), -100, dtype=torch.long)
        for row, (ids, target, scored) in enumerate(chunk):
            inputs[row, : len(ids)] = torch.tensor(ids)
            targets[row, len(target) - scored : len(target)] = torch.tensor(target[len(target) - scored :])
        batches.append((inputs, targets))
    started = time.perf_counter()
    for inputs, targets in batches:
        F.cross_entropy(model(input_ids=inputs).logits.flatten(0, 1), targets.flatten(), reduction="sum")
    return time.perf_counter() - started


def rublimp_pairs(tasks: Path, limit: int | None) -> list[tuple[str, str]]:
    """The pairs lm-eval scores: the first ``limit`` of each phenomenon's resolved CSV in the task's own order (its
    ``utils.rows``: one fixed seeded shuffle)."""
    import datasets

    spec = importlib.util.spec_from_file_location("rublimp_utils", tasks / "rublimp" / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    pairs = []
    for task in sorted((tasks / "rublimp").glob("*.yaml")):
        if task.name.startswith("_"):
            continue
        data = task.read_text(encoding="utf-8").split("train: ")[1].strip()
        with open(data, encoding="utf-8", newline="") as f:
            rows = utils.rows(datasets.Dataset.from_list(list(csv.DictReader(f))))[:limit]
        pairs += [(row["source_sentence"], row["target_sentence"]) for row in rows]
    return pairs


@torch.no_grad()
def raw_rublimp(model: GPT2LMHeadModel, tokenizer, pairs: list[tuple[str, str]]) -> tuple[float, float]:
    """(seconds, accuracy) of a bare batched scoring of every sentence after </s>, tokenization included."""
    started = time.perf_counter()
    sentences = [s for pair in pairs for s in pair]
    ids = [[tokenizer.eos_token_id, *row] for row in tokenizer(sentences, add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    scores = torch.zeros(len(ids), dtype=torch.float64)
    for i in range(0, len(order), BATCH):
        rows = order[i : i + BATCH]
        width = len(ids[rows[0]])
        inputs = torch.zeros(len(rows), width, dtype=torch.long)
        mask = torch.zeros(len(rows), width - 1, dtype=torch.bool)
        for r, index in enumerate(rows):
            inputs[r, : len(ids[index])] = torch.tensor(ids[index])
            mask[r, : len(ids[index]) - 1] = True
        logp = torch.log_softmax(model(input_ids=inputs[:, :-1]).logits, -1)
        picked = logp.gather(2, inputs[:, 1:, None]).squeeze(2)
        scores[rows] = (picked * mask).sum(1).double()
    seconds = time.perf_counter() - started
    good, bad = scores[0::2], scores[1::2]
    return seconds, float((good > bad).double().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "runs" / "mini" / "models" / "stage2")
    parser.add_argument("--limit", type=int, default=None, help="RuBLiMP pairs per phenomenon (default: all 1,000)")
    parser.add_argument("--texts", help="text files (a glob) for the perplexity part (default: the run's test works)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default results/perf/eval_throughput.json (--smoke: a temporary file)")
    parser.add_argument("--smoke", action="store_true", help="2 items per task (RuBLiMP pairs per phenomenon too)")
    args = parser.parse_args()
    if args.smoke and args.limit is None:
        args.limit = 2
    args.out = args.out or (Path(tempfile.gettempdir()) / "eval_throughput_smoke.json" if args.smoke
                            else ROOT / "results" / "perf" / "eval_throughput.json")
    if not (args.model / "model.safetensors").is_file():
        raise SystemExit(f"{args.model}: no model.safetensors; run `make reproduce` first (or pass --model)")
    cfg = compose_config("reproduce", [f"eval.limit={args.limit}"] if args.smoke else [])
    model = GPT2LMHeadModel.from_pretrained(args.model).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    context = model.config.n_positions
    stride = context // 2
    texts = ([f.read_text(encoding="utf-8") for f in text_files(args.texts)] if args.texts
             else run_test_texts(args.model.parents[1]))

    with torch.no_grad():  # warm-up: the first forward passes allocate; neither side should pay for them
        model(input_ids=torch.zeros(BATCH, context, dtype=torch.long))
    started = time.perf_counter()
    ppl = text_perplexity(model, tokenizer, texts, context, stride, BATCH, None)
    ppl_seconds = time.perf_counter() - started
    raw_ppl_seconds = raw_perplexity_seconds(model, tokenizer, texts, context, stride)
    ppl_ratio = raw_ppl_seconds / ppl_seconds
    print(f"perplexity: {ppl['tokens'] / ppl_seconds:,.0f} tokens/s (perplexity {ppl['perplexity']:.2f}); raw "
          f"forward {ppl['tokens'] / raw_ppl_seconds:,.0f} tokens/s", flush=True)

    suite = resolve_suite(cfg.eval, make_resolver(cfg.data))  # the default suite, ru_local
    with tempfile.TemporaryDirectory() as tmp:
        tasks = suite_inputs(suite, Path(tmp) / "tasks")
        pairs = rublimp_pairs(tasks, args.limit)
        model_args = model_arguments(args.model, BATCH, "float32", "cpu", "eos")
        started = time.perf_counter()
        rublimp = task_metrics(run_lm_eval(model_args, tasks, ["rublimp"], limit=args.limit))["rublimp"]
        harness_seconds = time.perf_counter() - started
        raw_seconds, raw_acc = raw_rublimp(model, tokenizer, pairs)
        if abs(raw_acc - rublimp["acc"]) > 1e-9 or rublimp["n"] != len(pairs):
            raise SystemExit(f"lm-eval and the raw scoring disagree: {rublimp} vs {raw_acc} on {len(pairs)} pairs")
        print(f"RuBLiMP: lm-eval {len(pairs) / harness_seconds:,.1f} pairs/s, raw {len(pairs) / raw_seconds:,.1f} "
              f"pairs/s; accuracy {raw_acc:.4f} both", flush=True)

        started = time.perf_counter()
        metrics = evaluate_model(ModelRef("bench", str(args.model)), suite, tasks, cfg.eval, "cpu", cfg.seed,
                                 Path(tmp) / "ru_local.json")
        suite_seconds = time.perf_counter() - started

    result = {
        "meta": {**package_metadata(), "model": str(args.model), "dtype": "float32", "device": "cpu",
                 "batch_size": BATCH, "seed": cfg.seed, "rublimp_limit": args.limit},
        "perplexity": {"tokens": ppl["tokens"], "context": context, "stride": stride, "seconds": ppl_seconds,
                       "raw_seconds": raw_ppl_seconds, "ratio": ppl_ratio, "floor": 0.9},
        "rublimp": {"pairs": len(pairs), "seconds": harness_seconds, "raw_seconds": raw_seconds,
                    "accuracy": raw_acc, "ratio": raw_seconds / harness_seconds, "floor": 0.7},
        "ru_local": {"seconds": suite_seconds, "floor_seconds": 240,
                     "metrics": {task: metrics[task] for task in suite.tasks}},
    }
    write_json(args.out, result)
    print(f"\nwritten {args.out}")
    print(f"perplexity tokens/s over raw forward: {ppl_ratio:.2f} (floor 0.9)")
    print(f"RuBLiMP pairs/s through lm-eval over raw scoring: {raw_seconds / harness_seconds:.2f} (floor 0.7)")
    print(f"whole local suite: {suite_seconds:.0f} s (floor 240 s)")


if __name__ == "__main__":
    main()
