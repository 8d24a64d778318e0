"""Typed configs, registered with Hydra's ConfigStore: the schemas every YAML group of ``conf/`` is merged onto, so
that a wrong type or a misspelt key fails at composition. Ranges, relations and choices are checked in
reproduce/commands/checks.py (config only) and reproduce/commands/preflight.py (the machine and the files).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from reproduce.core.errors import UserError
from reproduce.core.layout import SUMMARY, RunLayout
from reproduce.evaluate.benchmarks import contamination_sets


@dataclass
class SourceConfig:
    """One source of documents (reproduce/data/sources.py); every document gets a stable id "<source>:<where>"."""
    kind: str = MISSING  # a class of reproduce/data/sources.py: manifest | text | jsonl | parquet | hf
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
    attn_implementation: str | None = None  # transformers' kernel name, or sdpa_causal (reproduce/model/attention.py)
    pad_vocab_multiple: int = 1  # embedding rows padded to a multiple of this in training (exports: vocab_size rows)


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
    compile_mode: str | None = None  # torch.compile's mode (null: its default), e.g. max-autotune-no-cudagraphs
    fused_optimizer: bool = False  # AdamW's fused kernel: one launch for all parameters
    loss: str = "plain"  # plain: the logits, then cross-entropy | chunked: LM head + cross-entropy a chunk at a time
    loss_chunk_tokens: int = 8192  # chunked: tokens per chunk (a chunk's logits are chunk x vocab)
    fsdp: FSDPConfig = field(default_factory=FSDPConfig)
    args: dict[str, Any] = field(default_factory=dict)  # any other Lightning Trainer argument


@dataclass
class PerplexityConfig:
    contexts: list[int] = MISSING  # stage models on the test documents: evenly spaced blocks at these contexts
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
class DuringTrainingConfig:
    """Benchmarks scored in the training loop (reproduce/train/in_training_eval.py) with the final evaluation's runner:
    points in results/<run>/eval_curve.json and the trackers."""
    enabled: bool = False
    suite: str = "ru_local"  # the suite its tasks come from (an offline one: the network is not reached in the loop)
    tasks: list[str] = field(default_factory=lambda: ["rublimp", "xwinograd_ru_local", "parus_crowd_majority"])
    limit: int = 8  # items per task: the first `limit` of each (RuBLiMP: a seeded subset of every phenomenon)
    every_tokens: int | None = None  # training tokens of a stage between points (null: checkpoints and ends only)
    at_checkpoints: bool = True  # also where a checkpoint is saved; always at each stage's end
    validation_tokens: int | None = 16384  # validation tokens for loss and bits per byte (null: none)


@dataclass
class EvalConfig:
    model: str | None = None  # `reproduce eval model=...`: a hub id, a Hugging Face dir or a run dir (runs/<run>)
    name: str | None = None  # results/eval/<name>/ (null: from the model: owner--name, the folder, <run>-<stage>)
    suite: str = "ru_local"  # a suite of reproduce/evaluate/tasks/suites.yaml
    tasks: list[str] | None = None  # some of the suite's tasks only (null: all; []: none, perplexity alone)
    stages: list[str] = MISSING  # the run's stages that the suite scores
    batch_size: int = 64
    dtype: str = "float32"
    device: str | None = None  # null: the trainer's (cuda under a GPU trainer); cpu, cuda, cuda:N
    limit: int | None = None  # items per task (null: all)
    num_fewshot: int | None = None  # null: each task's own
    prefix_token: str = "eos"  # the token before a zero-context item: eos (</s>, the document separator) or bos
    perplexity: PerplexityConfig = field(default_factory=PerplexityConfig)
    generate: GenerateConfig = field(default_factory=GenerateConfig)
    during_training: DuringTrainingConfig = field(default_factory=DuringTrainingConfig)
    # `reproduce eval eval.checkpoints=[all]`: the run's kept checkpoints (all, a stage, <stage>:<step>) scored as
    # during training, into eval_curve.json (null: the run's own eval step)
    checkpoints: list[str] | None = None


@dataclass
class TrackerConfig:
    """An experiment tracker of conf/logger/ (its name: csv, tensorboard, wandb or mlflow; Lightning's logger of that
    name, built in reproduce/train/trackers.py)."""
    save_dir: str | None = None  # null: under runs/<run>/
    project: str = "rugpt3-reproduce"  # wandb: the project; mlflow: the experiment
    entity: str | None = None  # wandb: team or user
    offline: bool = True  # wandb: false is online, with credentials from W&B's own login
    tracking_uri: str | None = None  # mlflow: null is the file store in save_dir


@dataclass
class EvalTextsConfig:
    """Where an evaluation set's item texts are, for the contamination report (reproduce/data/contamination.py); a
    benchmark folder's benchmark.yaml gives these keys (reproduce/evaluate/benchmarks.py)."""
    benchmark: str | None = None  # a benchmark folder (reproduce/evaluate/tasks/<name>/): its manifest.tsv, unless
    manifest: str | None = None  # a TSV of (path, sha256, url) of the set's files is named here
    format: str = MISSING  # csv | tsv | jsonl
    fields: list[str] = MISSING  # the text fields of an item (tsv without a header: 0-based column numbers)
    files: list[str] = field(default_factory=lambda: ["*"])  # which of the manifest's files (globs on the file name)
    header: bool = True  # csv, tsv: the first row names the columns
    where: dict[str, str] = field(default_factory=dict)  # keep only rows whose field has this value


@dataclass
class ContaminationConfig:
    n: int = 13  # an item is contaminated when one of its n-token sequences occurs in the training shards
    min_tokens: int = 8  # items shorter than n tokens are matched whole; shorter than this, not checked
    drop: bool = False  # prepare drops training documents that share such a sequence with any set (or test documents)
    test_works: bool = True  # also report the corpus's test split (per document) against the train split
    # name -> EvalTextsConfig (typed in __post_init__); default: every benchmark folder with local data
    sets: dict[str, Any] = field(default_factory=contamination_sets)

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

    def includes(self, run: str) -> bool:
        """Whether a run's recipe rebuilds the paper: it is one of the runs or the extra runs."""
        return run in self.runs or run in self.extra_runs

    def present_runs(self, results: Path) -> tuple[list[str], list[str]]:
        """(runs of the paper, extra runs left out because results/<run>/summary.json is absent)."""
        extra = [run for run in dict.fromkeys(self.extra_runs) if run not in self.runs]
        absent = [run for run in extra if not (Path(results) / run / SUMMARY).is_file()]
        return [*self.runs, *(run for run in extra if run not in absent)], absent


@dataclass
class PlanConfig:
    """`reproduce plan`: tokens, FLOPs, memory and GPU time of the recipe (reproduce/recipe/plan.py)."""
    mfu: float = 0.45  # assumed model FLOPs utilisation on every device
    use_measured: bool = True  # a device measured in results/perf/gpu_mfu.json uses its measured MFU instead
    corpus_tokens: int | None = None  # tokens one epoch covers; null: the train split of results/<run>/data.json
    published: str | None = None  # a model of results/published/compute.csv: its published compute, printed beside


@dataclass
class CompareConfig:
    """`reproduce compare` and the verdict at the end of a recipe run (reproduce/recipe/compare.py)."""
    reference: str | None = None  # a results folder or a git revision; null: the committed results, else the copy
    seed_runs: list[str] = field(default_factory=list)  # runs of the same recipe with other seeds (results/<run>/)
    sigmas: float = 3.0  # tolerance = sigmas x the sample standard deviation over the reference and the seed runs


@dataclass
class PublishConfig:
    """`reproduce publish` (reproduce/recipe/publish.py)."""
    model: str | None = None  # an exported model folder, runs/<run>/models/<stage>
    repo_id: str | None = None  # the Hub repository, user/name (created if new)
    private: bool = False


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
    compare: CompareConfig = field(default_factory=CompareConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    # name -> TrackerConfig (conf/logger/; logger=[csv,tensorboard] for several); untyped for Hydra, typed below
    logger: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.logger = typed_entries("logger", self.logger, TrackerConfig)

    @property
    def layout(self) -> RunLayout:
        """The run's folders and files (reproduce/core/layout.py)."""
        return RunLayout.of(self.paths.results, self.paths.runs, self.run_name)

    @property
    def world_size(self) -> int:
        return self.trainer.devices * self.trainer.num_nodes


ConfigStore.instance().store(name="recipe_schema", node=RecipeConfig)
ConfigStore.instance().store(name="paper_schema", node=PaperCommandConfig)
