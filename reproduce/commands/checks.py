"""Every check of a config that reads nothing but the config: ranges, relations and choices, each failure one
``UserError`` naming the key, the value and what to do. What the machine and the files must provide is checked in
reproduce/commands/preflight.py.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable
from typing import Any

from reproduce.config.schema import GenerateConfig, OptimConfig, PaperConfig, RecipeConfig
from reproduce.core.errors import UserError
from reproduce.core.layout import check_name
from reproduce.data.corpus import CLEANERS
from reproduce.data.eval_items import FORMATS
from reproduce.data.parallel import worker_count
from reproduce.data.shards import MAX_VOCAB
from reproduce.data.sources import KINDS

RESUME = ("auto", "never")

# ------------------------------------------------------------------------------------------------ choices
# Lightning's and transformers' lists are copied here, so that checking needs no heavy import; tests/test_config.py
# checks each against its library. The package's own lists are imported from where they are defined.

NEW_POSITIONS = ("keep", "copy")
PRECISIONS = ("auto", "bf16-mixed", "16-mixed", "32-true", "bf16-true", "16-true", "64-true", "32", "16", "64", "bf16",
              "transformer-engine", "transformer-engine-float16")  # auto: ours; the rest Lightning's _PRECISION_INPUT
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "tpu", "auto")  # Lightning's AcceleratorRegistry, plus gpu and auto
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_fork", "ddp_find_unused_parameters_true", "fsdp", "fsdp_cpu_offload",
              "deepspeed", "deepspeed_stage_1", "deepspeed_stage_2", "deepspeed_stage_3", "single_device")
SHARDING_STRATEGIES = ("FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD")
ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh", "gelu", "gelu_fast", "quick_gelu", "relu", "silu", "tanh")
ATTENTION = ("eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention",
             "sdpa_causal")  # the last: the package's own (reproduce/model/attention.py)
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's
TOKENIZER_KINDS = ("bbpe", "released", "pretrained")
LOSSES = ("plain", "chunked")
EVAL_DTYPES = ("float32", "bfloat16", "float16", "float64", "auto")  # float64: exact comparisons, slow
BYTE_SYMBOLS_AND_SPECIALS = 256 + 5  # a byte-level BPE holds every byte and ruGPT-3's 5 special tokens
MAX_SEED = 2**32 - 1  # numpy's and Lightning's seeds are unsigned 32-bit
HALF_PRECISIONS = ("16-mixed", "16-true", "16")  # fp16: Lightning turns it into emulated bf16 on CPUs
# Lightning Trainer's arguments (its __init__ signature).
TRAINER_ARGS = ("accelerator", "strategy", "devices", "num_nodes", "precision", "logger", "callbacks", "fast_dev_run",
                "max_epochs", "min_epochs", "max_steps", "min_steps", "max_time", "limit_train_batches",
                "limit_val_batches", "limit_test_batches", "limit_predict_batches", "overfit_batches",
                "val_check_interval", "check_val_every_n_epoch", "num_sanity_val_steps", "log_every_n_steps",
                "enable_checkpointing", "enable_progress_bar", "enable_model_summary", "accumulate_grad_batches",
                "gradient_clip_val", "gradient_clip_algorithm", "deterministic", "benchmark", "inference_mode",
                "use_distributed_sampler", "profiler", "detect_anomaly", "barebones", "plugins", "sync_batchnorm",
                "reload_dataloaders_every_n_epochs", "default_root_dir")
# Trainer arguments that a stage derives from its own config; setting them under trainer.args is an error.
DERIVED_TRAINER_ARGS = ("max_steps", "max_epochs", "accumulate_grad_batches", "gradient_clip_val",
                        "use_distributed_sampler", "callbacks", "val_check_interval", "check_val_every_n_epoch",
                        "num_sanity_val_steps", "accelerator", "devices", "num_nodes", "strategy", "precision")

# ------------------------------------------------------------------------------------------ pure checks


def fail(key: str, value: Any, problem: str) -> UserError:
    return UserError(f"{key}={value!r}: {problem}")


def _positive(key: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or not value > 0 or (isinstance(value, float) and not math.isfinite(value)):
        raise fail(key, value, "must be a positive number" + (" or null" if allow_none else ""))


def _within(key: str, value: float, low: float, high: float, closed_low: bool = False) -> None:
    ok = (low <= value if closed_low else low < value) and value < high
    if not ok:
        raise fail(key, value, f"must lie in {'[' if closed_low else '('}{low}, {high})")


def _choice(key: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        raise fail(key, value, f"choose one of {', '.join(map(str, allowed))}")


def _check_sources(cfg: RecipeConfig) -> None:
    if not cfg.data.sources:
        raise fail("data.sources", {}, "list at least one source (e.g. data=ruslit)")
    for name, source in cfg.data.sources.items():
        key = f"data.sources.{name}"
        _choice(f"{key}.kind", source.kind, tuple(KINDS))
        _choice(f"{key}.clean", source.clean, CLEANERS)
        _positive(f"{key}.weight", source.weight)
        kind = KINDS[source.kind]
        if not getattr(source, kind.needs):
            raise fail(f"{key}.{kind.needs}", getattr(source, kind.needs), f"a {source.kind} source needs it")
        if kind.has_fields and not source.text_field:
            raise fail(f"{key}.text_field", source.text_field, "name the field that holds the text")


MAX_SIGMAS = 10


def _fits_memory(key: str, batch: int, cfg: RecipeConfig) -> None:
    """A batch of sequences whose logits alone exceed this machine's memory even at one position each (float32 over
    the vocabulary) is one line (found by bench/probe_fresh.py: eval.batch_size=1e9 was taken)."""
    logits = batch * cfg.model.vocab_size * 4
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if logits > memory:
        raise fail(key, batch, f"its logits alone, at one position per sequence ({batch:,} x {cfg.model.vocab_size} "
                   f"ids x 4 bytes = {logits / 1e9:,.0f} GB), exceed this machine's memory ({memory / 1e9:,.0f} GB); "
                   "lower it")


MAX_STEP_TOKENS = 1 << 30  # tokens in one optimizer step (batch_size x context)
MAX_LR = 1_000  # a larger one is a typo; a diverging run up to it stops at its first non-finite loss (tests use 300)
MAX_EPOCHS = 10_000  # passes over a stage's training data: the paper's stages make fewer than 10
WORKERS_PER_CORE = 4  # more processes than this share a core without gain (each holds a tokenizer)


def _check_data(cfg: RecipeConfig) -> None:
    data = cfg.data
    _check_sources(cfg)
    for key in ("max_line_chars", "shard_tokens", "print_every_s"):
        _positive(f"data.{key}", getattr(data, key))
    _positive("data.workers", data.workers, allow_none=True)
    cores = worker_count(None)
    if data.workers is not None and data.workers > WORKERS_PER_CORE * cores:
        raise fail("data.workers", data.workers, f"more than {WORKERS_PER_CORE} per core of this machine ({cores} "
                   f"cores): each is a process holding a tokenizer; give at most {WORKERS_PER_CORE * cores}, or null "
                   "(one per core)")
    _within("data.validation_fraction", data.validation_fraction, 0, 1)
    _within("data.test_fraction", data.test_fraction, 0, 1)
    if data.validation_fraction + data.test_fraction >= 1:
        raise fail("data.test_fraction", data.test_fraction,
                   f"with data.validation_fraction={data.validation_fraction} it leaves nothing to train on")


def _check_tokenizer(cfg: RecipeConfig) -> None:
    tok = cfg.tokenizer
    _choice("tokenizer.kind", tok.kind, TOKENIZER_KINDS)
    if not BYTE_SYMBOLS_AND_SPECIALS < tok.vocab_size <= MAX_VOCAB:
        raise fail("tokenizer.vocab_size", tok.vocab_size,
                   f"must be above {BYTE_SYMBOLS_AND_SPECIALS} (bytes and special tokens) and at most "
                   f"{MAX_VOCAB:,} (uint16 token shards)")
    if tok.kind == "bbpe":
        _positive("tokenizer.min_frequency", tok.min_frequency)
        _positive("tokenizer.sample_characters", tok.sample_characters, allow_none=True)
    elif tok.kind == "released" and not tok.manifest:
        raise fail("tokenizer.manifest", tok.manifest, "a released tokenizer needs a manifest of vocab.json and "
                   "merges.txt (e.g. tokenizer=rugpt3)")
    elif tok.kind == "pretrained" and not tok.name_or_path:
        raise fail("tokenizer.name_or_path", tok.name_or_path, "a pretrained tokenizer needs a Hugging Face model "
                   "directory or hub id")
    for name, stage in cfg.stages.items():
        if stage.init_from is not None and stage.init_from not in cfg.stages and tok.kind != "pretrained":
            raise fail(f"stages.{name}.init_from", stage.init_from,
                       f"is not a stage ({', '.join(cfg.stages)}), so a released checkpoint, which brings its own "
                       "tokenizer: add tokenizer=pretrained (name_or_path: stages.stage1.init_from)")


def _check_model(cfg: RecipeConfig) -> None:
    model = cfg.model
    for key in ("n_layer", "n_embd", "n_head", "n_positions", "vocab_size", "layer_norm_epsilon",
                "initializer_range", "pad_vocab_multiple"):
        _positive(f"model.{key}", getattr(model, key))
    if model.n_embd % model.n_head:
        raise fail("model.n_head", model.n_head, f"must divide model.n_embd={model.n_embd}")
    if model.vocab_size < cfg.tokenizer.vocab_size:
        raise fail("model.vocab_size", model.vocab_size,
                   f"is smaller than tokenizer.vocab_size={cfg.tokenizer.vocab_size}; the model needs a row per id")
    for key in ("resid_pdrop", "embd_pdrop", "attn_pdrop"):
        _within(f"model.{key}", getattr(model, key), 0, 1, closed_low=True)
    _choice("model.activation_function", model.activation_function, ACTIVATIONS)
    if model.attn_implementation is not None:
        _choice("model.attn_implementation", model.attn_implementation, ATTENTION)


def _check_optim(key: str, optim: OptimConfig) -> None:
    _positive(f"{key}.lr", optim.lr)
    if optim.lr > MAX_LR:  # AdamW's step is about lr per weight: far above 1 no weight keeps its range
        raise fail(f"{key}.lr", optim.lr, f"is above {MAX_LR:,}: training diverges at the first step; GPT learning "
                   "rates are around 1e-4 to 1e-3")
    if not 0 <= optim.min_lr <= optim.lr:
        raise fail(f"{key}.min_lr", optim.min_lr, f"must lie in [0, {key}.lr={optim.lr}]")
    _within(f"{key}.warmup_fraction", optim.warmup_fraction, 0, 1, closed_low=True)
    if not optim.weight_decay >= 0:
        raise fail(f"{key}.weight_decay", optim.weight_decay, "must be at least 0")
    if len(optim.betas) != 2:
        raise fail(f"{key}.betas", list(optim.betas), "give two values, e.g. [0.9,0.95]")
    for i, beta in enumerate(optim.betas):
        _within(f"{key}.betas[{i}]", beta, 0, 1, closed_low=True)
    _positive(f"{key}.eps", optim.eps)
    _positive(f"{key}.grad_clip", optim.grad_clip, allow_none=True)


def _check_stages(cfg: RecipeConfig) -> None:
    if not cfg.stages:
        raise UserError("stages: no stage to train; choose a stage group (e.g. stage=mini)")
    earlier: list[str] = []
    for name, stage in cfg.stages.items():
        key = f"stages.{name}"
        for field_name in ("context", "epochs", "batch_size", "micro_batch_size", "validation_windows",
                           "validate_every_steps", "record_every_steps", "print_every_s", "keep_checkpoints"):
            _positive(f"{key}.{field_name}", getattr(stage, field_name))
        _positive(f"{key}.checkpoint_every_tokens", stage.checkpoint_every_tokens, allow_none=True)
        if stage.epochs > MAX_EPOCHS:  # a run that would never end (found by bench/probe_fresh.py: epochs=1e9)
            raise fail(f"{key}.epochs", stage.epochs, f"more than {MAX_EPOCHS:,} passes over the training data; a "
                       "token budget is epochs x the training tokens (reproduce plan shows it)")
        if stage.context > cfg.model.n_positions:
            raise fail(f"{key}.context", stage.context, f"exceeds model.n_positions={cfg.model.n_positions}")
        if stage.batch_size * stage.context > MAX_STEP_TOKENS:
            raise fail(f"{key}.batch_size", stage.batch_size, f"x context {stage.context} is more than "
                       f"{MAX_STEP_TOKENS:,} tokens in one optimizer step (GPT-3's was 3.2M)")
        if stage.micro_batch_size * cfg.world_size > stage.batch_size:  # the processes, not the batch, are wrong
            many = "trainer.num_nodes" if cfg.trainer.num_nodes > cfg.trainer.devices else "trainer.devices"
            raise fail(many, getattr(cfg.trainer, many.split(".")[1]),
                       f"{cfg.world_size:,} processes (trainer.devices x trainer.num_nodes) each take at least "
                       f"{key}.micro_batch_size={stage.micro_batch_size} sequences, more than its batch_size="
                       f"{stage.batch_size} per step; give at most "
                       f"{max(1, stage.batch_size // stage.micro_batch_size)} processes, or a larger batch")
        if stage.batch_size % (stage.micro_batch_size * cfg.world_size):
            raise fail(f"{key}.batch_size", stage.batch_size,
                       f"is not a multiple of micro_batch_size x devices x nodes = {stage.micro_batch_size} x "
                       f"{cfg.trainer.devices} x {cfg.trainer.num_nodes}")
        if stage.init_from in cfg.stages and stage.init_from not in earlier:
            raise fail(f"{key}.init_from", stage.init_from, f"not an earlier stage ({', '.join(earlier) or 'none'})")
        _choice(f"{key}.new_positions", stage.new_positions, NEW_POSITIONS)
        shorter_earlier = stage.init_from in earlier and cfg.stages[stage.init_from].context < stage.context
        if stage.new_positions == "copy" and not shorter_earlier:
            raise fail(f"{key}.new_positions", stage.new_positions,
                       "copies positions an earlier stage (init_from) learned at a shorter context; set it to keep")
        _check_optim(f"{key}.optim", stage.optim)
        earlier.append(name)


def _check_trainer(cfg: RecipeConfig) -> None:
    trainer = cfg.trainer
    _choice("trainer.accelerator", trainer.accelerator, ACCELERATORS)
    _positive("trainer.devices", trainer.devices)
    _positive("trainer.num_nodes", trainer.num_nodes)
    _choice("trainer.strategy", trainer.strategy, STRATEGIES)
    _choice("trainer.precision", trainer.precision, PRECISIONS)
    _choice("trainer.fsdp.sharding_strategy", trainer.fsdp.sharding_strategy, SHARDING_STRATEGIES)
    _choice("trainer.loss", trainer.loss, LOSSES)
    if trainer.compile_mode is not None:
        _choice("trainer.compile_mode", trainer.compile_mode, COMPILE_MODES)
    _positive("trainer.loss_chunk_tokens", trainer.loss_chunk_tokens)
    if trainer.precision in HALF_PRECISIONS and trainer.accelerator == "cpu":
        raise fail("trainer.precision", trainer.precision, "fp16 on CPUs runs as emulated bf16 in Lightning, so the "
                   "run would record a precision it did not use; use 32-true, or bf16-mixed on a CPU with native bf16")
    if trainer.strategy.startswith("fsdp") and trainer.accelerator == "cpu":
        raise fail("trainer.strategy", trainer.strategy, "Lightning's FSDP runs on GPUs only; use trainer=fsdp "
                   "(GPUs), or strategy=ddp on CPUs")
    for name, value in sorted(trainer.args.items()):
        if name in DERIVED_TRAINER_ARGS:
            raise fail(f"trainer.args.{name}", value, "is set by each stage or by a trainer key; remove it")
        if name not in TRAINER_ARGS:
            raise fail(f"trainer.args.{name}", value, "not an argument of Lightning's Trainer")


def _check_eval(cfg: RecipeConfig) -> None:
    perplexity = cfg.eval.perplexity
    if not perplexity.contexts:
        raise fail("eval.perplexity.contexts", list(perplexity.contexts), "give at least one context")
    largest = max(perplexity.contexts)
    for context in perplexity.contexts:
        _positive("eval.perplexity.contexts", context)
        if largest % context or context > cfg.model.n_positions:
            raise fail("eval.perplexity.contexts", list(perplexity.contexts), f"each must divide the largest and be at "
                       f"most model.n_positions={cfg.model.n_positions}")
    if perplexity.max_tokens is not None and perplexity.max_tokens < largest:
        raise fail("eval.perplexity.max_tokens", perplexity.max_tokens,
                   f"scores fewer tokens than one block of the largest context ({largest}); raise it or use null")
    _positive("eval.perplexity.batch_size", perplexity.batch_size)
    _fits_memory("eval.perplexity.batch_size", perplexity.batch_size, cfg)
    _positive("eval.perplexity.stride", perplexity.stride, allow_none=True)
    evaluation = cfg.eval
    for name in evaluation.stages:
        if name not in cfg.stages:
            raise fail("eval.stages", list(evaluation.stages), f"no stage {name!r}; stages are {list(cfg.stages)}")
    _positive("eval.batch_size", evaluation.batch_size)
    _fits_memory("eval.batch_size", evaluation.batch_size, cfg)
    _choice("eval.dtype", evaluation.dtype, EVAL_DTYPES)
    _positive("eval.limit", evaluation.limit, allow_none=True)
    if evaluation.num_fewshot is not None and evaluation.num_fewshot < 0:
        raise fail("eval.num_fewshot", evaluation.num_fewshot, "must be 0 or more, or null for each task's own")
    if evaluation.num_fewshot is not None and evaluation.num_fewshot > cfg.model.n_positions:
        raise fail("eval.num_fewshot", evaluation.num_fewshot, f"more examples than the model's context of "
                   f"{cfg.model.n_positions} tokens could hold, at a token each")
    _choice("eval.prefix_token", evaluation.prefix_token, ("eos", "bos"))
    if evaluation.device is not None and not re.fullmatch(r"cpu|cuda(:\d+)?|mps", evaluation.device):
        raise fail("eval.device", evaluation.device, "choose cpu, cuda, cuda:<index> or mps, or null for the trainer's")
    gen = evaluation.generate
    _positive("eval.generate.max_new_tokens", gen.max_new_tokens)
    _positive("eval.generate.num_samples", gen.num_samples)
    _positive("eval.generate.top_k", gen.top_k, allow_none=True)
    if gen.temperature < 0:
        raise fail("eval.generate.temperature", gen.temperature, "must be 0 (greedy) or more")
    if gen.temperature == 0 and gen.num_samples > 1:
        raise fail("eval.generate.num_samples", gen.num_samples, "greedy decoding (temperature 0) gives one sample "
                   "per prompt; set eval.generate.num_samples=1")
    if gen.top_p is not None and not 0 < gen.top_p <= 1:
        raise fail("eval.generate.top_p", gen.top_p, "must lie in (0, 1], or null")
    for key, prompts in (("eval.generate.prompt", [gen.prompt]), ("eval.generate.prompts", gen.prompts)):
        for prompt in (p for p in prompts if isinstance(p, str)):
            try:
                prompt.encode("utf-8")
            except UnicodeEncodeError as exc:  # bytes that are not UTF-8 reach Python as lone surrogates
                raise UserError(f"{key}: {prompt[:40].encode('utf-8', 'backslashreplace').decode()!r} holds bytes "
                                f"that are not UTF-8 (at character {exc.start}); give the prompt as UTF-8 text "
                                "(a UTF-8 terminal or file)") from None
    if evaluation.model is None:  # the recipe's samples (a model named by model= is checked against its own context)
        check_generation_fits("model.n_positions", cfg.model.n_positions, gen, gen.prompts)
    if evaluation.name is not None:
        check_name("eval.name", evaluation.name)
    for item in evaluation.checkpoints or []:
        if item != "all" and item.split(":")[0] not in cfg.stages or item.count(":") > 1 or (
                ":" in item and not item.split(":")[1].isdigit()):
            raise fail("eval.checkpoints", list(evaluation.checkpoints), f"{item!r} is not all, a stage "
                       f"({', '.join(cfg.stages)}) or <stage>:<step>")
    during = evaluation.during_training
    if during.enabled:
        _positive("eval.during_training.limit", during.limit)
        _positive("eval.during_training.every_tokens", during.every_tokens, allow_none=True)
        _positive("eval.during_training.validation_tokens", during.validation_tokens, allow_none=True)
        if cfg.trainer.strategy.startswith("fsdp"):
            raise fail("eval.during_training.enabled", True, "not under FSDP (the weights are sharded between steps); "
                       "score the kept checkpoints after the run instead (docs/watching.md), or set it false")


def check_generation_fits(key: str, context: int, gen: GenerateConfig, prompts: list[str],
                          tokens: Callable[[str], int] | None = None) -> None:
    """Each prompt, after the </s> it follows, plus ``max_new_tokens`` fits the model's context. Without a tokenizer a
    prompt counts as its UTF-8 bytes, at least its tokens under a byte-level BPE."""
    count = tokens or (lambda text: len(text.encode("utf-8")))
    longest = max(prompts, key=count, default="")
    needed = 1 + count(longest) + gen.max_new_tokens
    if needed > context:
        raise fail("eval.generate.max_new_tokens", gen.max_new_tokens,
                   f"with the prompt {longest[:40]!r} ({count(longest)} {'tokens' if tokens else 'bytes'}) after </s> "
                   f"needs {needed} positions, more than {key}={context}; lower it or shorten the prompt")


def _check_plan(cfg: RecipeConfig) -> None:
    plan = cfg.plan
    if not 0 < plan.mfu <= 1:
        raise fail("plan.mfu", plan.mfu, "must lie in (0, 1], e.g. 0.45")
    _positive("plan.corpus_tokens", plan.corpus_tokens, allow_none=True)


def _check_compare(cfg: RecipeConfig) -> None:
    _positive("compare.sigmas", cfg.compare.sigmas)
    if cfg.compare.sigmas > MAX_SIGMAS:  # a wider tolerance calls every run identical
        raise fail("compare.sigmas", cfg.compare.sigmas, f"is more than {MAX_SIGMAS}: every run would be within it")
    for name in cfg.compare.seed_runs:
        check_name("compare.seed_runs", name)


def _check_contamination(cfg: RecipeConfig) -> None:
    contamination = cfg.contamination
    _positive("contamination.n", contamination.n)
    if contamination.n > cfg.model.n_positions:
        raise fail("contamination.n", contamination.n, f"n-grams longer than the model's context "
                   f"({cfg.model.n_positions} tokens) match nothing it could have learned; GPT-3 used 13")
    if not 1 <= contamination.min_tokens <= contamination.n:
        raise fail("contamination.min_tokens", contamination.min_tokens,
                   f"must lie in [1, contamination.n={contamination.n}]")
    for name, texts in contamination.sets.items():
        if texts.benchmark is None and texts.manifest is None:
            raise fail(f"contamination.sets.{name}.manifest", texts.manifest,
                       "give a manifest of the set's files, or a benchmark folder (benchmark=<name>)")
        _choice(f"contamination.sets.{name}.format", texts.format, FORMATS)
        if not texts.fields:
            raise fail(f"contamination.sets.{name}.fields", list(texts.fields), "name at least one text field")
    if contamination.drop and not contamination.sets:
        raise fail("contamination.drop", contamination.drop, "drops documents by contamination.sets, and it is empty")


def _check_finite(value: Any, key: str = "") -> None:
    """Every float of the config is a number: nan and inf are refused wherever they appear."""
    if dataclasses.is_dataclass(value):
        for item in dataclasses.fields(value):
            _check_finite(getattr(value, item.name), f"{key}.{item.name}" if key else item.name)
    elif isinstance(value, dict):
        for name, item in value.items():
            _check_finite(item, f"{key}.{name}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_finite(item, f"{key}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        raise fail(key, value, "must be a finite number")


def _check_seeds(cfg: RecipeConfig) -> None:
    """Seeds go to numpy's and Lightning's generators, which take 0 .. 2**32 - 1."""
    seeds = {"seed": cfg.seed, "data.split_seed": cfg.data.split_seed, "eval.generate.seed": cfg.eval.generate.seed,
             **{f"stages.{name}.data_seed": stage.data_seed for name, stage in cfg.stages.items()}}
    for key, value in seeds.items():
        if value is not None and not 0 <= value <= MAX_SEED:
            raise fail(key, value, f"must lie in [0, {MAX_SEED}] (numpy's and Lightning's seeds)")


def check_config(cfg: RecipeConfig) -> None:
    """Types are checked by the schema; here ranges, relations and choices. Reads no file."""
    check_name("run_name", cfg.run_name)
    _choice("resume", cfg.resume, RESUME)
    _check_finite(cfg)
    _check_seeds(cfg)
    _check_data(cfg)
    _check_tokenizer(cfg)
    _check_model(cfg)
    _check_trainer(cfg)
    _check_stages(cfg)
    _check_eval(cfg)
    _check_plan(cfg)
    _check_contamination(cfg)
    _check_compare(cfg)
    check_paper_runs(cfg.paper)


def check_paper_runs(paper: PaperConfig) -> None:
    """The runs of the paper are plain names of folders under results/ (extra runs too)."""
    if not paper.runs:
        raise fail("paper.runs", list(paper.runs), "list at least one run (e.g. [mini])")
    for key in ("runs", "extra_runs"):
        for name in getattr(paper, key):
            check_name(f"paper.{key}", name)
