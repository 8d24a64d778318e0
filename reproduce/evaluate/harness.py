"""lm-eval (TaskManager + HFLM) on a Hugging Face model directory, with the package's local tasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lm_eval
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
from lm_eval.utils import handle_non_serializable
from transformers import AutoTokenizer


class QuietHFLM(HFLM):
    """HFLM without its per-request progress bars, which lm-eval turns on with no switch to turn them off."""

    def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list:
        return super().loglikelihood(requests, disable_tqdm=True)

    def loglikelihood_rolling(self, requests: list, disable_tqdm: bool = False) -> list:
        return super().loglikelihood_rolling(requests, disable_tqdm=True)

    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list:
        return super().generate_until(requests, disable_tqdm=True)


def run_lm_eval(model_dir: str | Path, include_path: Path, tasks: list[str], batch_size: int, dtype: str,
                device: str = "cpu", limit: int | None = None, verbose: bool = False) -> dict[str, Any]:
    """Score a causal LM on ``tasks``; returns lm-eval's results (without per-sample logs) as plain JSON.

    Zero-context items are scored after the tokenizer's </s> (the document separator the models are
    trained with), not after a BOS token they never saw.
    """
    eos = AutoTokenizer.from_pretrained(model_dir).eos_token_id
    model = (HFLM if verbose else QuietHFLM)(pretrained=str(model_dir), backend="causal", batch_size=batch_size,
                                             device=device, dtype=dtype, prefix_token_id=eos)
    results = lm_eval.simple_evaluate(
        model=model, tasks=tasks,  # only the package's tasks: indexing lm-eval's own thousands takes ~15 s
        task_manager=TaskManager(include_path=str(include_path), include_defaults=False),
        limit=limit, log_samples=False, bootstrap_iters=0,
    )
    return json.loads(json.dumps(results, default=_plain))


def _plain(value: Any) -> Any:
    """JSON for what lm-eval's results hold besides plain data: a function by its name (its repr has an address)."""
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{value.__module__}.{value.__qualname__}"
    return handle_non_serializable(value)


def group_accuracy(results: dict[str, Any], group: str) -> dict[str, Any]:
    """The group's mean accuracy, the item count, and each subtask's accuracy (keyed without the group prefix)."""
    per_task = {name.removeprefix(f"{group}_"): entry["acc,none"] for name, entry in results["results"].items()
                if name.startswith(f"{group}_")}
    n = sum(results["n-samples"][f"{group}_{name}"]["effective"] for name in per_task)
    return {"mean": results["groups"][group]["acc,none"], "n_pairs": n, "per_phenomenon": per_task}
