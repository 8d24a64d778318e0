"""The published zero- and few-shot baselines of ruGPT-3 (the TAPE leaderboard, RuCoLA's PenLP threshold classifier) as
tables, and the published number beside ours for the released checkpoints scored by `reproduce eval`; every number
traced to its field (differences are :class:`~reproduce.paper.reader.Derived` cells)."""

from __future__ import annotations

from reproduce.core.layout import EVAL, suite_file_name
from reproduce.paper.formats import DASH, NOT_REPORTED, Table
from reproduce.paper.published_tables import PUB, pub_cell
from reproduce.paper.reader import Derived, Num, Results, Scored, combine, demonstrations

TAPE = "tape_leaderboard.csv"
RUCOLA = "rucola_baselines.csv"
SIZES = ("small", "medium", "large")
SHOTS = ("0", "1", "4", "8")  # the leaderboard's k-shot column
LEADERBOARD_MODEL = "sberbank-ai/rugpt3{}_based_on_gpt2"  # ai-forever's earlier name on the Hub
RELEASED = ("ai-forever--rugpt3{}_based_on_gpt2", "sberbank-ai--rugpt3{}_based_on_gpt2")  # results/eval/<folder>/
# The leaderboard's datasets: column prefix, our task (tasks/tape/; None: not in the suite), our metric for `_acc`.
TAPE_TASKS = (("Winograd", "tape_winograd", "acc"), ("RuWorldTree", "tape_ruworldtree", "acc"),
              ("RuOpenBookQA", "tape_ruopenbookqa", "acc"), ("MultiQ", "tape_multiq", "em"),
              ("CheGeKa", "tape_chegeka", "em"), ("Ethics1", None, None), ("Ethics2", None, None))
PENLP = "rucola_penlp"  # the suite and its task
RUCOLA_METRICS = (("in_domain", "mcc", "mcc"), ("in_domain", "accuracy", "acc"),
                  ("out_of_domain", "mcc", "mcc_out_of_domain"), ("out_of_domain", "accuracy", "acc_out_of_domain"))
TAPE_SOURCE = ("the TAPE leaderboard (RussianNLP/tape-benchmark-web, leaderboard/tape_leaderboard.csv @ "
               "e584e068035bc578b7ecef06e6795e21fd656b2e; results/published/tape_leaderboard.csv)")


def _leaderboard(results: Results) -> dict[tuple[str, str], int]:
    """(model, k) -> row index of the TAPE leaderboard, its rows checked."""
    columns = [f"{prefix}_{m}{s}" for prefix, _, _ in TAPE_TASKS for m in ("acc", "f1") for s in ("", "_std")]
    rows = results.published(TAPE, [*columns, "Avg_acc", "Avg_f1"])
    return {(r["Model"], r["k-shot"]): i for i, r in enumerate(rows)}


def _with_std(results: Results, i: int, column: str) -> str:
    value, std = pub_cell(results, TAPE, i, column), pub_cell(results, TAPE, i, column + "_std")
    return combine("{}±{}", value, std) if std != NOT_REPORTED else value


def tape_table(results: Results) -> Table:
    """The TAPE leaderboard's rows of the three ruGPT-3 sizes at every k: presumed to be the paper's TAPE table."""
    index = _leaderboard(results)
    rows = []
    for size in SIZES:
        for k in SHOTS:
            i = index[(LEADERBOARD_MODEL.format(size), k)]
            cells = [combine("{} / {}", _with_std(results, i, f"{prefix}_acc"), _with_std(results, i, f"{prefix}_f1"))
                     for prefix, _, _ in TAPE_TASKS]
            avg = combine("{} / {}", pub_cell(results, TAPE, i, "Avg_acc"),
                          pub_cell(results, TAPE, i, "Avg_f1"))
            rows.append([size, pub_cell(results, TAPE, i, "k-shot"), *cells, avg])
    notes = [
        f"Rows: {TAPE_SOURCE}, model sberbank-ai/rugpt3<size>_based_on_gpt2 (ai-forever's earlier name). Presumed to "
        "be the paper's TAPE table, not read from it: the paper's body could not be read here, and TAPE is the same "
        "group's zero- and few-shot evaluation of the same checkpoints.",
        "Cells: accuracy / F1 in percent (MultiQ and CheGeKa: exact match / F1, which the leaderboard's header calls "
        "_acc / _f1), ± the standard deviation over TAPE's five episodes of k demonstrations (none at k = 0).",
        "The paper's own TAPE table, once transcribed from the PDF into results/published/paper_body_tape.csv, is "
        "table paper_body_tape: it confirms or corrects this presumption. Ours beside these: published_vs_ours.",
    ]
    return Table(name="paper_tape", caption="TAPE, zero- and few-shot: the TAPE leaderboard's ruGPT-3 rows (presumed "
                 "to be the paper's TAPE table)", headers=["model", "k", *(p for p, _, _ in TAPE_TASKS), "average"],
                 rows=rows, notes=notes, sources=[results.label(PUB + TAPE)])


def rucola_table(results: Results) -> Table:
    """RuCoLA's PenLP threshold classifier on ruGPT-3, as published."""
    rows_in = results.published(RUCOLA, ("mcc", "accuracy"))
    rows = [[r["model"], r["split"], r["domain"].replace("_", "-"), pub_cell(results, RUCOLA, i, "mcc"),
             pub_cell(results, RUCOLA, i, "accuracy")] for i, r in enumerate(rows_in)]
    notes = [
        "A threshold on each sentence's penalised log-probability (PenLP, α = 0.8), chosen on the train split; MCC and "
        "accuracy (percent) of the RuCoLA paper's runs, as printed (two decimals) in the saved outputs of "
        "emnlp2022-submit/RuCoLA @ 729337f194e211e6fc18cbb8bf2e17e074c6661f, models_lp/threshold_classification.ipynb "
        "(results/published/rucola_baselines.csv). RuCoLA's test labels are not public: the test rows have no "
        "counterpart of ours; the dev rows are in published_vs_ours.",
    ]
    return Table(name="rucola_baselines", caption="RuCoLA: the PenLP threshold classifier on ruGPT-3 (published)",
                 headers=["model", "split", "domain", "MCC", "accuracy"], rows=rows, notes=notes,
                 sources=[results.label(PUB + RUCOLA)])


def _rucola_dev(results: Results, size: str, domain: str) -> int | None:
    """The row of RuCoLA's published dev result for a size and domain, if there is one."""
    rows = results.published(RUCOLA, ("mcc", "accuracy"))
    return next((i for i, r in enumerate(rows) if (r["model"], r["split"], r["domain"]) == (size, "dev", domain)), None)


def released_folders(results: Results) -> dict[str, str]:
    """size -> the results/eval/ folder of its released checkpoint (the ai-forever name first), where one exists."""
    folders = {}
    for size in SIZES:
        found = [name.format(size) for name in RELEASED if results.glob(f"{EVAL}/{name.format(size)}/*.json")]
        if found:
            folders[size] = found[0]
    return folders


def _ours(results: Results, file: str | None, task: str, metric: str, fmt: str) -> Num | None:
    if file is None or not results.has(file) or metric not in results.value(file, "metrics").get(task, {}):
        return None
    return results.num(file, "metrics", task, metric, fmt=fmt)


def _side_by_side(published: str, ours: Num | None, percent: bool, digits: int) -> list[str]:
    """published, ours, ours − published (in the published units: percent, or MCC); n/r where either is missing."""
    if ours is None:
        return [published, NOT_REPORTED, NOT_REPORTED]
    shown = Derived("percent", f".{digits}f", ours) if percent else ours
    if published == NOT_REPORTED:
        return [published, shown, NOT_REPORTED]
    difference = Derived("percent_minus" if percent else "minus", f"+.{digits}f", ours, published)
    return [published, shown, difference]


def versus_table(results: Results) -> Table:
    """For every published number with a task of ours (TAPE at each k, RuCoLA PenLP on dev): published, ours and the
    difference, per size; ours from results/eval/<released checkpoint>/, n/r until it is scored."""
    index, folders = _leaderboard(results), released_folders(results)
    rows, used = [], set()
    for prefix, task, acc_metric in TAPE_TASKS:
        for column, metric in ((f"{prefix}_acc", acc_metric), (f"{prefix}_f1", "f1")):
            for k in SHOTS if task else ():
                cells = []
                for size in SIZES:
                    file = f"{EVAL}/{folders[size]}/{suite_file_name('tape', int(k))}" if size in folders else None
                    ours = _ours(results, file, task, metric, "g")
                    used.update([file] if ours is not None else [])
                    pub = pub_cell(results, TAPE, index[(LEADERBOARD_MODEL.format(size), k)], column)
                    cells += _side_by_side(pub, ours, percent=True, digits=1)
                shots = pub_cell(results, TAPE, index[(LEADERBOARD_MODEL.format(SIZES[0]), k)], "k-shot")
                rows.append(["TAPE", prefix, metric, shots, *cells])
    for domain, column, metric in RUCOLA_METRICS:
        cells = []
        for size in SIZES:
            i = _rucola_dev(results, size, domain)
            pub = pub_cell(results, RUCOLA, i, column) if i is not None else NOT_REPORTED
            file = f"{EVAL}/{folders[size]}/{suite_file_name(PENLP)}" if size in folders else None
            percent = column == "accuracy"
            ours = _ours(results, file, PENLP, metric, "g" if percent else ".3f")
            used.update([file] if ours is not None else [])
            cells += _side_by_side(pub, ours, percent, digits=2 if percent else 3)
        rows.append(["RuCoLA PenLP, dev", domain.replace("_", "-"), "acc" if percent else "mcc", DASH, *cells])
    notes = [
        f"Published: {TAPE_SOURCE}, and RuCoLA's PenLP threshold classifier (results/published/rucola_baselines.csv). "
        "Rounded as published: TAPE to one decimal, RuCoLA to two.",
        "Ours: the released checkpoint's results/eval/ai-forever--rugpt3<size>_based_on_gpt2/ (or sberbank-ai--...): "
        "`reproduce eval model=ai-forever/rugpt3<size>_based_on_gpt2 suite=tape eval.num_fewshot=<k>` (tape.json at "
        "k = 0, tape_<k>shot.json) and `suite=rucola_penlp` (rucola_penlp.json); n/r until they exist. "
        f"Scored: {', '.join(f'{size} {folder}' for size, folder in folders.items()) or 'none yet'}.",
        "Δ = ours − published in the published units (percentage points; MCC). TAPE's metric per column: acc, f1, em "
        "(the leaderboard's MultiQ/CheGeKa _acc is exact match). The protocols follow the published ones as far as "
        "public sources establish them; the differences are in reproduce/evaluate/tasks/{tape,rucola}/README.md.",
    ]
    headers = ["benchmark", "task", "metric", "k"] + [f"{size} {what}" for size in SIZES
                                                     for what in ("published", "ours", "Δ")]
    return Table(name="published_vs_ours", caption="Published vs ours: TAPE and RuCoLA PenLP for the released ruGPT-3 "
                 "checkpoints", headers=headers, rows=rows, notes=notes,
                 sources=[results.label(PUB + TAPE), results.label(PUB + RUCOLA), *(results.label(f)
                                                                                  for f in sorted(used))])


def published_accuracy(results: Results, scored: Scored) -> dict[str, float]:
    """The published accuracy (a fraction) of each task of a released checkpoint's results file that has one: TAPE's
    `_acc` at the file's k for its acc tasks, and RuCoLA PenLP's in-domain dev accuracy; {} for anything else."""
    size = next((s for s in SIZES for name in RELEASED if scored.model == name.format(s)), None)
    if size is None or scored.of_run:
        return {}
    if scored.label == PENLP:
        i = _rucola_dev(results, size, "in_domain")
        return {PENLP: float(results.value(PUB + RUCOLA, i, "accuracy")) / 100} if i is not None else {}
    k = demonstrations(results, scored)
    if scored.label != suite_file_name("tape", k).removesuffix(".json"):
        return {}
    rows = results.published(TAPE, ())
    i = _leaderboard(results)[(LEADERBOARD_MODEL.format(size), str(k))]
    return {task: float(rows[i][f"{prefix}_acc"]) / 100 for prefix, task, metric in TAPE_TASKS if metric == "acc"}
