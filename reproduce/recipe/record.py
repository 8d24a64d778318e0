"""The record of which config made a run's results, and what it lets a command reuse.

``results/<run>/`` holds what each step wrote as soon as it finished (the step table, reproduce/recipe/steps.py, names
the files) and ``config.yaml``, the values each of those steps read. ``runs/<run>/`` keeps the same record for its
artifacts (prepared.json naming the prepared set, models). A run whose config differs from the record stops before
any work unless ``overwrite=true``; then the results of the changed step and of every step that reads them are
removed first.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from pathlib import Path
from typing import Any

import yaml

from reproduce.config.schema import RecipeConfig
from reproduce.core.checksums import sums_problem
from reproduce.core.errors import UserError
from reproduce.core.io import read_input_text, remove_all, remove_temporaries, write_text
from reproduce.core.layout import CHECKPOINTS, EVAL_CURVE_DIR, LOGS, RECORD, TRACKER_STATE
from reproduce.recipe.steps import NAMES, NOT_RESULT_KEYS, STEP, downstream, step_keys

WATCHING = (EVAL_CURVE_DIR, TRACKER_STATE)  # the in-training evaluation's raw output, the trackers' state

# ------------------------------------------------------------------------------- the record of the config


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict) and tree:
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: tree}


def _counts(key: str) -> bool:
    return not any(fnmatch.fnmatchcase(key, pattern) for pattern in NOT_RESULT_KEYS)


def step_values(cfg: RecipeConfig, steps: tuple[str, ...]) -> dict[str, Any]:
    """The config values the given steps read, as plain data."""
    plain = dataclasses.asdict(cfg)
    return {key: plain[key] for step in steps for key in step_keys(cfg, step)}


def read_record(folder: Path, overwrite: bool = False) -> dict[str, Any]:
    """A folder's config record ({} where there is none); an unreadable one is one line, unless it is being
    replaced (``overwrite``)."""
    path = folder / RECORD
    if not path.is_file():
        return {}
    try:
        record = yaml.safe_load(read_input_text(path))
        if not isinstance(record, dict):
            raise ValueError("not a mapping of config keys")
    except (OSError, ValueError, yaml.YAMLError) as exc:  # UnicodeDecodeError is a ValueError
        if overwrite:
            return {}
        reason = " ".join(str(exc).split())[:160]
        raise UserError(f"{path}: unreadable config record ({reason}); pass overwrite=true to replace the run's "
                        "results, or choose another run_name") from None
    return record


def outputs(folder: Path, step: str, kind: str) -> list[Path]:
    """What ``step`` wrote in ``folder``: its ``results`` (results/<run>/, and what is derived from them) or its
    ``artifacts`` (runs/<run>/)."""
    patterns = (*STEP[step].results, *STEP[step].derived) if kind == "results" else STEP[step].artifacts
    return [path for pattern in patterns for path in folder.glob(pattern)]


def changed_steps(record: dict[str, Any], cfg: RecipeConfig, steps: tuple[str, ...]) -> dict[str, list[str]]:
    """For each step whose recorded values differ from ``cfg``'s: the differing keys as 'key: old -> new'."""
    changed = {}
    for step in steps:
        if not all(key in record for key in step_keys(cfg, step)):
            continue
        old = _flatten({key: record[key] for key in step_keys(cfg, step)})
        new = _flatten(step_values(cfg, (step,)))
        diffs = [f"{key}: {old.get(key, '(absent)')} -> {new.get(key, '(absent)')}"
                 for key in sorted(set(old) | set(new)) if _counts(key) and old.get(key) != new.get(key)]
        if diffs:
            changed[step] = diffs
    return changed


def check_record(cfg: RecipeConfig, steps: tuple[str, ...]) -> None:
    """Stop (one line) if results/<run>/ or runs/<run>/ hold outputs of another config, or outputs that their record
    (config.yaml) does not vouch for, unless overwrite=true: nothing is removed that the user did not ask to replace."""
    if cfg.overwrite:
        return
    for folder, kind in ((cfg.layout.results, "results"), (cfg.layout.work, "artifacts")):
        record = read_record(folder)
        for step in NAMES:
            found = outputs(folder, step, kind)
            if found and not all(key in record for key in step_keys(cfg, step)):
                raise UserError(f"{folder} holds {found[0].name} of {step}, and its {RECORD} does not say which "
                                f"config made it; pass overwrite=true to replace the run's outputs, or choose another "
                                "run_name")
        changed = changed_steps(record, cfg, steps)
        if changed:
            diffs = [d for step in changed.values() for d in step]
            more = f" (and {len(diffs) - 1} more)" if len(diffs) > 1 else ""
            raise UserError(f"{folder} holds results of another config ({diffs[0]}{more}); choose another "
                            f"run_name=..., or pass overwrite=true to replace them")


def missing_output(cfg: RecipeConfig, step: str) -> str | None:
    """What a finished ``step`` would have written for ``cfg`` and is not there ("<path> is missing"), or is damaged
    (an export that does not match its SHA256SUMS); None when all is there."""
    run = cfg.layout
    needed = [run.result(name) for name in STEP[step].results if "*" not in name]
    # checkpoints, logs and what watching a run leaves may be cleaned away once a stage is exported: the models and
    # results are what count
    needed += [run.work / name for name in STEP[step].artifacts if name not in (CHECKPOINTS, LOGS, *WATCHING)]
    missing = next((path for path in needed if not path.exists()), None)
    if missing is not None:
        return f"{missing} is missing"
    if step == "train":
        for name in cfg.stages:
            if problem := sums_problem(run.model(name)):
                return f"the export {run.model(name)} is not intact: {problem}"
    return None


def require_step(cfg: RecipeConfig, step: str, command: str) -> None:
    """What an earlier ``step`` wrote exists for this config (checked when a later command runs on its own)."""
    record = read_record(cfg.layout.work)
    missing = missing_output(cfg, step)
    if missing or not all(key in record for key in step_keys(cfg, step)) or changed_steps(record, cfg, (step,)):
        found = f" ({missing})" if missing else ""
        raise UserError(f"{cfg.layout.work}: no {step} output for this config{found}; run `reproduce {step}` with the "
                        f"same overrides before `reproduce {command}`")


def start_steps(cfg: RecipeConfig, steps: tuple[str, ...]) -> None:
    """Before a command's work: remove outputs that no record vouches for, or that a changed step (or
    ``resume=never``) makes stale, from the first such step on; then record the config. What is left is reusable."""
    for folder, kind in ((cfg.layout.results, "results"), (cfg.layout.work, "artifacts")):
        record = read_record(folder, cfg.overwrite)
        unvouched = [step for step in NAMES if not all(key in record for key in step_keys(cfg, step))]
        redo = [*changed_steps(record, cfg, steps), *unvouched, *(steps if cfg.resume == "never" else ())]
        stale = downstream(redo)
        remove_all([path for step in stale for path in outputs(folder, step, kind)])  # a link: refused, nothing removed
        for step in stale:
            for key in step_keys(cfg, step):
                record.pop(key, None)
        record.update(step_values(cfg, steps))
        record = {"run_name": cfg.run_name, **{k: record[k] for s in NAMES for k in step_keys(cfg, s) if k in record}}
        write_text(folder / RECORD, yaml.safe_dump(record, sort_keys=False, allow_unicode=True))


def remove_stale_temporaries(*folders: Path) -> None:
    """Temporary files and folders (``.*.tmp``) that a killed write left behind (call on rank zero only: in a
    multi-process run the others start while it works)."""
    for folder in folders:
        remove_temporaries(folder)
