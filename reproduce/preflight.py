"""Compose a command's config and check everything it needs before any work: seconds, nothing written.

Composition errors (a wrong type, a misspelt key, an unknown group option) and every failed check become
one ``UserError`` line; the CLI prints it and exits with code 2.
"""

from __future__ import annotations

import json
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from reproduce.config import (
    STEP_NEEDS,
    STEPS,
    PaperCommandConfig,
    PathsConfig,
    RecipeConfig,
    TokenizerConfig,
    check_accelerator,
    check_compiler,
    check_config,
    check_paper_runs,
    check_writable,
)
from reproduce.data.contamination import read_items
from reproduce.data.manifest import Resolver, make_resolver, read_manifest
from reproduce.data.sources import check_source
from reproduce.errors import UserError
from reproduce.evaluate.inputs import check_tokenizer, eval_device, find_models, text_files
from reproduce.evaluate.lm_eval_tasks import data_names
from reproduce.evaluate.suites import check_suite, load_suite
from reproduce.paper.published_tables import PUBLISHED_FILES
from reproduce.paper.tables import RUN_FILES
from reproduce.paths import CONF_DIR, config_file
from reproduce.plan import check_plan
from reproduce.pretrained import check_init_checkpoint, load_pretrained_tokenizer
from reproduce.results import check_record, require_step

# The steps each run command performs; `plan` and `paper` are commands of their own.
COMMAND_STEPS = {"run": STEPS, "prepare": ("prepare",), "train": ("train",), "eval": ("eval",),
                 "contamination": ("contamination",), "generate": ()}
_OMEGACONF_TRAILER = ("full_key:", "reference_type=", "object_type=")


def one_line(exc: BaseException) -> str:
    """An exception and its causes as one line, without OmegaConf's key/type trailer lines."""
    parts: list[str] = []
    while exc is not None:
        lines = [line.strip() for line in str(exc).splitlines()]
        text = " ".join(line for line in lines if line and not line.startswith(_OMEGACONF_TRAILER))
        text = text.split(" Config search path:")[0]  # Hydra's list of where it looked
        if text and text not in parts:
            parts.append(text)
        exc = exc.__cause__
    return ": ".join(parts)


def compose_config(config_name: str, overrides: list[str]) -> RecipeConfig | PaperCommandConfig:
    """The typed config of an entry config (conf/<config_name>.yaml) with Hydra overrides."""
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return OmegaConf.to_object(compose(config_name=config_name, overrides=overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        line, cause = one_line(exc), exc
        while cause is not None and not getattr(cause, "full_key", None):
            cause = cause.__cause__
        key = getattr(cause, "full_key", None)
        raise UserError(f"{key}: {line}" if key and key not in line else line) from None


def manifests_needed(cfg: RecipeConfig, steps: tuple[str, ...]) -> list[str]:
    needed = []
    if "prepare" in steps and cfg.tokenizer.kind == "released":
        needed.append(cfg.tokenizer.manifest)
    if "eval" in steps:
        needed += [f"manifests/{b}.tsv" for b in load_suite(cfg.eval.suite, cfg.eval.tasks).benchmarks
                   if data_names(b)]
    return needed


def check_eval_device(cfg: RecipeConfig) -> None:
    """Evaluation on CUDA (eval.device, or by default a GPU trainer's) needs a CUDA device here."""
    device = eval_device(cfg.eval.device, cfg.trainer.accelerator)
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"eval.device={device}: no CUDA device here; use eval.device=cpu")


def check_eval_command(cfg: RecipeConfig) -> None:
    """`reproduce eval model=...` and `reproduce generate`: the models, their tokenizers, the suite and its data, the
    texts, the device; nothing of the recipe's own steps is needed."""
    check_config(cfg)
    suite = load_suite(cfg.eval.suite, cfg.eval.tasks)
    check_suite(suite)
    check_eval_device(cfg)
    for ref in find_models(cfg.eval.model):
        check_tokenizer(ref)
    resolver = make_resolver(cfg.data)
    for manifest in manifests_needed(cfg, ("eval",)):
        for entry in read_manifest(config_file(manifest)):
            resolver.resolve(entry)
    for pattern in cfg.eval.perplexity.texts:
        if not text_files(pattern):
            raise UserError(f"eval.perplexity.texts: {pattern!r} matches no file; give text files or globs")
    check_writable("paths.results", Path(cfg.paths.results) / "eval")
    check_writable("paths.runs", Path(cfg.paths.runs) / "eval")


def check_recipe(cfg: RecipeConfig, command: str) -> None:
    """Every check of a run command, in order of cost; reads files, writes nothing. A plan reads the config alone:
    it skips the machine's checks (a plan for 128 GPUs runs on a laptop)."""
    if command == "plan":
        check_plan(cfg)
        return
    if command == "generate" and cfg.eval.model is None:
        raise UserError("reproduce generate needs model=<run dir | Hugging Face dir | hub id> (and prompt=...)")
    if cfg.eval.model is not None and command in ("eval", "generate"):
        check_eval_command(cfg)
        return
    steps = COMMAND_STEPS[command]
    check_config(cfg)
    if {"train", "eval"} & set(steps):
        check_accelerator(cfg.trainer)
        check_compiler(cfg.trainer)
    check_writable("paths.results", cfg.results_dir)
    check_writable("paths.runs", cfg.work_dir)
    if "prepare" in steps:
        check_writable("paths.prepared", Path(cfg.paths.prepared))
    if command == "run" and cfg.run_name in cfg.paper.runs + cfg.paper.extra_runs:
        check_paper_inputs(cfg.paths, [run for run in cfg.paper.runs if run != cfg.run_name])
    earlier = tuple(step for step in STEPS if step not in steps and any(step in STEP_NEEDS[s] for s in steps))
    check_record(cfg, earlier + steps)
    for step in earlier:
        require_step(cfg, step, command)
    resolver = make_resolver(cfg.data)
    if "prepare" in steps:
        for name, source in cfg.data.sources.items():
            check_source(name, source, resolver)
    if "eval" in steps:
        check_suite(load_suite(cfg.eval.suite, cfg.eval.tasks))
        check_eval_device(cfg)
    for manifest in manifests_needed(cfg, steps):
        for entry in read_manifest(config_file(manifest)):
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


def check_released_vocabulary(tok: TokenizerConfig, resolver: Resolver) -> None:
    """The manifest lists vocab.json and merges.txt, and the vocabulary has ``tokenizer.vocab_size`` entries."""
    files = {Path(e.path).name: e for e in read_manifest(config_file(tok.manifest))}
    missing = sorted({"vocab.json", "merges.txt"} - set(files))
    if missing:
        raise UserError(f"tokenizer.manifest={tok.manifest!r}: lists no {' and no '.join(missing)}")
    path = resolver.resolve(files["vocab.json"])
    try:
        size = len(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a vocab.json ({exc}); fix tokenizer.manifest") from None
    if size != tok.vocab_size:
        raise UserError(f"tokenizer.vocab_size={tok.vocab_size}: {path} has {size} entries; set it to that")


def check_paper_inputs(paths: PathsConfig, runs: list[str]) -> None:
    """The published tables and the listed runs' results exist; results/ and paper/ can be written."""
    results = Path(paths.results)
    needed = [results / name for name in PUBLISHED_FILES]
    needed += [results / run / name for run in runs for name in RUN_FILES]
    for path in needed:
        if not path.is_file():
            what = ("copy results/published/ from the repository into paths.results" if "published" in path.parts
                    else f"run `reproduce run_name={path.parent.name}` first, or leave it out of paper.runs")
            raise UserError(f"{path} not found: {what}")
    check_writable("paths.results", results)  # results/architectures.json
    check_writable("paths.paper", Path(paths.paper))


def load(command: str, config_name: str, overrides: list[str]) -> RecipeConfig | PaperCommandConfig:
    """Compose and check a command's config; raises ``UserError`` on the first problem."""
    cfg = compose_config(config_name, overrides)
    if isinstance(cfg, PaperCommandConfig):
        check_paper_runs(cfg.paper.runs)
        check_paper_inputs(cfg.paths, cfg.paper.runs)
    else:
        check_recipe(cfg, command)
    return cfg
