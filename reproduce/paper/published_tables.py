"""Tables of the published numbers (``results/published/*.csv``) and of what is derived from them
(``results/plan/*.json``, written by ``reproduce plan``); every number is traced to its field."""

from __future__ import annotations

from reproduce.core.errors import UserError
from reproduce.paper.formats import DASH, NOT_REPORTED, Table
from reproduce.paper.reader import Num, Results, combine

PUB = "published/"
BODY_TABLES = {"russian_superglue": "Russian SuperGLUE", "tape": "TAPE", "probing": "probing",
               "generation": "generation"}
# Every published file the paper reads (the pre-flight of `reproduce paper` checks them before anything runs).
PUBLISHED_FILES = tuple(PUB + name for name in (
    "architectures.csv", "perplexity.csv", "recipe.csv", "hyperparameters.csv", "compute.csv",
    "russian_superglue_leaderboard.csv", "mera_medium.csv", "open_llm_leaderboard.csv", "tape_leaderboard.csv",
    "rucola_baselines.csv", *(f"paper_body_{key}.csv" for key in BODY_TABLES)))


def pub_cell(results: Results, file: str, i: int, column: str, fmt: str = "s") -> str:
    """A published cell as printed, or n/r where the source gives no number."""
    value = results.value(PUB + file, i, column)
    return results.num(PUB + file, i, column, fmt=fmt) if value else NOT_REPORTED


def _plan(model: str) -> str:
    return f"plan/rugpt3_{model}_paper.json"


def recipe_table(results: Results) -> Table:
    """The published two-stage recipe beside what our paper experiments train (``reproduce plan``: steps and
    tokens as training counts them, at our batch size)."""
    rows_in = results.published("recipe.csv", ("context", "epochs", "tokens_per_epoch"))
    rows, sources = [], [results.label(PUB + "recipe.csv")]
    for i, r in enumerate(rows_in):
        plan = _plan(r["model"])
        derived = [DASH] * 3
        if results.has(plan) and r["stage"] in results.load(plan)["stages"]:
            derived = [results.num(plan, "stages", r["stage"], k, fmt=",") for k in ("batch_tokens", "steps", "tokens")]
            sources.append(results.label(plan))
        rows.append([r["model"], r["stage"], pub_cell(results, "recipe.csv", i, "context"),
                     pub_cell(results, "recipe.csv", i, "epochs"),
                     pub_cell(results, "recipe.csv", i, "tokens_per_epoch", ","), *derived])
    notes = [
        "Published: the model cards (results/published/recipe.csv, one source per row); n/r: not reported. "
        "Tokens per epoch: the cards' \"80B\".",
        "Derived (reproduce plan, conf/experiment/rugpt3_*_paper.yaml): our batch in tokens, optimizer steps and "
        "tokens trained over 80B tokens per epoch, counted as training counts them (whole batches of whole windows).",
    ]
    return Table(name="recipe", caption="Pretraining recipe: published stages and epochs; derived steps and tokens of "
                 "our paper experiments", headers=["model", "stage", "context", "epochs", "tokens / epoch",
                                                   "batch tokens (ours)", "steps (derived)", "tokens (derived)"],
                 rows=rows, notes=notes, sources=list(dict.fromkeys(sources)))


# Our value beside a published hyperparameter: its field in results/plan/rugpt3_<model>_paper.json (stage 1), format.
OURS = {"lr": (("config", "stages", "stage1", "optim", "lr"), ".1e"),
        "min_lr": (("config", "stages", "stage1", "optim", "min_lr"), ".1e"),
        "warmup": (("config", "stages", "stage1", "optim", "warmup_fraction"), ".1%"),
        "weight_decay": (("config", "stages", "stage1", "optim", "weight_decay"), "g"),
        "grad_clip": (("config", "stages", "stage1", "optim", "grad_clip"), ".1f"),
        "batch": (("stages", "stage1", "batch_tokens"), ",")}


def hyperparameters_table(results: Results) -> Table:
    """The optimizer values of the authors' example scripts beside those of our paper experiments (stage 1)."""
    file = "hyperparameters.csv"
    rows_in = results.published(file, ("value",))
    rows, sources = [], [results.label(PUB + file)]
    for i, r in enumerate(rows_in):
        plan, (key, fmt) = _plan(r["model"]), OURS.get(r["parameter"], ((), ""))
        ours = DASH
        if key and results.has(plan):
            ours = results.num(plan, *key, fmt=fmt)
            sources.append(results.label(plan))
        rows.append([r["model"], r["parameter"], pub_cell(results, file, i, "value"), ours])
    notes = [
        "Published: ai-forever/ru-gpts @ 1e4b33d scripts/*.sh, example scripts for the Megatron/DeepSpeed code, NOT "
        "stated as the released recipe (results/published/hyperparameters.csv).",
        "Ours: conf/stage/paper_<model>.yaml as reproduce plan records it (results/plan/rugpt3_<model>_paper.json, "
        "stage 1); batch in tokens. Our schedule is linear warmup then cosine decay to min_lr.",
    ]
    return Table(name="hyperparameters", caption="Optimizer hyperparameters: the authors' example scripts and our "
                 "paper experiments", headers=["model", "parameter", "published (scripts)", "ours (stage 1)"],
                 rows=rows, notes=notes, sources=list(dict.fromkeys(sources)))


def _measured_device(devices: dict) -> str | None:
    """The first device of a plan whose MFU was measured (results/perf/), if any."""
    return next((d for d in sorted(devices)
                 if any(s["mfu_source"].startswith("measured") for s in devices[d]["stages"].values())), None)


def compute_table(results: Results) -> Table:
    """Published GPUs and days; derived FLOPs and implied MFU (``reproduce plan``); the GPU-hours the same training
    needs today at the MFU we measured."""
    rows_in = results.published("compute.csv", ("gpus", "days"))
    rows, notes, sources = [], [], [results.label(PUB + "compute.csv")]
    device = None
    for i, r in enumerate(rows_in):
        stages = r["stages"].split("+")
        cells = [pub_cell(results, "compute.csv", i, "gpus"), pub_cell(results, "compute.csv", i, "days")]
        plan = _plan(r["model"])
        derived: list[str] = [DASH] * 6
        if results.has(plan):
            plan_data = results.load(plan)
            sources.append(results.label(plan))
            if plan_data.get("published") and plan_data["published"]["stages"] == stages and r["days"]:
                derived[:4] = [results.num(plan, "published", k, fmt=f) for k, f in
                               (("gpu_hours", ",.0f"), ("flops", ".2e"), ("implied_mfu", ".1%"),
                                ("implied_mfu_6nd", ".1%"))]
            device = device or _measured_device(plan_data["devices"])
            if device in plan_data["devices"]:
                whole = stages == list(plan_data["stages"])
                key = ("devices", device) if whole else ("devices", device, "stages", stages[0])
                per_stage = plan_data["devices"][device]["stages"]
                derived[4] = combine(" / ".join("{}" if per_stage[s]["mfu_source"].startswith("measured")
                                                else "{} (assumed)" for s in stages),
                                     *(results.num(plan, "devices", device, "stages", s, "mfu", fmt=".1%")
                                       for s in stages))
                derived[5] = results.num(plan, *key, "gpu_hours", fmt=",.0f")
        rows.append([r["model"], r["stages"].replace("+", " + "), *cells, *derived])
        notes.append(f"{r['model']} {r['stages']}: \"{r['quote']}\" ({r['source']}; GPU {r['gpu']}, {r['gpu_source']})"
                     + (f"; {r['note']}" if r["note"] else "") + ".")
    notes[:0] = [
        "Derived, not published (reproduce plan, results/plan/rugpt3_*_paper.json): GPU-hours = GPUs x days x 24; "
        "FLOPs = tokens x (6N + 12·L·T·d) of the stages the figure covers; implied MFU = FLOPs / (GPU-hours x the "
        "V100's 125 TFLOP/s fp16 dense peak), and with 6N only.",
        f"Today: GPU-hours of the same stages on one {device or 'measured device'} at the MFU we measured for the "
        "model and context (results/perf/gpu_mfu.json); where none was measured, reproduce plan's assumed MFU "
        "(marked).",
    ]
    name = device or "measured device"
    return Table(name="compute", caption="Pretraining compute: published GPUs and days; derived GPU-hours, FLOPs and "
                 "implied MFU; GPU-hours today at our measured MFU",
                 headers=["model", "stages", "GPUs", "days", "GPU-hours (derived)", "FLOPs (derived)",
                          "implied MFU (derived)", "implied MFU, 6N (derived)", f"{name} MFU (measured)",
                          f"{name} GPU-hours (derived)"], rows=rows, notes=notes, sources=list(dict.fromkeys(sources)))


# Russian SuperGLUE columns: header, then the CSV columns shown in the cell (two: "a / b").
RSG_COLUMNS = (("score", ("score",)), ("LiDiRus MCC", ("lidirus_mcc",)), ("RCB F1 / Acc", ("rcb_f1", "rcb_acc")),
               ("PARus Acc", ("parus_acc",)), ("MuSeRC F1a / EM", ("muserc_f1a", "muserc_em")),
               ("TERRa Acc", ("terra_acc",)), ("RUSSE Acc", ("russe_acc",)), ("RWSD Acc", ("rwsd_acc",)),
               ("DaNetQA Acc", ("danetqa_acc",)), ("RuCoS F1 / EM", ("rucos_f1", "rucos_em")))


def leaderboard_table(results: Results) -> Table:
    """The Russian SuperGLUE leaderboard rows: fine-tuned submissions, never beside zero-shot numbers."""
    file = "russian_superglue_leaderboard.csv"
    rows_in = results.published(file, [c for _, cs in RSG_COLUMNS for c in cs])
    rows = [[r["model"], *(combine(" / ".join(["{}"] * len(cs)), *(pub_cell(results, file, i, c) for c in cs))
                           for _, cs in RSG_COLUMNS)] for i, r in enumerate(rows_in)]
    notes = [
        "Fine-tuned submissions (one model fine-tuned per task), not zero-shot: not comparable with the zero-shot "
        "table. PARus here is the hidden gold test set; ours uses crowd-majority labels.",
        *sorted({r["source"] for r in rows_in}),
    ]
    return Table(name="russian_superglue_leaderboard", caption="Russian SuperGLUE leaderboard (fine-tuned, published)",
                 headers=["model", *(h for h, _ in RSG_COLUMNS)], rows=rows, notes=notes,
                 sources=[results.label(PUB + file)])


def _long_table(results: Results, file: str, name: str, caption: str, keys: tuple[str, ...],
                notes: list[str]) -> Table:
    """A published CSV of one value per row (``keys`` columns, then the value) as a table."""
    rows_in = results.published(file, ("value",))
    rows = [[*(results.num(PUB + file, i, k, fmt="s") if r[k] else DASH for k in keys),
             pub_cell(results, file, i, "value")] for i, r in enumerate(rows_in)]
    notes = notes + sorted({r["source"] for r in rows_in})
    return Table(name=name, caption=caption, headers=[*keys, "value"], rows=rows, notes=notes,
                 sources=[results.label(PUB + file)])


def mera_table(results: Results) -> Table:
    return _long_table(results, "mera_medium.csv", "mera_medium", "MERA leaderboard: ruGPT-3 medium (published)",
                       ("task", "metric", "note"),
                       ["MERA scores few-shot prompts on hidden test labels: not comparable with local numbers.",
                        "value_1, value_2, ...: values printed as \"a / b\" without metric names."])


def open_llm_table(results: Results) -> Table:
    return _long_table(results, "open_llm_leaderboard.csv", "open_llm_leaderboard",
                       "Open LLM Leaderboard (old, English): ruGPT-3 large (published)",
                       ("model", "benchmark", "shots"),
                       ["English benchmarks, few-shot as the shots column says."])




def body_table(results: Results, key: str) -> Table:
    """One of the paper's body tables, as transcribed by hand into ``published/paper_body_<key>.csv``: values where
    filled, n/r where not (the PDF was not available to this project)."""
    file = f"paper_body_{key}.csv"
    rows_in = results.published(file, ("value",))
    filled = [r for r in rows_in if r["value"]]
    missing = [i for i, r in enumerate(rows_in, start=2) if r["value"] and not r["location"]]
    if missing:
        raise UserError(f"{results.path(PUB + file)}: row {missing[0]} has a value but no location; name the "
                        "table, e.g. Table 3")
    columns = list(dict.fromkeys((r["task"], r["metric"]) for r in filled)) or [("", "")]
    models = list(dict.fromkeys(r["model"] for r in rows_in))
    cell: dict[tuple[str, str, str], Num] = {
        (r["model"], r["task"], r["metric"]): results.num(PUB + file, i, "value", fmt="s")
        for i, r in enumerate(rows_in) if r["value"]}
    rows = [[m, *(cell.get((m, t, k), NOT_REPORTED) for t, k in columns)] for m in models]
    headers = ["model", *(f"{t} {k}".strip() or "value" for t, k in columns)]
    if filled:
        places = sorted({f"{r['source']}, {r['location']}" for r in filled})
        notes = [f"Transcribed from the paper: {'; '.join(places)}."]
    else:
        notes = [f"Not transcribed: fill results/published/{file} from the PDF (results/published/README.md says "
                 "how); n/r until then."]
    return Table(name=f"paper_body_{key}", caption=f"The paper's {BODY_TABLES[key]} table (arXiv 2309.10931), as "
                 "transcribed from the PDF", headers=headers, rows=rows, notes=notes,
                 sources=[results.label(PUB + file)])
