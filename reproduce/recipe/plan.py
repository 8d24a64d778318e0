"""``reproduce plan``: what a recipe costs, from its config alone (no corpus, tokenizer, model or GPU is touched).

For each stage: tokens, optimizer steps, global batch, micro-batch and accumulation at the config's world size,
training FLOPs, an estimate of the memory per GPU, and the GPU-hours and wall-clock days on each device of
``reproduce.core.perf.PLAN_DEVICES`` at an assumed MFU (``plan.mfu``) or one measured in ``results/perf/gpu_mfu.json``.
A published compute figure (``plan.published``) is printed beside the estimate with the MFU it implies. One table
goes to stdout and to ``results/plan/<run_name>.md``; every number to ``results/plan/<run_name>.json``.
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reproduce.config.schema import ModelConfig, RecipeConfig, StageConfig
from reproduce.core import records
from reproduce.core.arithmetic import ARCHITECTURE_KEYS, flops_per_token, gpt2_parameters, stage_counts
from reproduce.core.errors import UserError
from reproduce.core.io import open_input_text, read_input_text, write_text
from reproduce.core.layout import DATA, GPU_MFU, plan_files, published_file
from reproduce.core.paths import CONF_DIR
from reproduce.core.perf import PLAN_DEVICES, compute_dtype, find_peak, peak_by_name
from reproduce.core.records import read_gpu_mfu

COMPUTE_CSV = "compute.csv"  # the published compute of each model (results/published/)
GIB = 2**30
ACTIVATION_BYTES_PER_LAYER = 34  # x s·b·h: Korthikanti et al. 2022, eq. 1 without the 5·a·s²·b of eager attention
CHECKPOINTED_BYTES_PER_LAYER = 2  # x s·b·h: a checkpointed block keeps its 16-bit input only
HALF_PARAMETERS = ("bf16-true", "16-true")  # precisions whose weights (and so grads and Adam states) are 16-bit

# ------------------------------------------------------------------------------------------------ inputs


def model_name(model: ModelConfig) -> str | None:
    """The conf/model option with this architecture (its name keys results/perf/gpu_mfu.json), or None."""
    for path in sorted((CONF_DIR / "model").glob("*.yaml")):
        spec = yaml.safe_load(read_input_text(path)) or {}
        # an interpolation (mini's vocab_size: ${tokenizer.vocab_size}) matches any value
        if all(spec.get(key) == getattr(model, key) for key in ARCHITECTURE_KEYS
               if not isinstance(spec.get(key), str)):
            return path.stem
    return None


def corpus_tokens(cfg: RecipeConfig) -> tuple[int, str]:
    """Tokens one epoch covers, and where the number comes from: plan.corpus_tokens, else results/<run>/data.json."""
    if cfg.plan.corpus_tokens is not None:
        return cfg.plan.corpus_tokens, "plan.corpus_tokens"
    path = cfg.layout.result(DATA)
    if not path.is_file():
        raise UserError(f"plan.corpus_tokens is not set and {path} does not exist: give the corpus size, e.g. "
                        "plan.corpus_tokens=80000000000, or run `reproduce prepare` first")
    try:
        tokens = records.read_json_file(path)["split"]["train"]["tokens"]  # the one field a plan reads
    except (KeyError, TypeError):
        tokens = None
    if not isinstance(tokens, int) or tokens < 1:
        raise UserError(f"{path}: no train split token count (split.train.tokens); run `reproduce prepare` again or "
                        "set plan.corpus_tokens")
    return tokens, f"the train split of {path}"


@dataclass(frozen=True)
class Measured:
    """One measured MFU of the package's training path (a run of results/perf/gpu_mfu.json)."""
    row: str  # the PLAN_DEVICES row of the card
    card: str  # the device name as measured
    model: str
    context: int
    micro_batch: int | None
    mfu: float


def read_measured(path: Path) -> list[Measured]:
    """The measured MFUs of the package's training path as configured (path "package", no variant overrides), on a
    card that is a plan row; none where the file does not exist; one line if it is malformed."""
    if not path.is_file():
        return []
    measured = read_gpu_mfu(path)
    peak = find_peak(measured.device)
    if peak is None or peak.name not in PLAN_DEVICES:
        return []
    return [Measured(peak.name, measured.device, run.model, run.context, run.micro_batch, float(run.mfu))
            for run in measured.runs if run.path == "package" and not run.variant and run.mfu is not None]


def pick_measured(runs: list[Measured], row: str, model: str | None, context: int, micro_batch: int) -> Measured | None:
    """The run of this device row, model and context; at the stage's micro-batch if measured, else the best MFU."""
    matches = [r for r in runs if (r.row, r.model, r.context) == (row, model, context)]
    same_batch = [r for r in matches if r.micro_batch == micro_batch]
    return max(same_batch or matches, key=lambda r: r.mfu, default=None)


# ------------------------------------------------------------------------------------------------ arithmetic


def counts(name: str, stage: StageConfig, corpus: int, world_size: int) -> dict[str, int]:
    """The stage's windows, optimizer steps, tokens, batch and accumulation, counted as training counts them
    (reproduce/core/arithmetic.py)."""
    found = stage_counts(stage, corpus, world_size)
    if found.steps < 1:
        raise UserError(f"stages.{name}.epochs={stage.epochs}: gives no optimizer step ({found.windows:,} windows of "
                        f"{stage.context} in {corpus:,} corpus tokens, batch {stage.batch_size}); raise "
                        "plan.corpus_tokens or epochs, or lower batch_size")
    return dataclasses.asdict(found)


def state_shards(cfg: RecipeConfig) -> tuple[int, int]:
    """Over how many GPUs the weights and the (gradients + AdamW states) are split: FSDP's FULL_SHARD splits all
    three over the world, SHARD_GRAD_OP gradients and states only, HYBRID_SHARD all three within a node."""
    trainer = cfg.trainer
    if not trainer.strategy.startswith("fsdp"):
        return 1, 1
    return {"FULL_SHARD": (cfg.world_size, cfg.world_size), "SHARD_GRAD_OP": (1, cfg.world_size),
            "HYBRID_SHARD": (trainer.devices, trainer.devices)}.get(trainer.fsdp.sharding_strategy, (1, 1))


def memory_per_gpu(cfg: RecipeConfig, stage: StageConfig, parameters: int) -> dict[str, float]:
    """An estimate of one GPU's training memory for one stage, in GiB, as the sum of:

    - weights: 4 bytes/parameter (fp32; also under mixed precision, whose master weights are the fp32 ones;
      2 under bf16-true/16-true), divided over the shards of ``state_shards``;
    - gradients and AdamW m and v: 3 x the weights' width (12 bytes/parameter in fp32), divided likewise;
      so 16 bytes/parameter unsharded;
    - activations of one micro-batch: 34·s·b·h bytes per layer (Korthikanti et al. 2022, "Reducing Activation
      Recomputation in Large Transformer Models", eq. 1 for 16-bit activations, without its 5·a·s²·b term: flash
      attention keeps no score matrix), times n_layer; with trainer.fsdp.activation_checkpointing (FSDP only)
      2·s·b·h per layer (each block's input) plus one block's 34·s·b·h while it is recomputed; doubled for fp32
      activations (32-true);
    - logits: s·b·V x 10 bytes (16-bit logits, their fp32 upcast and its fp32 gradient; 8 bytes in fp32), for
      trainer.loss_chunk_tokens tokens at a time instead of s·b under trainer.loss=chunked.

    s = context, b = micro-batch, h = n_embd, V = vocab_size. Not counted: the CUDA context, allocator
    fragmentation, communication buffers, and FSDP's gathered units; trainer.fsdp.cpu_offload is not modelled.
    """
    trainer, model = cfg.trainer, cfg.model
    width = 2 if trainer.precision in HALF_PARAMETERS else 4
    sixteen_bit = compute_dtype(trainer.precision) in ("bf16", "fp16")
    weight_shards, state_shards_ = state_shards(cfg)
    tokens = stage.context * stage.micro_batch_size
    layer = ACTIVATION_BYTES_PER_LAYER * tokens * model.n_embd * (1 if sixteen_bit else 2)
    if trainer.strategy.startswith("fsdp") and trainer.fsdp.activation_checkpointing:
        block_inputs = CHECKPOINTED_BYTES_PER_LAYER * tokens * model.n_embd * (1 if sixteen_bit else 2)
        activations = model.n_layer * block_inputs + layer
    else:
        activations = model.n_layer * layer
    logit_tokens = min(tokens, trainer.loss_chunk_tokens) if trainer.loss == "chunked" else tokens
    parts = {"weights": parameters * width / weight_shards,
             "gradients_and_optimizer": parameters * 3 * width / state_shards_,
             "activations": activations, "logits": logit_tokens * model.vocab_size * (10 if sixteen_bit else 8)}
    gib = {key: value / GIB for key, value in parts.items()}
    return {**gib, "total": sum(gib.values())}


def device_peak(name: str, precision: str) -> tuple[float | None, str | None]:
    """The device's dense peak FLOP/s for the precision's compute dtype, and the dtype used (a bf16 precision on a
    device without bf16, the V100, counts at its fp16 peak: one trains there with 16-mixed)."""
    peak, dtype = peak_by_name(name), compute_dtype(precision)
    if dtype == "bf16" and dtype not in peak.flops:
        dtype = "fp16"
    return peak.flops.get(dtype) if dtype else None, dtype


def gpu_time(flops: float, mfu: float, peak: float | None, world_size: int) -> tuple[float | None, float | None]:
    """GPU-hours = FLOPs / (MFU x peak) / 3600, and wall-clock days = GPU-hours / world size / 24."""
    if peak is None:
        return None, None
    hours = flops / (mfu * peak) / 3600
    return hours, hours / world_size / 24


# ------------------------------------------------------------------------------------------------ the plan


def _device_rows(cfg: RecipeConfig, stages: dict[str, dict[str, Any]], model: str | None) -> dict[str, Any]:
    measured = read_measured(Path(cfg.paths.results) / GPU_MFU) if cfg.plan.use_measured else []
    rows = {}
    for name in PLAN_DEVICES:
        peak, dtype = device_peak(name, cfg.trainer.precision)
        per_stage = {}
        for stage_name, stage in stages.items():
            run = pick_measured(measured, name, model, stage["context"], stage["micro_batch"])
            mfu = run.mfu if run else cfg.plan.mfu
            hours, days = gpu_time(stage["flops"], mfu, peak, cfg.world_size)
            per_stage[stage_name] = {"mfu": mfu, "mfu_source": f"measured on {run.card}" if run else "assumed",
                                     "gpu_hours": hours, "days": days}
        known = peak is not None
        rows[name] = {"peak_flops": peak, "dtype": dtype, "stages": per_stage,
                      "gpu_hours": sum(s["gpu_hours"] for s in per_stage.values()) if known else None,
                      "days": sum(s["days"] for s in per_stage.values()) if known else None}
    return rows


def published_compute(results: str | Path, model: str) -> dict[str, Any]:
    """The row of results/published/compute.csv for ``model`` that gives both GPUs and days: the GPUs, days, card (a
    row of reproduce/core/perf.py), the stages it covers, its quote and source."""
    path = published_file(results, COMPUTE_CSV)
    try:
        with open_input_text(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("model") == model]
    except OSError as exc:
        raise UserError(f"plan.published={model!r}: {path} cannot be read ({exc.strerror}); copy results/published/ "
                        "from the repository into paths.results, or pass plan.published=null") from None
    row = next((r for r in rows if (r.get("gpus") or "").strip() and (r.get("days") or "").strip()), None)
    if row is None:
        raise UserError(f"plan.published={model!r}: {path} has no row of that model with GPUs and days; choose one of "
                        "its models, or null")
    peak = find_peak(row.get("gpu") or "")
    if peak is None:
        raise UserError(f"{path}: the gpu {row.get('gpu')!r} of model {model} is not in reproduce/core/perf.py's table")
    return {"model": model, "gpus": int(row["gpus"]), "days": _number(row["days"]), "device": peak.name,
            "gpu": row["gpu"], "stages": row["stages"].split("+"), "quote": row["quote"], "source": row["source"]}


def _number(text: str) -> int | float:
    return int(text) if text.strip().lstrip("-").isdigit() else float(text)


def _published(cfg: RecipeConfig, stages: dict[str, dict[str, Any]], parameters: int) -> dict[str, Any] | None:
    """The published figure, its GPU-hours, and the MFU it implies for this plan's FLOPs of the stages it covers,
    at the device's fp16 tensor peak (the V100 has no bf16); also with 6·N·D FLOPs alone."""
    if cfg.plan.published is None:
        return None
    pub = published_compute(cfg.paths.results, cfg.plan.published)
    absent = [name for name in pub["stages"] if name not in stages]
    if absent:
        raise UserError(f"plan.published={cfg.plan.published!r}: the published figure covers stages "
                        f"{', '.join(pub['stages'])}, and this recipe has no {', '.join(absent)}")
    hours = pub["gpus"] * pub["days"] * 24
    peak = peak_by_name(pub["device"]).flops["fp16"]
    flops = sum(stages[name]["flops"] for name in pub["stages"])
    tokens = sum(stages[name]["tokens"] for name in pub["stages"])
    capacity = hours * 3600 * peak
    return {**pub, "gpu_hours": hours, "peak_flops": peak, "dtype": "fp16", "tokens": tokens, "flops": flops,
            "implied_mfu": flops / capacity, "implied_mfu_6nd": 6 * parameters * tokens / capacity}


def build_plan(cfg: RecipeConfig) -> dict[str, Any]:
    """Every number of the plan (reads results/<run>/data.json and results/perf/gpu_mfu.json where needed)."""
    model, trainer = cfg.model, cfg.trainer
    parameters = gpt2_parameters(model)
    corpus, corpus_source = corpus_tokens(cfg)
    name = model_name(model)
    stages = {}
    for stage_name, stage in cfg.stages.items():
        stage_numbers = counts(stage_name, stage, corpus, cfg.world_size)
        per_token = flops_per_token(parameters, model.n_layer, model.n_embd, stage.context)
        stages[stage_name] = {**stage_numbers, "epochs": stage.epochs, "flops_per_token": per_token,
                              "flops": stage_numbers["tokens"] * per_token,
                              "memory_gib": memory_per_gpu(cfg, stage, parameters)}
    devices = _device_rows(cfg, stages, name)
    totals = {"tokens": sum(s["tokens"] for s in stages.values()), "steps": sum(s["steps"] for s in stages.values()),
              "flops": sum(s["flops"] for s in stages.values()),
              "memory_gib": max(s["memory_gib"]["total"] for s in stages.values())}
    config = {"run_name": cfg.run_name,
              "model": {"name": name, **{key: getattr(model, key) for key in ARCHITECTURE_KEYS}},
              "stages": {k: {**{f: getattr(s, f) for f in ("context", "epochs", "batch_size", "micro_batch_size")},
                             "optim": dataclasses.asdict(s.optim)} for k, s in cfg.stages.items()},
              "trainer": {"devices": trainer.devices, "num_nodes": trainer.num_nodes, "world_size": cfg.world_size,
                          "strategy": trainer.strategy, "precision": trainer.precision,
                          "fsdp": dataclasses.asdict(trainer.fsdp), "loss": trainer.loss,
                          "loss_chunk_tokens": trainer.loss_chunk_tokens},
              "plan": dataclasses.asdict(cfg.plan)}
    return {"config": config, "parameters": parameters, "corpus_tokens": corpus, "corpus_tokens_source": corpus_source,
            "world_size": cfg.world_size, "stages": stages, "total": totals, "devices": devices,
            "published": _published(cfg, stages, parameters)}


# ------------------------------------------------------------------------------------------------ the table


def _num(x: float) -> str:
    """Deterministic and short: 43,008 / 226.5 / 0.0042."""
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}" if x >= 1 else f"{x:.2g}"


def _si(x: float) -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if x >= scale:
            return f"{x / scale:.4g}{suffix}"
    return f"{x:g}"


def _flops(x: float) -> str:
    mantissa, exponent = f"{x:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _time(hours: float | None, days: float | None) -> str:
    return "n/a" if hours is None or days is None else f"{_num(hours)} / {_num(days)}"


def _mfu_cell(row: dict[str, Any]) -> str:
    cells = [f"{s['mfu']:.1%} {s['mfu_source'].split(' on ')[0]}" for s in row["stages"].values()]
    if len(set(cells)) == 1:
        return cells[0]
    return ", ".join(f"{name} {cell}" for name, cell in zip(row["stages"], cells, strict=True))


def table(plan: dict[str, Any]) -> list[str]:
    """The Markdown table: a row per stage, the total, the MFU per device, and the published figure."""
    devices = plan["devices"]
    head = ["", "context", "tokens", "steps", "global batch (seq / tokens)", "micro x GPUs x accum", "FLOPs",
            "memory/GPU (est.)", *(f"{d}: GPU-h / days" for d in devices)]
    rows = []
    for name, s in plan["stages"].items():
        rows.append([name, f"{s['context']:,}", _si(s["tokens"]), f"{s['steps']:,}",
                     f"{s['batch_sequences']:,} / {s['batch_tokens']:,}",
                     f"{s['micro_batch']} x {plan['world_size']} x {s['accumulation']}", _flops(s["flops"]),
                     f"{s['memory_gib']['total']:.1f} GiB",
                     *(_time(d["stages"][name]["gpu_hours"], d["stages"][name]["days"]) for d in devices.values())])
    total = plan["total"]
    rows.append(["total", "", _si(total["tokens"]), f"{total['steps']:,}", "", "", _flops(total["flops"]),
                 f"max {total['memory_gib']:.1f} GiB", *(_time(d["gpu_hours"], d["days"]) for d in devices.values())])
    rows.append(["MFU", "", "", "", "", "", "", "", *(_mfu_cell(d) for d in devices.values())])
    pub = plan["published"]
    if pub is not None:
        cell = (f"{_num(pub['gpu_hours'])} / {pub['days']:g} on {pub['gpus']} GPUs, implied MFU "
                f"{pub['implied_mfu']:.1%}")
        rows.append([f"published ({', '.join(pub['stages'])})", "", _si(pub["tokens"]), "", "", "",
                     _flops(pub["flops"]), "", *(cell if d == pub["device"] else "" for d in devices)])
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows)]


def _memory_note(config: dict[str, Any]) -> str:
    trainer = config["trainer"]
    width = 8 if trainer["precision"] in HALF_PARAMETERS else 16
    fsdp = trainer["strategy"].startswith("fsdp")
    shard = {"FULL_SHARD": "all divided by the world size (FSDP FULL_SHARD)",
             "SHARD_GRAD_OP": "gradients and AdamW states divided by the world size (FSDP SHARD_GRAD_OP)",
             "HYBRID_SHARD": "all divided by the GPUs of a node (FSDP HYBRID_SHARD)"}.get(
        trainer["fsdp"]["sharding_strategy"], "unsharded") if fsdp else "unsharded"
    checkpointed = fsdp and trainer["fsdp"]["activation_checkpointing"]
    activations = ("2·s·b·h bytes per layer (block inputs, activation checkpointing) + one layer's 34·s·b·h"
                   if checkpointed else "34·s·b·h bytes per layer")
    chunked = trainer["loss"] == "chunked"
    logits = f"{trainer['loss_chunk_tokens']:,} tokens at a time (chunked loss)" if chunked else "s·b·V"
    return (f"memory/GPU is an estimate (reproduce/recipe/plan.py memory_per_gpu): weights, gradients and AdamW m, "
            f"v at {width} bytes/parameter, {shard}; activations of one micro-batch, {activations} (Korthikanti et al. "
            f"2022, flash attention); logits of {logits} x (16-bit + fp32 + fp32 gradient); no CUDA context or "
            "fragmentation")


def notes(plan: dict[str, Any]) -> list[str]:
    """The lines under the table: what is configured, derived, estimated, assumed or measured."""
    config, trainer = plan["config"], plan["config"]["trainer"]
    world = plan["world_size"]
    lines = [f"world size {world} (trainer.devices {trainer['devices']} x trainer.num_nodes {trainer['num_nodes']}), "
             f"strategy {trainer['strategy']}, precision {trainer['precision']}; days = GPU-hours / {world} GPUs / 24 "
             "(wall clock)",
             f"model {config['model']['name'] or '(not a conf/model option)'}: {plan['parameters']:,} parameters "
             "(GPT-2 "
             f"formula, tied embeddings); corpus {plan['corpus_tokens']:,} tokens per epoch "
             f"({plan['corpus_tokens_source']})",
             "derived: tokens = steps x batch x context with steps = int(epochs x windows) // batch and windows = "
             "(corpus - 1) // context, as training counts them; FLOPs = tokens x (6N + 12·L·T·d)"]
    mfus = {}
    for name, d in plan["devices"].items():
        labels = {stage: f"{s['mfu']:.1%} {s['mfu_source']}" for stage, s in d["stages"].items()}
        mfus[name] = next(iter(labels.values())) if len(set(labels.values())) == 1 else \
            ", ".join(f"{stage} {label}" for stage, label in labels.items())
    measured = "results/perf/gpu_mfu.json, the package's training path for this model and context"
    if not config["plan"]["use_measured"]:
        measured = "plan.use_measured=false"
    elif all(s["mfu_source"] == "assumed" for d in plan["devices"].values() for s in d["stages"].values()):
        measured = "no measurement in results/perf/gpu_mfu.json for this model and context"
    if len(set(mfus.values())) == 1:
        lines.append(f"MFU: {next(iter(mfus.values()))} on every device (assumed: plan.mfu; {measured})")
    else:
        lines.append("MFU: " + "; ".join(f"{name} {mfu}" for name, mfu in mfus.items()) +
                     f" (assumed: plan.mfu; measured: {measured})")
    lines.append("dense peaks (reproduce/core/perf.py): " + ", ".join(
        f"{name} {d['dtype']} {d['peak_flops'] / 1e12:g}" if d["peak_flops"] else f"{name} none for this precision"
        for name, d in plan["devices"].items()) + " TFLOP/s")
    if trainer["precision"].startswith("bf16") and plan["devices"].get("V100 SXM", {}).get("dtype") == "fp16":
        lines.append("V100 SXM has no bf16: its fp16 peak is used, as one trains there with trainer.precision=16-mixed")
    lines.append(_memory_note(config))
    pub = plan["published"]
    if pub is not None:
        others = [name for name in plan["stages"] if name not in pub["stages"]]
        covers = (f"{', '.join(pub['stages'])} only, not {', '.join(others)}" if others else
                  f"the whole training ({', '.join(pub['stages'])}; the source does not separate the stages)")
        row = plan["devices"].get(pub["device"])
        hours = None if row is None or row["peak_flops"] is None else sum(
            row["stages"][name]["gpu_hours"] for name in pub["stages"])
        same_gpus = "" if hours is None else (f"; this plan's {pub['device']} estimate of those stages on "
                                              f"{pub['gpus']} GPUs: {_num(hours / pub['gpus'] / 24)} days")
        lines.append(f"published: \"{pub['quote']}\" — {pub['source']}; on {pub['device']}: {pub['gpus']} GPUs x "
                     f"{pub['days']:g} days = {pub['gpu_hours']:,.0f} GPU-hours, covering {covers}; implied MFU "
                     f"{pub['implied_mfu']:.1%} = this plan's FLOPs of those stages / (GPU-hours x the {pub['device']} "
                     f"fp16 peak, {pub['peak_flops'] / 1e12:g} TFLOP/s), {pub['implied_mfu_6nd']:.1%} counting 6·N·D "
                     f"alone (derived){same_gpus}")
    return [f"- {line}" for line in lines]


def plan_markdown(plan: dict[str, Any]) -> str:
    return "\n".join([f"# Compute plan: {plan['config']['run_name']}", "", *table(plan), "", *notes(plan)]) + "\n"


def plan(cfg: RecipeConfig) -> dict[str, Any]:
    """Print the plan's table and write results/plan/<run_name>.{json,md}; returns the numbers."""
    from reproduce.core.meta import package_metadata  # imports torch: after every check

    numbers = build_plan(cfg)
    text = plan_markdown(numbers)
    json_file, markdown_file = plan_files(cfg.paths.results, cfg.run_name)
    records.plan.write(json_file, {"meta": package_metadata(), **numbers, "notes": notes(numbers)})
    write_text(markdown_file, text)
    print(text, end="", flush=True)
    return numbers
