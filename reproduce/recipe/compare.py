"""Did it reproduce? A run's headline metrics against a reference's, each within a tolerance measured from the seed
spread: *identical*, *within seed spread*, or *differs*.

The headline metrics are those of ``results/<run>/summary.json``: perplexity and bits per byte of every stage at
every context, the unigram baseline's, and each suite task's metrics (top-level tasks). The reference is another
results folder, a git revision of the checkout (its ``results/<run>/``), or by default the run's committed results
(git), else the copy of them taken before the run rewrote them (``runs/<run>/reference/``). The tolerance of a metric
is ``compare.sigmas`` sample standard deviations of its values over the reference and the seed runs
(``compare.seed_runs``: by default ``<run>_seed1`` to ``_seed3``); where there are fewer than two, only identical
values pass. The verdict goes
to ``results/<run>/verdict.json`` and the spread to ``results/<run>/seed_spread.json``. Only results files are read.

Beside the metrics, the environment each side was made in (its ``meta``: Python, torch, transformers, ..., CPU,
instruction set, GPU, threads, precision), side by side, and what the difference means: in the same environment the
digits are expected *identical*, so any other verdict there is a finding of its own (non-determinism or a code
change); in another one the last digits may differ.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reproduce.config.schema import RecipeConfig
from reproduce.core import records
from reproduce.core.errors import Differs, UserError
from reproduce.core.io import copy_file
from reproduce.core.layout import REFERENCE, SEED_SPREAD, SUMMARY, VERDICT
from reproduce.core.meta import ENVIRONMENT, git, versions
from reproduce.core.paths import SOURCE_ROOT
from reproduce.core.records import top_level_tasks

VERDICTS = ("identical", "within seed spread", "differs")


class NoReference(UserError):
    """Nothing to compare a run with: no committed results, no copy taken before the run, no reference given."""


def headline(summary: dict[str, Any]) -> dict[str, float]:
    """metric -> value of a summary.json: ``<stage> perplexity @<context>``, ``unigram bits_per_byte``,
    ``<stage> <task> <metric>``, ... (suite tasks at the top level only: not RuBLiMP's 45 phenomena)."""
    found: dict[str, float] = {}
    for row in summary.get("perplexity", []):
        for key in ("perplexity", "bits_per_byte"):
            found[f"{row['stage']} {key} @{row['context']}"] = row[key]
    for key in ("perplexity", "bits_per_byte"):
        if key in summary.get("unigram", {}):
            found[f"unigram {key}"] = summary["unigram"][key]
    for stage, tasks in summary.get("suite", {}).items():
        for task in top_level_tasks(tasks):
            for metric, value in sorted(tasks[task].items()):
                if metric != "n":
                    found[f"{stage} {task} {metric}"] = value
    return found


def _summary_file(path: Path, what: str) -> dict[str, Any]:
    try:
        return records.summary.read(path)
    except UserError as exc:
        raise UserError(f"{what}: {exc}") from None


def _git_summary(revision: str, path: Path) -> tuple[dict[str, Any], str] | None:
    """The summary.json of ``path`` (under the checkout) at a git revision, or None where git has none."""
    if SOURCE_ROOT is None:
        return None
    try:
        relative = path.resolve().relative_to(SOURCE_ROOT.resolve()).as_posix()
    except ValueError:  # outside the checkout
        return None
    commit = git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    text = git("show", f"{commit}:{relative}") if commit else None
    if not text:
        return None
    where = f"git {commit[:12]}:{relative}"
    try:
        found = json.loads(text)
    except (ValueError, RecursionError):
        return None
    records.summary.check(Path(where), found)
    return found, where


def load_reference(cfg: RecipeConfig) -> tuple[dict[str, Any], str]:
    """The reference summary and where it came from (see the module's docstring)."""
    run = cfg.layout
    reference = cfg.compare.reference
    if reference is not None:
        folder = Path(reference).expanduser()
        if folder.is_dir() or folder.suffix == ".json":
            path = folder / SUMMARY if folder.is_dir() else folder
            return _summary_file(path, f"compare.reference={reference!r}"), path.as_posix()
        found = _git_summary(reference, run.result(SUMMARY))
        if found is None:
            raise UserError(f"compare.reference={reference!r}: neither a results folder nor a git revision with "
                            f"{run.result(SUMMARY)}; give a folder that holds summary.json, or a commit")
        return found
    found = _git_summary("HEAD", run.result(SUMMARY))
    if found is not None:
        return found
    copy = run.work / REFERENCE / SUMMARY
    if copy.is_file():
        return _summary_file(copy, "the copy taken before the run"), copy.as_posix()
    raise NoReference(f"{run.results}: no reference to compare with (no committed results, no copy taken before the "
                      "run); give compare.reference=<results folder or git revision>")


def keep_reference(cfg: RecipeConfig) -> None:
    """Before a recipe run rewrites its results: a copy of the summary it had, the default reference where git has
    none (an installed package, a run outside the checkout)."""
    run = cfg.layout
    if run.result(SUMMARY).is_file():
        copy_file(run.result(SUMMARY), run.work / REFERENCE / SUMMARY)


@dataclass(frozen=True)
class Spread:
    runs: list[str]  # the reference and the seed runs found
    values: dict[str, list[float]]  # metric -> its value in each run


def seed_spread(cfg: RecipeConfig, reference: dict[str, Any]) -> Spread:
    """The reference's metrics and those of the seed runs (compare.seed_runs) that have results."""
    runs, values = ["reference"], {k: [v] for k, v in headline(reference).items()}
    for name in cfg.compare.seed_runs:
        path = Path(cfg.paths.results) / name / SUMMARY
        if path.is_file():
            runs.append(path.parent.name)
            for key, value in headline(_summary_file(path, f"seed run {path.parent.name}")).items():
                values.setdefault(key, []).append(value)
    return Spread(runs, values)


def verdict(value: float | None, reference: float | None, tolerance: float) -> str:
    if value is None or reference is None:
        return "differs"
    if value == reference:
        return "identical"
    return "within seed spread" if abs(value - reference) <= tolerance else "differs"


# What the digits depend on beside the environment: the recipe's seed (another seed is another run, not a rerun)
COMPARED = {**ENVIRONMENT, "seed": "seed"}


def _labels(keys: list[str]) -> str:
    return ", ".join(COMPARED[k] for k in keys)


def environments(reference: dict[str, Any], run: dict[str, Any], overall: str) -> dict[str, Any]:
    """Both sides' environment and seed (their ``meta``) side by side, which fields differ, which one side does not
    record, what is expected and what the verdict then means (``finding``: one line)."""
    theirs, ours = reference.get("meta") or {}, run.get("meta") or {}
    unrecorded = [k for k in COMPARED if k not in theirs or k not in ours]
    differs = [k for k in COMPARED if k not in unrecorded and theirs[k] != ours[k]]
    unknown = f"; {_labels(unrecorded)} not recorded on both sides" if unrecorded else ""
    commits = (theirs.get("git_commit"), ours.get("git_commit"))
    code = (f"the code changed ({str(commits[0])[:12]} -> {str(commits[1])[:12]})" if commits[0] != commits[1]
            else "the same commit")
    if "seed" in differs:
        expected, finding = "within seed spread", f"within seed spread expected (another {_labels(differs)}{unknown})"
    elif differs:
        expected = "last digits may differ"
        finding = f"last digits may differ (another {_labels(differs)}{unknown})" + (
            ", yet identical" if overall == "identical" else "")
    elif unrecorded:
        expected = "identical if the unrecorded fields agree"
        finding = (f"identical (the recorded environment is the same{unknown})" if overall == "identical" else
                   f"{overall} with the recorded environment the same{unknown}: they may explain it, else it is a "
                   f"finding (non-determinism or a code change; {code})")
    elif overall == "identical":
        expected, finding = "identical", "identical expected (the same environment), and identical"
    else:
        expected = "identical"
        finding = (f"{overall} although the environment is the same: a finding in its own right, non-determinism or "
                   f"a code change; {code}")
    return {"reference": {k: theirs.get(k) for k in COMPARED}, "run": {k: ours.get(k) for k in COMPARED},
            "commits": {"reference": commits[0], "run": commits[1]}, "differs": differs, "unrecorded": unrecorded,
            "expected": expected, "finding": finding}


def compare_run(cfg: RecipeConfig) -> dict[str, Any]:
    """The verdict of results/<run>/ against the reference (written to verdict.json, the spread to
    seed_spread.json)."""
    run = cfg.layout
    summary = _summary_file(run.result(SUMMARY), f"run {cfg.run_name}")
    ours = headline(summary)
    reference, source = load_reference(cfg)
    theirs = headline(reference)
    spread = seed_spread(cfg, reference)
    rows = {}
    for key in [*theirs, *(k for k in ours if k not in theirs)]:
        values = spread.values.get(key, [])
        std = statistics.stdev(values) if len(values) >= 2 else 0.0
        tolerance = cfg.compare.sigmas * std
        value, ref = ours.get(key), theirs.get(key)
        rows[key] = {"reference": ref, "value": value,
                     "difference": None if value is None or ref is None else value - ref,
                     "tolerance": tolerance, "seed_std": std, "seed_mean": statistics.fmean(values) if values else None,
                     "runs": len(values), "verdict": verdict(value, ref, tolerance)}
    overall = max((row["verdict"] for row in rows.values()), key=VERDICTS.index, default="identical")
    rule = (f"tolerance = {cfg.compare.sigmas:g} x the sample standard deviation of the metric over the reference and "
            f"the seed runs ({', '.join(spread.runs)}); identical: the same value to the last digit")
    return {"run": cfg.run_name, "reference": source, "rule": rule, "seed_runs": spread.runs, "verdict": overall,
            "environment": environments(reference, summary, overall), "metrics": rows}


def table(result: dict[str, Any]) -> list[str]:
    """The verdict as a Markdown table, one row per metric."""
    lines = ["| metric | reference | this run | difference | tolerance | verdict |", "|---|---|---|---|---|---|"]
    for key, row in result["metrics"].items():
        cells = [_show(row["reference"]), _show(row["value"]), _show(row["difference"], signed=True),
                 _show(row["tolerance"]), row["verdict"]]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines


def environment_table(env: dict[str, Any]) -> list[str]:
    """The two environments as a Markdown table, one row per field; a differing field is marked."""
    lines = ["| environment | reference | this run | |", "|---|---|---|---|"]
    for key, label in COMPARED.items():
        mark = "differs" if key in env["differs"] else "not recorded" if key in env["unrecorded"] else ""
        cells = ["—" if side[key] is None else str(side[key]) for side in (env["reference"], env["run"])]
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {mark} |")
    return lines


def _show(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.6g}" if signed else f"{value:.6g}"


def differing(result: dict[str, Any]) -> list[str]:
    return [key for key, row in result["metrics"].items() if row["verdict"] == "differs"]


def write_verdict(cfg: RecipeConfig, result: dict[str, Any], meta: dict[str, Any]) -> None:
    run = cfg.layout
    records.verdict.write(run.result(VERDICT), {"meta": meta, **result})
    records.seed_spread.write(run.result(SEED_SPREAD), {
        "meta": meta, "runs": result["seed_runs"], "sigmas": cfg.compare.sigmas,
        "metrics": {key: {"mean": row["seed_mean"], "std": row["seed_std"], "runs": row["runs"]}
                    for key, row in result["metrics"].items() if row["runs"] >= 2}})


def judge(cfg: RecipeConfig) -> dict[str, Any]:
    """The verdict of the run, written to verdict.json and seed_spread.json (which the paper reads)."""
    result = compare_run(cfg)
    write_verdict(cfg, result, {**versions(), "run": cfg.run_name})
    return result


def report_verdict(cfg: RecipeConfig, result: dict[str, Any] | None = None) -> dict[str, Any]:
    """`reproduce compare` and the recipe's last word: print the table of ``result`` (None: ``judge`` it now), and
    raise ``Differs`` (exit code 3, one line naming the metrics) when a metric is outside its tolerance."""
    result = judge(cfg) if result is None else result
    env = result["environment"]
    print("\n".join([f"[verdict] {cfg.run_name} against {result['reference']}: {result['verdict']}; {env['finding']}",
                     *table(result), f"({result['rule']})", "", *environment_table(env)]), flush=True)
    if bad := differing(result):
        raise Differs(f"{len(bad)} metric(s) outside their tolerance: {', '.join(bad)} (results kept in "
                      f"{cfg.layout.results}; {VERDICT} has every row)")
    return result
