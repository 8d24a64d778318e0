"""lm-eval (TaskManager + HFLM) on one causal LM: the scoring settings, each recorded with the results."""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

import lm_eval
from datasets.exceptions import DatasetGenerationError
from lm_eval import evaluator
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import TaskManager
from lm_eval.utils import handle_non_serializable

from reproduce.core.errors import UserError
from reproduce.model.pretrained import load_tokenizer

PREFIX_TOKENS = ("eos", "bos")


def _quiet_git_hash() -> str | None:
    """lm-eval's ``get_git_commit_hash`` (the working directory's commit, in its results), without the "fatal: not a
    git repository" that its git call prints on the terminal outside a checkout."""
    try:
        return subprocess.run(["git", "describe", "--always"], capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


evaluator.get_git_commit_hash = _quiet_git_hash


def too_long(needed: int, max_length: int, text: str) -> UserError:
    return UserError(f"a request needs {needed} tokens and the model's context is {max_length} ({text[:60]!r}...): "
                     "choose a model with a longer context, or leave the task out (eval.tasks)")


def score_once(method: Callable[[list], list], requests: list, key: Callable[[tuple], Hashable]) -> list:
    """``method`` on the distinct requests only (by ``key`` of their arguments), its answers given back to every
    request: deterministic scoring, so a repeated request (TAPE's five zero-shot episodes) costs nothing."""
    index: dict[Hashable, int] = {}
    distinct = []
    for request in requests:
        if (k := key(request.args)) not in index:
            index[k] = len(distinct)
            distinct.append(request)
    answers = method(distinct)
    return [answers[index[key(r.args)]] for r in requests]


def _generation_key(args: tuple) -> Hashable:
    context, settings = args
    return context, json.dumps(settings, sort_keys=True, default=str)


class PackageHFLM(HFLM):
    """HFLM without its per-request progress bars (lm-eval has no switch for them), scoring each distinct request once,
    and with a request longer than the model's context refused in one line instead of silently cut from the left."""

    quiet = True

    def loglikelihood(self, requests: list, disable_tqdm: bool = False) -> list:
        run = functools.partial(super().loglikelihood, disable_tqdm=disable_tqdm or self.quiet)
        return score_once(run, requests, key=tuple)

    def loglikelihood_rolling(self, requests: list, disable_tqdm: bool = False) -> list:
        return super().loglikelihood_rolling(requests, disable_tqdm=disable_tqdm or self.quiet)

    def generate_until(self, requests: list, disable_tqdm: bool = False) -> list:
        for request in requests:
            context, settings = request.args
            needed = len(self.tok_encode(context)) + int(settings.get("max_gen_toks", self.max_gen_toks))
            if needed > self.max_length:
                raise too_long(needed, self.max_length, context)
        run = functools.partial(super().generate_until, disable_tqdm=disable_tqdm or self.quiet)
        return score_once(run, requests, key=_generation_key)

    def _loglikelihood_tokens(self, requests: list, *args: Any, **kwargs: Any) -> list:
        for (context, continuation), context_enc, continuation_enc in requests:
            needed = len(context_enc) + len(continuation_enc) - 1
            if needed > self.max_length:
                raise too_long(needed, self.max_length, context + continuation)
        return super()._loglikelihood_tokens(requests, *args, **kwargs)


def model_arguments(model: str | Path, batch_size: int, dtype: str, device: str, prefix_token: str) -> dict[str, Any]:
    """HFLM's arguments, as ``lm_eval --model hf --model_args`` takes them; the prefix token is an id of the model's
    tokenizer (``eos``: </s>, the document separator the package's models are trained with)."""
    tokenizer = load_tokenizer("model", model)
    prefix_id = getattr(tokenizer, f"{prefix_token}_token_id")
    if prefix_id is None:
        raise UserError(f"eval.prefix_token={prefix_token}: the tokenizer of {model} has no {prefix_token} token; "
                        f"choose one of {', '.join(PREFIX_TOKENS)}")
    return {"pretrained": str(model), "backend": "causal", "dtype": dtype, "device": device,
            "batch_size": batch_size, "prefix_token_id": prefix_id, "trust_remote_code": False}


def cli_model_args(args: dict[str, Any]) -> str:
    """The same arguments as one ``--model_args`` string for the plain lm-eval command line."""
    return ",".join(f"{key}={value}" for key, value in args.items() if key not in ("device", "batch_size"))


def run_lm_eval(model_args: dict[str, Any], include_path: Path | None, tasks: list[str], limit: int | None = None,
                num_fewshot: int | None = None, builtin: bool = False, verbose: bool = False) -> dict[str, Any]:
    """Score a causal LM on ``tasks`` (the package's folder ``include_path``, and lm-eval's own tasks when
    ``builtin``); lm-eval's results (without per-sample logs) as plain JSON, plus ``device``: where it ran."""
    manager = TaskManager(include_path=None if include_path is None else str(include_path),
                          include_defaults=builtin)  # indexing lm-eval's own thousands of tasks takes ~15 s
    missing = [task for task in tasks if task not in manager.all_subtasks and task not in manager.all_groups]
    if missing:
        where = " nor ".join(([str(include_path)] if include_path is not None else [])
                             + (["lm-eval's own tasks"] if builtin else []))
        raise UserError(f"task {', '.join(missing)} not found in {where}: a task file is missing or malformed "
                        "(lm-eval skips a YAML it cannot read); check reproduce/evaluate/tasks/ and suites.yaml")
    model = PackageHFLM(**model_args)
    model.quiet = not verbose
    try:
        results = lm_eval.simple_evaluate(model=model, tasks=tasks, task_manager=manager, limit=limit,
                                          num_fewshot=num_fewshot, log_samples=False, bootstrap_iters=0)
    except (KeyError, IndexError, TypeError, ValueError, DatasetGenerationError) as exc:
        raise UserError(f"lm-eval could not read the documents of {', '.join(tasks)} ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); check the task files in "
                        f"{include_path} and the data files they name") from exc
    return {**json.loads(json.dumps(results, default=_plain)), "device": str(model.device)}


def _plain(value: Any) -> Any:
    """JSON for what lm-eval's results hold besides plain data: a function by its name (its repr has an address)."""
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{value.__module__}.{value.__qualname__}"
    return handle_non_serializable(value)


def task_metrics(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Each task's and group's metrics (``acc``, ``tie``, ``mcc``...; lm-eval's ``,none`` filter suffix dropped),
    with ``n``: the items scored."""
    table: dict[str, dict[str, float]] = {}
    for section in ("results", "groups"):
        for name, entry in results.get(section, {}).items():
            metrics = {key.split(",")[0]: value for key, value in entry.items()
                       if "," in key and "_stderr" not in key and isinstance(value, int | float)}
            table.setdefault(name, {}).update(metrics)
    for name, counts in results.get("n-samples", {}).items():
        table.setdefault(name, {})["n"] = counts["effective"]
    for group, members in results.get("group_subtasks", {}).items():
        table.setdefault(group, {})["n"] = sum(table.get(m, {}).get("n", 0) for m in members)
    return table
