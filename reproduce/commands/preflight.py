"""Everything a command needs from this machine and its files, checked before any work: seconds, nothing written.

The config's own checks (reproduce/commands/checks.py) come first; then the accelerator, writable output folders, every
manifest file the command will read (resolved and checked against its sha256), the outputs an earlier step must
have left, and results of another config. Every failed check is one ``UserError`` line; the CLI prints it and exits
with code 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from reproduce.commands.checks import check_config, check_generation_fits, check_paper_runs, fail
from reproduce.config.compose import compose_config
from reproduce.config.schema import PaperCommandConfig, PathsConfig, RecipeConfig, TokenizerConfig, TrainerConfig
from reproduce.core import records
from reproduce.core.arithmetic import model_context
from reproduce.core.errors import UserError
from reproduce.core.io import check_own_file, probe_writable, read_json
from reproduce.core.layout import DATA, PAPER_RUN_FILES, PLAN, PREPARED_POINTER, RECORD, SUMMARY, EvalLayout, plan_files
from reproduce.core.locks import LOCK
from reproduce.core.paths import config_file
from reproduce.core.perf import native_bf16_cpu
from reproduce.data.eval_items import read_items
from reproduce.data.manifest import Resolver, make_resolver, read_manifest
from reproduce.data.sources import open_source
from reproduce.evaluate.inputs import (
    check_results_name,
    check_tokenizer,
    eval_device,
    named_models,
    read_texts,
    text_files,
    token_counter,
)
from reproduce.evaluate.suites import resolve_suite
from reproduce.model.pretrained import (
    check_causal_lm,
    check_generation_config,
    check_init_checkpoint,
    load_pretrained_tokenizer,
    load_tokenizer,
)
from reproduce.paper.published_tables import PUBLISHED_FILES
from reproduce.recipe.compare import load_reference
from reproduce.recipe.plan import published_compute
from reproduce.recipe.record import check_record, require_step
from reproduce.recipe.steps import NAMES, earlier_steps
from reproduce.train.watch import check_interval, check_trackers, resolve_during, selected_checkpoints, tracker_dir

if TYPE_CHECKING:
    from reproduce.commands.table import Command

# The environment each launcher of Lightning's cluster environments sets on every node (what their detect() reads,
# without importing Lightning: seconds); NODE_RANK is Lightning's own, set by hand on each node.
LAUNCHER_VARIABLES = {"SLURM": ("SLURM_NTASKS",), "torchrun": ("RANK", "LOCAL_RANK", "GROUP_RANK"),
                      "LSF": ("LSB_JOBID",), "MPI": ("OMPI_COMM_WORLD_SIZE",), "NODE_RANK": ("NODE_RANK",)}


def check_eval_device(cfg: RecipeConfig) -> None:
    """Evaluation on CUDA (eval.device, or by default a GPU trainer's) needs a CUDA device here."""
    device = eval_device(cfg.eval.device, cfg.trainer.accelerator)
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"eval.device={device}: no CUDA device here; use eval.device=cpu")


def check_eval_command(cfg: RecipeConfig, generate: bool) -> None:
    """`reproduce eval model=...` and `reproduce generate`: the models (causal LMs transformers loads natively), their
    tokenizers and contexts, the suite and its data, the texts, the device; nothing of the recipe's own steps is
    needed."""
    check_config(cfg)
    evaluation = cfg.eval
    suite = resolve_suite(evaluation, make_resolver(cfg.data))
    check_eval_device(cfg)
    folders = EvalLayout.of(cfg.paths.results, cfg.paths.runs)
    for ref in named_models(evaluation.model, evaluation.name):
        folders.model(ref.name)  # a plain name that stays under results/eval/
        if not generate:
            check_results_name(folders, ref, cfg.overwrite)
        check_tokenizer(ref)
        check_generation_config("model", ref.source)
        context = model_context(check_causal_lm("model", ref.source))
        stride = evaluation.perplexity.stride
        if stride is not None and stride > context:
            raise fail("eval.perplexity.stride", stride, f"is more than the context of {ref.source} ({context}); "
                       "lower it")
        if generate:
            count = token_counter(ref)  # the tokenizers library alone where the folder has tokenizer.json: no
            if count is None:  # transformers import, so that a refusal stays within the pre-flight's seconds
                tokenizer = load_tokenizer("model", ref.source)
                count = lambda text, t=tokenizer: len(t(text, add_special_tokens=False)["input_ids"])  # noqa: E731
            check_generation_fits(f"the context of {ref.source}", context, evaluation.generate,
                                  [evaluation.generate.prompt or ""], count)
    for pattern in evaluation.perplexity.texts:
        if not text_files(pattern):
            raise UserError(f"eval.perplexity.texts: {pattern!r} matches no file; give text files or globs")
    run_dir = (Path(evaluation.model).expanduser() / PREPARED_POINTER).is_file()
    if not generate and not suite.tasks and not evaluation.perplexity.texts and not run_dir:
        raise UserError("eval.tasks=[] and no eval.perplexity.texts: nothing to score; give texts "
                        "(eval.perplexity.texts='[my.txt]') or tasks")
    if evaluation.perplexity.texts and not read_texts(evaluation.perplexity.texts).texts:
        raise UserError(f"eval.perplexity.texts={list(evaluation.perplexity.texts)}: no file holds text (each is "
                        "empty, binary, or neither UTF-8 nor cp1251 Russian)")
    check_writable("paths.results", folders.results)
    check_writable("paths.runs", folders.work)
    if not generate and suite.tasks and suite.scorer == "lm_eval":  # lm-eval's datasets build their cache there
        check_writable("the datasets cache (HF_DATASETS_CACHE, else HF_HOME/datasets, else ~/.cache)",
                       datasets_cache())


def datasets_cache() -> Path:
    """Where the datasets library writes its cache, as it decides (without importing it)."""
    if os.environ.get("HF_DATASETS_CACHE"):
        return Path(os.environ["HF_DATASETS_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "huggingface"
    return Path(home).expanduser() / "datasets"


def settle_precision(cfg: RecipeConfig, planned: bool = False) -> None:
    """``trainer.precision=auto`` becomes the precision it stands for here (bf16-mixed in a plan, which is made for
    other machines), and is recorded as such."""
    if cfg.trainer.precision == "auto":
        cfg.trainer.precision = "bf16-mixed" if planned else auto_precision(cfg.trainer)


def check_plan(cfg: RecipeConfig, command: Command) -> None:
    """A plan reads the config alone: no machine checks (a plan for 128 GPUs runs on a laptop)."""
    settle_precision(cfg, planned=True)
    check_config(cfg)
    check_writable("paths.results", Path(cfg.paths.results) / PLAN)
    for path in plan_files(cfg.paths.results, cfg.run_name):  # both before either is written
        check_own_file(path, "plan files")
    if cfg.plan.published is not None:
        published_compute(cfg.paths.results, cfg.plan.published)


def check_compare(cfg: RecipeConfig, command: Command) -> None:
    """The run's summary and the reference exist; the verdict can be written."""
    settle_precision(cfg)
    check_config(cfg)
    if not cfg.layout.result(SUMMARY).is_file():
        raise UserError(f"{cfg.layout.result(SUMMARY)} not found: run `reproduce run_name={cfg.run_name}` first, "
                        "or give the run_name of a run with results")
    load_reference(cfg)
    check_writable("paths.results", cfg.layout.results)


def check_generate(cfg: RecipeConfig, command: Command) -> None:
    if cfg.eval.model is None:
        raise UserError("reproduce generate needs model=<run dir | Hugging Face dir | hub id> (and prompt=...)")
    check_eval_command(cfg, generate=True)


def check_eval(cfg: RecipeConfig, command: Command) -> None:
    """With ``model=``: the models to score; without: the run's own eval step."""
    if command.scoring(cfg):
        check_eval_command(cfg, generate=False)
    else:
        check_steps(cfg, command)


def check_paper(cfg: PaperCommandConfig, command: Command) -> None:
    check_paper_runs(cfg.paper)
    check_paper_inputs(cfg.paths, cfg.paper.runs)


def check_steps(cfg: RecipeConfig, command: Command) -> None:
    """Every check of a command that runs recipe steps, in order of cost; reads files, writes nothing."""
    settle_precision(cfg)
    steps = command.steps
    check_config(cfg)
    if {"train", "eval"} & set(steps):
        check_accelerator(cfg.trainer)
        check_compiler(cfg.trainer)
    if "train" in steps:
        check_launcher(cfg.trainer)
    if "eval" in steps and cfg.eval.tasks == []:
        raise fail("eval.tasks", [], "the run's eval step scores its suite (the verdict and the paper read it); "
                   "leave eval.tasks unset, or score perplexity alone with `reproduce eval model=runs/<run>/models/"
                   "<stage> eval.tasks=[]`")
    check_writable("paths.results", cfg.layout.results)
    check_writable("paths.runs", cfg.layout.work)
    check_own_file(cfg.layout.work / LOCK, "lock files")
    check_own_file(cfg.layout.log_file, "log files")
    for folder in (cfg.layout.results, cfg.layout.work):  # written after the lock and the log: refused before them
        check_own_file(folder / RECORD, "config records")
    if {"train", "eval"} & set(steps):
        check_trackers(cfg)
        for kind in cfg.logger:
            check_writable(f"logger.{kind}.save_dir", tracker_dir(cfg, kind))
    if "prepare" in steps:
        check_writable("paths.prepared", Path(cfg.paths.prepared))
        # where a file the mirror lacks is downloaded to; without downloads it is only read, but must be a folder
        check_writable("data.cache_dir", Path(cfg.data.cache_dir).expanduser(), probe=cfg.data.allow_download)
    if steps == NAMES and cfg.compare.reference is not None:  # the whole recipe ends with the verdict and the paper
        load_reference(cfg)
    if steps == NAMES and cfg.paper.includes(cfg.run_name):
        check_paper_inputs(cfg.paths, [run for run in cfg.paper.runs if run != cfg.run_name])
    earlier = earlier_steps(steps)
    check_record(cfg, earlier + steps)
    for step in earlier:
        require_step(cfg, step, command.name)
    resolver = make_resolver(cfg.data)
    if "prepare" in steps:
        for name, source in cfg.data.sources.items():
            open_source(name, source).check(resolver)
    if "eval" in steps:
        resolve_suite(cfg.eval, resolver)
        check_eval_device(cfg)
    if "eval" in steps and cfg.eval.checkpoints is not None:  # kept checkpoints scored as in the loop
        resolve_during(cfg)
        selected_checkpoints(cfg)
    if "train" in steps and cfg.eval.during_training.enabled:
        resolve_during(cfg)
        check_eval_device(cfg)
        if (data_json := cfg.layout.result(DATA)).is_file():  # else train checks it once prepare has counted
            check_interval(cfg, records.data.read(data_json)["split"]["train"]["tokens"])
    if "prepare" in steps and cfg.tokenizer.kind == "released":
        for entry in read_manifest(config_file(cfg.tokenizer.manifest)):
            resolver.resolve(entry)
    if "contamination" in steps or "prepare" in steps and cfg.contamination.drop:
        for name, texts in cfg.contamination.sets.items():  # files found and checked, fields present: 0.3 s for all
            read_items(name, texts, resolver)
    if "prepare" in steps and cfg.tokenizer.kind == "released":
        check_released_vocabulary(cfg.tokenizer, resolver)
    if "train" in steps:
        for name, stage in cfg.stages.items():
            if stage.init_from is not None and stage.init_from not in cfg.stages:
                check_init_checkpoint(f"stages.{name}.init_from", stage.init_from, cfg.model)
    if "prepare" in steps and cfg.tokenizer.kind == "pretrained":
        load_pretrained_tokenizer(cfg.tokenizer)
    if "prepare" in steps:  # the prepared sets' locks (prepared/.<hash>.lock), as the run's: a link planted at any
        # of them is refused before any work; which one this run takes needs its inputs' hash (seconds to compute),
        # and the lock's own opening refuses a link planted later
        prepared = Path(cfg.paths.prepared)
        for lock in sorted(prepared.glob(".*.lock")) if prepared.is_dir() else []:
            check_own_file(lock, "lock files")


def check_released_vocabulary(tok: TokenizerConfig, resolver: Resolver) -> None:
    """The manifest lists vocab.json and merges.txt, and the vocabulary has ``tokenizer.vocab_size`` entries."""
    files = {Path(e.path).name: e for e in read_manifest(config_file(tok.manifest))}
    missing = sorted({"vocab.json", "merges.txt"} - set(files))
    if missing:
        raise UserError(f"tokenizer.manifest={tok.manifest!r}: lists no {' and no '.join(missing)}")
    path = resolver.resolve(files["vocab.json"])
    try:
        size = len(read_json(path))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a vocab.json ({exc}); fix tokenizer.manifest") from None
    if size != tok.vocab_size:
        raise UserError(f"tokenizer.vocab_size={tok.vocab_size}: {path} has {size} entries; set it to that")


def check_paper_inputs(paths: PathsConfig, runs: list[str]) -> None:
    """The published tables and the listed runs' results exist; results/ and paper/ can be written."""
    results = Path(paths.results)
    needed = [results / name for name in PUBLISHED_FILES]
    needed += [results / run / name for run in runs for name in PAPER_RUN_FILES]
    for path in needed:
        if not path.is_file():
            what = ("copy results/published/ from the repository into paths.results" if "published" in path.parts
                    else f"run `reproduce run_name={path.parent.name}` first, or leave it out of paper.runs")
            raise UserError(f"{path} not found: {what}")
    check_writable("paths.results", results)  # results/architectures.json
    check_writable("paths.paper", Path(paths.paper))


def load(command: Command, overrides: list[str]) -> RecipeConfig | PaperCommandConfig:
    """Compose and check a command's config; raises ``UserError`` on the first problem."""
    cfg = compose_config(command.config_name, overrides)
    command.check(cfg, command)
    return cfg


def check_accelerator(trainer: TrainerConfig) -> None:
    """The accelerator exists here and has the devices asked for (imports torch only for a non-CPU run)."""
    if trainer.accelerator in ("cpu", "auto"):
        cores = os.cpu_count() or 1
        if trainer.accelerator == "cpu" and trainer.devices > cores:  # one process per device, each with its copy
            raise fail("trainer.devices", trainer.devices, f"a CPU run starts one process per device and this machine "
                       f"has {cores} cores; give at most {cores}")
        return
    import torch

    if trainer.accelerator in ("gpu", "cuda"):
        found = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if found == 0:
            raise fail("trainer.accelerator", trainer.accelerator,
                       "no CUDA GPU on this machine; use trainer=cpu, or run on a GPU machine")
        if trainer.devices > found:
            raise fail("trainer.devices", trainer.devices, f"this machine has {found} GPU(s); lower it")
    elif trainer.accelerator == "mps" and not torch.backends.mps.is_available():
        raise fail("trainer.accelerator", "mps", "MPS is not available here; use trainer=cpu")
    elif trainer.accelerator == "tpu":
        raise fail("trainer.accelerator", "tpu", "TPUs are not supported by this package; use gpu or cpu")


def auto_precision(trainer: TrainerConfig) -> str:
    """bf16-mixed where the accelerator computes bf16 natively (a CUDA GPU that supports it, a CPU with AVX512-BF16
    or AMX), else 32-true."""
    if trainer.accelerator == "cpu":
        return "bf16-mixed" if native_bf16_cpu() else "32-true"
    import torch

    if trainer.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if trainer.accelerator == "auto" and native_bf16_cpu() else "32-true"


def check_launcher(trainer: TrainerConfig) -> None:
    """Several nodes need a launcher that starts this process on each of them (else the first waits forever)."""
    if trainer.num_nodes == 1 or any(all(v in os.environ for v in names) for names in LAUNCHER_VARIABLES.values()):
        return
    raise fail("trainer.num_nodes", trainer.num_nodes, f"no multi-node launcher ({', '.join(LAUNCHER_VARIABLES)}) "
               "started this process, so it would wait for nodes that never join; launch it with "
               "launch/slurm.sbatch or torchrun, or set trainer.num_nodes=1")


def check_compiler(trainer: TrainerConfig) -> None:
    """torch.compile on CPUs builds C++ with the compiler Inductor looks for ($CXX, else g++); GPUs use Triton."""
    import shutil

    compiler = os.environ.get("CXX", "g++")
    if trainer.compile and trainer.accelerator == "cpu" and shutil.which(compiler) is None:
        raise fail("trainer.compile", trainer.compile, f"torch.compile on CPUs needs a C++ compiler and {compiler!r} "
                   "(from $CXX, else g++) is not found; install one, point CXX at it, or set trainer.compile=false")


def check_writable(key: str, path: Path, probe: bool = True) -> None:
    """``path`` exists as a writable folder or can be created (``probe`` False: only that it is, or can be, a
    folder); probes with a temporary file, creates nothing."""
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{key}: {path} cannot be created, {existing} is a file; choose another folder")
    if not probe:
        return
    try:
        probe_writable(existing)
    except OSError as exc:
        raise UserError(f"{key}: {existing} is not writable ({exc.strerror}); choose another folder or fix its "
                        "permissions") from None
