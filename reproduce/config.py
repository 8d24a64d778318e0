"""Typed configs (registered with Hydra's ConfigStore) and every check that runs before any work.

Hydra merges the YAML groups of ``conf/`` onto these dataclasses, so a wrong type or a misspelt key fails at
composition. ``check_config`` then checks ranges, relations and choices (pure: no files, no machine), and
``check_machine`` what the run needs from this machine: the accelerator, writable output folders, every
manifest file the run will read (resolved and checked against its sha256), and results of another config.
Each failure is one ``UserError`` naming the key or file, the value and what to do.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from reproduce.errors import UserError
from reproduce.perf import PEAKS

# ------------------------------------------------------------------------------------------------ schemas


@dataclass
class SourceConfig:
    """One source of documents (reproduce/data/sources.py); every document gets a stable id "<source>:<where>"."""
    kind: str = MISSING  # manifest | text | jsonl | parquet | hf
    manifest: str | None = None  # manifest: TSV of (path, sha256, url); relative: working directory, then conf/
    paths: list[str] = field(default_factory=list)  # text, jsonl, parquet: files or globs (relative: working dir)
    text_field: str = "text"  # jsonl, parquet, hf: the field holding a document's text
    id_field: str | None = None  # jsonl, parquet, hf: a field with a stable id; null: the file and line (or row)
    dataset: str | None = None  # hf: hub id, or a local folder (a save_to_disk dataset or data files)
    config_name: str | None = None  # hf: the dataset's configuration
    split: str = "train"  # hf: the dataset split to read
    revision: str | None = None  # hf: the hub commit; pin it, or the prepared set may change under the same name
    clean: str = "plain"  # ruslit: strip RusLit's per-file header, join hard-wrapped prose | plain: whitespace only
    weight: float = 1.0  # times each train document of this source is used (fraction: a seeded subset)


@dataclass
class DataConfig:
    # name -> SourceConfig; kept untyped for Hydra, so that a source can be added from the command line
    # (+data.sources.extra={kind: jsonl, paths: [...]}), and typed in __post_init__
    sources: dict[str, Any] = field(default_factory=dict)
    mirror: str | None = None  # local copy laid out like the manifests' paths; null: ../shared/data if present
    cache_dir: str = "~/.cache/rugpt3-reproduce"
    allow_download: bool = True
    split_seed: int = 1234
    validation_fraction: float = MISSING
    test_fraction: float = MISSING
    max_line_chars: int = 1_000_000  # a document with a longer line is skipped (recorded): BPE on it is quadratic
    shard_tokens: int = 1 << 28  # tokens per shard file (the last shard of a split holds the rest)
    workers: int | None = None  # tokenizing processes; null: every core of this machine
    print_every_s: float = 20.0  # seconds between progress lines

    def __post_init__(self) -> None:
        self.sources = typed_entries("data.sources", self.sources, SourceConfig)


def typed_entries(key: str, entries: dict[str, Any], schema: type) -> dict[str, Any]:
    """A name -> ``schema`` mapping that Hydra holds untyped (so entries can be added with +key.name={...}), each entry
    merged onto its schema: a misspelt key or a wrong type is one line naming ``key.name``."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    typed = {}
    for name, entry in entries.items():
        try:
            typed[name] = entry if isinstance(entry, schema) else OmegaConf.to_object(
                OmegaConf.merge(OmegaConf.structured(schema), entry))
        except OmegaConfBaseException as exc:
            raise UserError(f"{key}.{name}: {str(exc).splitlines()[0]}") from None
    return typed


@dataclass
class TokenizerConfig:
    kind: str = MISSING  # bbpe (trained on the train split) | released (a manifest's vocab.json + merges.txt)
    # | pretrained (a Hugging Face model directory or hub id: a checkpoint's own tokenizer)
    vocab_size: int = MISSING  # bbpe: ids to train; released, pretrained: the tokenizer's size (checked when loaded)
    min_frequency: int = 2  # bbpe: a merge must occur at least this often
    manifest: str | None = None  # released: vocab.json and merges.txt
    name_or_path: str | None = None  # pretrained: the directory or hub id
    sample_characters: int | None = None  # bbpe: characters of train documents to train on (a seeded subset of
    # documents); null: all of them


@dataclass
class ModelConfig:
    n_layer: int = MISSING
    n_embd: int = MISSING
    n_head: int = MISSING
    n_positions: int = MISSING
    vocab_size: int = MISSING  # at least the tokenizer's size
    activation_function: str = "gelu_new"
    resid_pdrop: float = 0.0
    embd_pdrop: float = 0.0
    attn_pdrop: float = 0.0
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    attn_implementation: str | None = None


@dataclass
class OptimConfig:
    lr: float = MISSING
    min_lr: float = MISSING
    warmup_fraction: float = MISSING
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    grad_clip: float | None = 1.0


@dataclass
class StageConfig:
    context: int = MISSING
    epochs: float = MISSING
    batch_size: int = MISSING
    micro_batch_size: int = MISSING
    init_from: str | None = None  # an earlier stage, or a Hugging Face model directory or hub id
    new_positions: str = "keep"  # copy: positions past init_from's context start as copies of its learned ones
    data_seed: int | None = None  # null: the run's seed
    checkpoint_every_tokens: int | None = None  # null: a checkpoint at the stage's end only
    keep_checkpoints: int = 2
    validation_windows: int = 64
    validate_every_steps: int = 200
    record_every_steps: int = 10
    print_every_s: float = 20.0
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass
class FSDPConfig:
    """Read when trainer.strategy is fsdp: each GPT2Block is one FSDP unit."""
    sharding_strategy: str = "FULL_SHARD"  # FULL_SHARD | SHARD_GRAD_OP | NO_SHARD | HYBRID_SHARD
    activation_checkpointing: bool = False  # recompute each GPT2Block's activations in the backward pass
    cpu_offload: bool = False  # parameters and gradients in CPU memory between uses


@dataclass
class TrainerConfig:
    accelerator: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    enable_progress_bar: bool = False
    # the fast step (conf/trainer/gpu.yaml says what each choice gave on a GPU)
    compile: bool = False  # torch.compile the loss: the model and the cross-entropy in one graph
    fused_optimizer: bool = False  # AdamW's fused kernel: one launch for all parameters
    loss: str = "plain"  # plain: the logits, then cross-entropy | chunked: LM head + cross-entropy a chunk at a time
    loss_chunk_tokens: int = 8192  # chunked: tokens per chunk (a chunk's logits are chunk x vocab)
    fsdp: FSDPConfig = field(default_factory=FSDPConfig)
    args: dict[str, Any] = field(default_factory=dict)  # any other Lightning Trainer argument


@dataclass
class PerplexityConfig:
    contexts: list[int] = MISSING  # the run's stage models, on its test works: evenly spaced blocks at these contexts
    max_tokens: int | None = None  # the run's test tokens scored (null: all)
    batch_size: int = 32  # windows per forward pass
    texts: list[str] = field(default_factory=list)  # `reproduce eval model=...`: text files (globs) to score
    stride: int | None = None  # sliding window: new tokens per window (null: half the model's context)


@dataclass
class GenerateConfig:
    prompt: str | None = None  # `reproduce generate prompt=...`
    prompts: list[str] = field(default_factory=list)  # the recipe: samples of every stage for the paper
    max_new_tokens: int = 48
    temperature: float = 0.8  # 0: greedy
    top_k: int | None = 50
    top_p: float | None = 0.95
    num_samples: int = 2
    seed: int = 1234


@dataclass
class EvalConfig:
    model: str | None = None  # `reproduce eval model=...`: a hub id, a Hugging Face dir or a run dir (runs/<run>)
    name: str | None = None  # results/eval/<name>/ (null: from the model: owner--name, the folder, <run>-<stage>)
    suite: str = "ru_local"  # a suite of reproduce/evaluate/tasks/suites.yaml
    tasks: list[str] | None = None  # some of the suite's tasks only (null: all)
    stages: list[str] = MISSING  # the run's stages that the suite scores
    batch_size: int = 64
    dtype: str = "float32"
    device: str | None = None  # null: the trainer's (cuda under a GPU trainer); cpu, cuda, cuda:N
    limit: int | None = None  # items per task (null: all)
    num_fewshot: int | None = None  # null: each task's own
    prefix_token: str = "eos"  # the token before a zero-context item: eos (</s>, the document separator) or bos
    perplexity: PerplexityConfig = field(default_factory=PerplexityConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)


@dataclass
class EvalTextsConfig:
    """Where an evaluation set's item texts are, for the contamination report (reproduce/data/contamination.py)."""
    manifest: str = MISSING  # TSV of (path, sha256, url) of the set's files
    format: str = MISSING  # csv | tsv | jsonl
    fields: list[str] = MISSING  # the text fields of an item (tsv without a header: 0-based column numbers)
    files: list[str] = field(default_factory=lambda: ["*"])  # which of the manifest's files (globs on the file name)
    header: bool = True  # csv, tsv: the first row names the columns
    where: dict[str, str] = field(default_factory=dict)  # keep only rows whose field has this value


@dataclass
class ContaminationConfig:
    n: int = 13  # an item is contaminated when one of its n-token sequences occurs in the training shards
    min_tokens: int = 8  # items shorter than n tokens are matched whole; shorter than this, not checked
    drop: bool = False  # prepare drops training documents that share such a sequence with any set (or the test works)
    test_works: bool = True  # also report the corpus's test split (per work) against the train split
    sets: dict[str, Any] = field(default_factory=dict)  # name -> EvalTextsConfig (typed in __post_init__)

    def __post_init__(self) -> None:
        self.sets = typed_entries("contamination.sets", self.sets, EvalTextsConfig)


@dataclass
class PathsConfig:
    results: str = "results"  # results/<run_name>/ (committed); results/published/, results/architectures.json
    runs: str = "runs"  # runs/<run_name>/: which prepared set, models, checkpoints, log (not committed)
    paper: str = "paper"  # tables and figures
    prepared: str = "prepared"  # prepared/<hash>/: token shards, index, tokenizer; reused by every run of the same data


@dataclass
class PaperConfig:
    runs: list[str] = field(default_factory=lambda: ["mini"])  # each must have results/<run>/
    extra_runs: list[str] = field(default_factory=list)  # added when results/<run>/summary.json exists

    def present_runs(self, results: Path) -> tuple[list[str], list[str]]:
        """(runs of the paper, extra runs left out because results/<run>/summary.json is absent)."""
        extra = [run for run in dict.fromkeys(self.extra_runs) if run not in self.runs]
        absent = [run for run in extra if not (Path(results) / run / "summary.json").is_file()]
        return [*self.runs, *(run for run in extra if run not in absent)], absent


@dataclass
class PublishedCompute:
    """A published training-compute figure, quoted, that `reproduce plan` prints beside its estimate."""
    gpus: int = MISSING
    days: float = MISSING
    device: str = MISSING  # a row of reproduce.perf.PEAKS, e.g. "V100 SXM"
    stages: list[str] = MISSING  # the stages the figure covers
    quote: str = MISSING
    source: str = MISSING


@dataclass
class PlanConfig:
    """`reproduce plan`: tokens, FLOPs, memory and GPU time of the recipe (reproduce/plan.py)."""
    mfu: float = 0.45  # assumed model FLOPs utilisation on every device
    use_measured: bool = True  # a device measured in results/perf/gpu_mfu.json uses its measured MFU instead
    corpus_tokens: int | None = None  # tokens one epoch covers; null: the train split of results/<run>/data.json
    published: PublishedCompute | None = None


@dataclass
class PaperCommandConfig:
    paths: PathsConfig = field(default_factory=PathsConfig)
    paper: PaperConfig = field(default_factory=PaperConfig)
    verbose: bool = False


@dataclass
class RecipeConfig:
    run_name: str = "mini"
    seed: int = 1234
    overwrite: bool = False
    resume: str = "auto"  # auto: reuse finished steps and stages, continue a stage from its last checkpoint
    verbose: bool = False
    paths: PathsConfig = field(default_factory=PathsConfig)
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    stages: dict[str, StageConfig] = field(default_factory=dict)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    paper: PaperConfig = field(default_factory=PaperConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)
    contamination: ContaminationConfig = field(default_factory=ContaminationConfig)

    @property
    def results_dir(self) -> Path:
        return Path(self.paths.results) / self.run_name

    @property
    def work_dir(self) -> Path:
        return Path(self.paths.runs) / self.run_name

    @property
    def world_size(self) -> int:
        return self.trainer.devices * self.trainer.num_nodes


ConfigStore.instance().store(name="recipe_schema", node=RecipeConfig)
ConfigStore.instance().store(name="paper_schema", node=PaperCommandConfig)

# Which keys each step reads; a step's results are valid only for the values it read (results/<run>/config.yaml).
STEP_KEYS = {"prepare": ("data", "tokenizer"), "train": ("seed", "model", "stages", "trainer"), "eval": ("eval",),
             "contamination": ("contamination",)}
STEPS = tuple(STEP_KEYS)
# The steps whose outputs each step reads, directly or not: a changed step makes every step downstream of it stale.
STEP_NEEDS = {"prepare": (), "train": ("prepare",), "eval": ("prepare", "train"), "contamination": ("prepare",)}


def step_keys(cfg: RecipeConfig, step: str) -> tuple[str, ...]:
    """The config keys a step reads; prepare reads the contamination settings too when it drops documents by them."""
    if step == "prepare" and cfg.contamination.drop:
        return (*STEP_KEYS[step], "contamination")
    return STEP_KEYS[step]


def downstream(steps: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``steps`` and every step that reads their outputs, in STEPS order."""
    found = set(steps)
    for step in STEPS:  # STEPS lists every step after the steps it needs
        if any(need in found for need in STEP_NEEDS[step]):
            found.add(step)
    return tuple(step for step in STEPS if step in found)
# Keys that change where inputs come from or what is printed, never a result.
NOT_RESULT_KEYS = ("data.mirror", "data.cache_dir", "data.allow_download", "data.workers", "data.print_every_s",
                   "data.shard_tokens", "trainer.enable_progress_bar",
                   "stages.*.print_every_s", "stages.*.checkpoint_every_tokens", "stages.*.keep_checkpoints",
                   "eval.model", "eval.name", "eval.perplexity.texts", "eval.perplexity.stride", "eval.generate.prompt")
RESUME = ("auto", "never")

# ------------------------------------------------------------------------------------------------ choices
# Kept here so that checking needs no heavy import; tests/test_config.py checks each against its library.

NEW_POSITIONS = ("keep", "copy")
PRECISIONS = ("bf16-mixed", "16-mixed", "32-true", "bf16-true", "16-true", "64-true", "32", "16", "64", "bf16",
              "transformer-engine", "transformer-engine-float16")  # Lightning's _PRECISION_INPUT
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "tpu", "auto")  # Lightning's AcceleratorRegistry, plus gpu and auto
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_fork", "ddp_find_unused_parameters_true", "fsdp", "fsdp_cpu_offload",
              "deepspeed", "deepspeed_stage_1", "deepspeed_stage_2", "deepspeed_stage_3", "single_device")
SHARDING_STRATEGIES = ("FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD")
ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh", "gelu", "gelu_fast", "quick_gelu", "relu", "silu", "tanh")
ATTENTION = ("eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention")
TOKENIZER_KINDS = ("bbpe", "released", "pretrained")
SOURCE_KINDS = ("manifest", "text", "jsonl", "parquet", "hf")  # reproduce/data/sources.py
CLEANERS = ("ruslit", "plain")  # reproduce/data/corpus.py
EVAL_TEXT_FORMATS = ("csv", "tsv", "jsonl")  # reproduce/data/contamination.py
LOSSES = ("plain", "chunked")
EVAL_DTYPES = ("float32", "bfloat16", "float16", "auto")
BYTE_SYMBOLS_AND_SPECIALS = 256 + 5  # a byte-level BPE holds every byte and ruGPT-3's 5 special tokens
MAX_SHARD_VOCAB = 65_536  # token shards store uint16 ids
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


def _fail(key: str, value: Any, problem: str) -> UserError:
    return UserError(f"{key}={value!r}: {problem}")


def _positive(key: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if value is None or not value > 0 or (isinstance(value, float) and not math.isfinite(value)):
        raise _fail(key, value, "must be a positive number" + (" or null" if allow_none else ""))


def _within(key: str, value: float, low: float, high: float, closed_low: bool = False) -> None:
    ok = (low <= value if closed_low else low < value) and value < high
    if not ok:
        raise _fail(key, value, f"must lie in {'[' if closed_low else '('}{low}, {high})")


def _choice(key: str, value: Any, allowed: tuple[Any, ...]) -> None:
    if value not in allowed:
        raise _fail(key, value, f"choose one of {', '.join(map(str, allowed))}")


def _check_sources(cfg: RecipeConfig) -> None:
    if not cfg.data.sources:
        raise _fail("data.sources", {}, "list at least one source (e.g. data=ruslit)")
    for name, source in cfg.data.sources.items():
        key = f"data.sources.{name}"
        _choice(f"{key}.kind", source.kind, SOURCE_KINDS)
        _choice(f"{key}.clean", source.clean, CLEANERS)
        _positive(f"{key}.weight", source.weight)
        needs = {"manifest": "manifest", "text": "paths", "jsonl": "paths", "parquet": "paths", "hf": "dataset"}
        if not getattr(source, needs[source.kind]):
            raise _fail(f"{key}.{needs[source.kind]}", getattr(source, needs[source.kind]),
                        f"a {source.kind} source needs it")
        if source.kind in ("jsonl", "parquet", "hf") and not source.text_field:
            raise _fail(f"{key}.text_field", source.text_field, "name the field that holds the text")


def _check_data(cfg: RecipeConfig) -> None:
    d = cfg.data
    _check_sources(cfg)
    for key in ("max_line_chars", "shard_tokens", "print_every_s"):
        _positive(f"data.{key}", getattr(d, key))
    _positive("data.workers", d.workers, allow_none=True)
    _within("data.validation_fraction", d.validation_fraction, 0, 1)
    _within("data.test_fraction", d.test_fraction, 0, 1)
    if d.validation_fraction + d.test_fraction >= 1:
        raise _fail("data.test_fraction", d.test_fraction,
                    f"with data.validation_fraction={d.validation_fraction} it leaves nothing to train on")


def _check_tokenizer(cfg: RecipeConfig) -> None:
    t = cfg.tokenizer
    _choice("tokenizer.kind", t.kind, TOKENIZER_KINDS)
    if not BYTE_SYMBOLS_AND_SPECIALS < t.vocab_size <= MAX_SHARD_VOCAB:
        raise _fail("tokenizer.vocab_size", t.vocab_size,
                    f"must be above {BYTE_SYMBOLS_AND_SPECIALS} (bytes and special tokens) and at most "
                    f"{MAX_SHARD_VOCAB:,} (uint16 token shards)")
    if t.kind == "bbpe":
        _positive("tokenizer.min_frequency", t.min_frequency)
        _positive("tokenizer.sample_characters", t.sample_characters, allow_none=True)
    elif t.kind == "released" and not t.manifest:
        raise _fail("tokenizer.manifest", t.manifest, "a released tokenizer needs a manifest of vocab.json and "
                    "merges.txt (e.g. tokenizer=rugpt3)")
    elif t.kind == "pretrained" and not t.name_or_path:
        raise _fail("tokenizer.name_or_path", t.name_or_path, "a pretrained tokenizer needs a Hugging Face model "
                    "directory or hub id")
    for name, stage in cfg.stages.items():
        if stage.init_from is not None and stage.init_from not in cfg.stages and t.kind != "pretrained":
            raise _fail(f"stages.{name}.init_from", stage.init_from,
                        f"is not a stage ({', '.join(cfg.stages)}), so a released checkpoint, which brings its own "
                        "tokenizer: add tokenizer=pretrained (name_or_path: stages.stage1.init_from)")


def _check_model(cfg: RecipeConfig) -> None:
    m = cfg.model
    for key in ("n_layer", "n_embd", "n_head", "n_positions", "vocab_size", "layer_norm_epsilon",
                "initializer_range"):
        _positive(f"model.{key}", getattr(m, key))
    if m.n_embd % m.n_head:
        raise _fail("model.n_head", m.n_head, f"must divide model.n_embd={m.n_embd}")
    if m.vocab_size < cfg.tokenizer.vocab_size:
        raise _fail("model.vocab_size", m.vocab_size,
                    f"is smaller than tokenizer.vocab_size={cfg.tokenizer.vocab_size}; the model needs a row per id")
    for key in ("resid_pdrop", "embd_pdrop", "attn_pdrop"):
        _within(f"model.{key}", getattr(m, key), 0, 1, closed_low=True)
    _choice("model.activation_function", m.activation_function, ACTIVATIONS)
    if m.attn_implementation is not None:
        _choice("model.attn_implementation", m.attn_implementation, ATTENTION)


def _check_optim(key: str, o: OptimConfig) -> None:
    _positive(f"{key}.lr", o.lr)
    if not 0 <= o.min_lr <= o.lr:
        raise _fail(f"{key}.min_lr", o.min_lr, f"must lie in [0, {key}.lr={o.lr}]")
    _within(f"{key}.warmup_fraction", o.warmup_fraction, 0, 1, closed_low=True)
    if not o.weight_decay >= 0:
        raise _fail(f"{key}.weight_decay", o.weight_decay, "must be at least 0")
    if len(o.betas) != 2:
        raise _fail(f"{key}.betas", list(o.betas), "give two values, e.g. [0.9,0.95]")
    for i, beta in enumerate(o.betas):
        _within(f"{key}.betas[{i}]", beta, 0, 1, closed_low=True)
    _positive(f"{key}.eps", o.eps)
    _positive(f"{key}.grad_clip", o.grad_clip, allow_none=True)


def _check_stages(cfg: RecipeConfig) -> None:
    if not cfg.stages:
        raise UserError("stages: no stage to train; choose a stage group (e.g. stage=mini)")
    earlier: list[str] = []
    for name, s in cfg.stages.items():
        key = f"stages.{name}"
        for field_name in ("context", "epochs", "batch_size", "micro_batch_size", "validation_windows",
                           "validate_every_steps", "record_every_steps", "print_every_s", "keep_checkpoints"):
            _positive(f"{key}.{field_name}", getattr(s, field_name))
        _positive(f"{key}.checkpoint_every_tokens", s.checkpoint_every_tokens, allow_none=True)
        if s.context > cfg.model.n_positions:
            raise _fail(f"{key}.context", s.context, f"exceeds model.n_positions={cfg.model.n_positions}")
        if s.batch_size % (s.micro_batch_size * cfg.world_size):
            raise _fail(f"{key}.batch_size", s.batch_size,
                        f"is not a multiple of micro_batch_size x devices x nodes = {s.micro_batch_size} x "
                        f"{cfg.trainer.devices} x {cfg.trainer.num_nodes}")
        if s.init_from in cfg.stages and s.init_from not in earlier:
            raise _fail(f"{key}.init_from", s.init_from, f"not an earlier stage ({', '.join(earlier) or 'none'})")
        _choice(f"{key}.new_positions", s.new_positions, NEW_POSITIONS)
        if s.new_positions == "copy" and not (s.init_from in earlier and cfg.stages[s.init_from].context < s.context):
            raise _fail(f"{key}.new_positions", s.new_positions,
                        "copies positions an earlier stage (init_from) learned at a shorter context; set it to keep")
        _check_optim(f"{key}.optim", s.optim)
        earlier.append(name)


def _check_trainer(cfg: RecipeConfig) -> None:
    t = cfg.trainer
    _choice("trainer.accelerator", t.accelerator, ACCELERATORS)
    _positive("trainer.devices", t.devices)
    _positive("trainer.num_nodes", t.num_nodes)
    _choice("trainer.strategy", t.strategy, STRATEGIES)
    _choice("trainer.precision", t.precision, PRECISIONS)
    _choice("trainer.fsdp.sharding_strategy", t.fsdp.sharding_strategy, SHARDING_STRATEGIES)
    _choice("trainer.loss", t.loss, LOSSES)
    _positive("trainer.loss_chunk_tokens", t.loss_chunk_tokens)
    if t.strategy.startswith("fsdp") and t.accelerator == "cpu":
        raise _fail("trainer.strategy", t.strategy, "Lightning's FSDP runs on GPUs only; use trainer=fsdp (GPUs), or "
                    "strategy=ddp on CPUs")
    for name, value in sorted(t.args.items()):
        if name in DERIVED_TRAINER_ARGS:
            raise _fail(f"trainer.args.{name}", value, "is set by each stage or by a trainer key; remove it")
        if name not in TRAINER_ARGS:
            raise _fail(f"trainer.args.{name}", value, "not an argument of Lightning's Trainer")


def _check_eval(cfg: RecipeConfig) -> None:
    p = cfg.eval.perplexity
    if not p.contexts:
        raise _fail("eval.perplexity.contexts", list(p.contexts), "give at least one context")
    largest = max(p.contexts)
    for context in p.contexts:
        _positive("eval.perplexity.contexts", context)
        if largest % context or context > cfg.model.n_positions:
            raise _fail("eval.perplexity.contexts", list(p.contexts), f"each must divide the largest and be at "
                        f"most model.n_positions={cfg.model.n_positions}")
    if p.max_tokens is not None and p.max_tokens < largest:
        raise _fail("eval.perplexity.max_tokens", p.max_tokens,
                    f"scores fewer tokens than one block of the largest context ({largest}); raise it or use null")
    _positive("eval.perplexity.batch_size", p.batch_size)
    _positive("eval.perplexity.stride", p.stride, allow_none=True)
    e = cfg.eval
    for name in e.stages:
        if name not in cfg.stages:
            raise _fail("eval.stages", list(e.stages), f"no stage {name!r}; stages are {list(cfg.stages)}")
    _positive("eval.batch_size", e.batch_size)
    _choice("eval.dtype", e.dtype, EVAL_DTYPES)
    _positive("eval.limit", e.limit, allow_none=True)
    if e.num_fewshot is not None and e.num_fewshot < 0:
        raise _fail("eval.num_fewshot", e.num_fewshot, "must be 0 or more, or null for each task's own")
    _choice("eval.prefix_token", e.prefix_token, ("eos", "bos"))
    if e.device is not None and not re.fullmatch(r"cpu|cuda(:\d+)?|mps", e.device):
        raise _fail("eval.device", e.device, "choose cpu, cuda, cuda:<index> or mps, or null for the trainer's")
    g = e.generate
    _positive("eval.generate.max_new_tokens", g.max_new_tokens)
    _positive("eval.generate.num_samples", g.num_samples)
    _positive("eval.generate.top_k", g.top_k, allow_none=True)
    if g.temperature < 0:
        raise _fail("eval.generate.temperature", g.temperature, "must be 0 (greedy) or more")
    if g.top_p is not None and not 0 < g.top_p <= 1:
        raise _fail("eval.generate.top_p", g.top_p, "must lie in (0, 1], or null")


def _check_plan(cfg: RecipeConfig) -> None:
    p = cfg.plan
    if not 0 < p.mfu <= 1:
        raise _fail("plan.mfu", p.mfu, "must lie in (0, 1], e.g. 0.45")
    _positive("plan.corpus_tokens", p.corpus_tokens, allow_none=True)
    if p.published is None:
        return
    _positive("plan.published.gpus", p.published.gpus)
    _positive("plan.published.days", p.published.days)
    _choice("plan.published.device", p.published.device, tuple(peak.name for peak in PEAKS))
    if not p.published.stages or any(name not in cfg.stages for name in p.published.stages):
        raise _fail("plan.published.stages", list(p.published.stages),
                    f"list the stages the published figure covers, of {list(cfg.stages)}")


def _check_contamination(cfg: RecipeConfig) -> None:
    c = cfg.contamination
    _positive("contamination.n", c.n)
    if not 1 <= c.min_tokens <= c.n:
        raise _fail("contamination.min_tokens", c.min_tokens, f"must lie in [1, contamination.n={c.n}]")
    for name, texts in c.sets.items():
        _choice(f"contamination.sets.{name}.format", texts.format, EVAL_TEXT_FORMATS)
        if not texts.fields:
            raise _fail(f"contamination.sets.{name}.fields", list(texts.fields), "name at least one text field")
    if c.drop and not c.sets:
        raise _fail("contamination.drop", c.drop, "drops documents by contamination.sets, and it is empty")


def _check_run_name(name: str) -> None:
    if not name or name in (".", "..", "published") or "/" in name or "\\" in name:
        raise _fail("run_name", name, "give a plain folder name (not 'published', no slashes)")


def check_config(cfg: RecipeConfig) -> None:
    """Types are checked by the schema; here ranges, relations and choices. Reads no file."""
    _check_run_name(cfg.run_name)
    _choice("resume", cfg.resume, RESUME)
    _check_data(cfg)
    _check_tokenizer(cfg)
    _check_model(cfg)
    _check_trainer(cfg)
    _check_stages(cfg)
    _check_eval(cfg)
    _check_plan(cfg)
    _check_contamination(cfg)
    check_paper_runs(cfg.paper.runs)


def check_paper_runs(runs: list[str]) -> None:
    if not runs:
        raise _fail("paper.runs", list(runs), "list at least one run (e.g. [mini])")
    for name in runs:
        _check_run_name(name)


# ---------------------------------------------------------------------------------------- machine checks


def check_accelerator(trainer: TrainerConfig) -> None:
    """The accelerator exists here and has the devices asked for (imports torch only for a non-CPU run)."""
    if trainer.accelerator in ("cpu", "auto"):
        return
    import torch

    if trainer.accelerator in ("gpu", "cuda"):
        found = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if found == 0:
            raise _fail("trainer.accelerator", trainer.accelerator,
                        "no CUDA GPU on this machine; use trainer=cpu, or run on a GPU machine")
        if trainer.devices > found:
            raise _fail("trainer.devices", trainer.devices, f"this machine has {found} GPU(s); lower it")
    elif trainer.accelerator == "mps" and not torch.backends.mps.is_available():
        raise _fail("trainer.accelerator", "mps", "MPS is not available here; use trainer=cpu")
    elif trainer.accelerator == "tpu":
        raise _fail("trainer.accelerator", "tpu", "TPUs are not supported by this package; use gpu or cpu")


def check_compiler(trainer: TrainerConfig) -> None:
    """torch.compile on CPUs builds C++ with the compiler Inductor looks for ($CXX, else g++); GPUs use Triton."""
    import shutil

    compiler = os.environ.get("CXX", "g++")
    if trainer.compile and trainer.accelerator == "cpu" and shutil.which(compiler) is None:
        raise _fail("trainer.compile", trainer.compile, f"torch.compile on CPUs needs a C++ compiler and {compiler!r} "
                    "(from $CXX, else g++) is not found; install one, point CXX at it, or set trainer.compile=false")


def check_writable(key: str, path: Path) -> None:
    """``path`` exists as a writable folder or can be created; probes with a temporary file, creates nothing."""
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{key}: {path} cannot be created, {existing} is a file; choose another folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", suffix=".tmp", dir=existing)
    except OSError as exc:
        raise UserError(f"{key}: {existing} is not writable ({exc.strerror}); choose another folder or fix its "
                        "permissions") from None
    os.close(fd)
    os.unlink(probe)
