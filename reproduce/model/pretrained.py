"""Checkpoints the package reads but did not train: a Hugging Face model directory or hub id that a stage starts
from (``init_from``), that ``reproduce eval`` scores, and their tokenizers. Checked before any work: found, a model
transformers loads natively (never a model folder's own code: ``trust_remote_code`` is always False), weights that
are no pickle (local folders), and, to start a stage, GPT-2-style and matching the run's model config."""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reproduce.config.schema import ModelConfig, TokenizerConfig
from reproduce.core.arithmetic import CONTEXT_KEYS, model_context
from reproduce.core.errors import UserError
from reproduce.core.io import read_json
from reproduce.data.shards import MAX_VOCAB

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
# Architecture keys the model config must share with the checkpoint (dropout and attention kernel may differ).
MATCHED_KEYS = ("n_layer", "n_embd", "n_head", "n_positions", "vocab_size", "activation_function",
                "layer_norm_epsilon")
WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLED = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.ckpt")  # torch.save files: pickles
SIZE_KEYS = ("n_layer", "num_hidden_layers", "n_embd", "hidden_size", "n_head", "num_attention_heads", "vocab_size",
             "n_positions", "max_position_embeddings", "n_ctx", "n_inner", "intermediate_size")
MAX_SIZE = 1 << 24  # no size of a language model's config comes near 16M (vocabularies: 256k; contexts: 1M)
# Sampling values of generation_config.json: (name, exclusive low, inclusive high).
GENERATION_RANGES = (("repetition_penalty", 0, 1e3), ("temperature", -1e-9, 1e3), ("top_p", 0, 1),
                     ("top_k", -1, 1 << 24), ("max_length", 0, 1 << 24), ("max_new_tokens", 0, 1 << 24))


def locate(key: str, name_or_path: str, filename: str) -> Path:
    """``filename`` of a model directory, or of a hub repository (through the local hub cache when offline)."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / filename).is_file():
            raise UserError(f"{key}={name_or_path!r}: {path} has no {filename}; give a directory written by "
                            "save_pretrained")
        return path / filename
    if not HUB_ID.fullmatch(name_or_path) or path.exists():
        raise UserError(f"{key}={name_or_path!r}: no such directory; give a Hugging Face model directory or hub id")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(name_or_path, filename))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")
        where = "not in the local hub cache (HF_HUB_OFFLINE is set)" if offline else type(exc).__name__
        raise UserError(f"{key}={name_or_path!r}: not a local directory, and its {filename} cannot be fetched from "
                        f"the Hugging Face hub: {where}; check the id, or download the model and give its "
                        "directory") from None


def _read_json(key: str, name_or_path: str, path: Path) -> dict[str, Any]:
    """A model folder's JSON object; a special file, a huge one, a damaged one or another JSON type is one line
    (tests/test_fuzz.py found the last three giving a hang and tracebacks)."""
    try:
        data = read_json(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"{key}={name_or_path!r}: {path} is not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UserError(f"{key}={name_or_path!r}: {path} holds a JSON {type(data).__name__}, not an object; restore "
                        "the file save_pretrained wrote")
    return data


@functools.cache
def transformers_table(module: str, name: str) -> frozenset[str]:
    """The model types of a table of transformers.models.auto (e.g. ``modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES``)
    read from the module's source, where it is a literal, so that the pre-flight does not import torch (seconds);
    imported where the source holds no literal."""
    package = importlib.util.find_spec("transformers")
    source = Path(next(iter(package.submodule_search_locations))) / "models" / "auto" / f"{module}.py"
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
        value = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                     and any(isinstance(t, ast.Name) and t.id == name for t in node.targets))
        return frozenset(key for key, _ in ast.literal_eval(value.args[0]))
    except (OSError, StopIteration, SyntaxError, ValueError, AttributeError, IndexError, TypeError):
        loaded = importlib.import_module(f"transformers.models.auto.{module}")
        return frozenset(getattr(loaded, name))


def check_causal_lm(key: str, name_or_path: str) -> dict[str, Any]:
    """A checkpoint transformers loads natively as a causal LM, running none of the folder's code: no ``auto_map``
    in its config or tokenizer config, a model type transformers knows with a causal LM class, a context length, and
    (a local folder) safetensors weights, not pickled ones. Returns its config."""
    config = _read_json(key, name_or_path, locate(key, name_or_path, "config.json"))
    if "auto_map" in config:
        raise UserError(f"{key}={name_or_path!r}: its config.json maps to code of its own (auto_map), which this "
                        "package never runs; give a model that transformers loads natively")
    model_type = config.get("model_type")
    if model_type not in transformers_table("modeling_auto", "MODEL_FOR_CAUSAL_LM_MAPPING_NAMES"):
        raise UserError(f"{key}={name_or_path!r}: model_type {model_type!r} is not a causal language model that "
                        "transformers knows (a model folder's own code is never run); give one transformers loads "
                        "natively: GPT-2, Llama, Mistral, ...")
    if model_context(config) is None:
        raise UserError(f"{key}={name_or_path!r}: its config.json gives no context length ({', '.join(CONTEXT_KEYS)})")
    check_sizes(key, name_or_path, config)
    directory = Path(name_or_path).expanduser()
    if directory.is_dir():
        tokenizer_config = directory / "tokenizer_config.json"
        if tokenizer_config.is_file() and "auto_map" in _read_json(key, name_or_path, tokenizer_config):
            raise UserError(f"{key}={name_or_path!r}: its tokenizer_config.json maps to code of its own (auto_map), "
                            "which this package never runs")
        check_weights(key, name_or_path, directory)
    return config


def check_sizes(key: str, name_or_path: str, config: dict[str, Any]) -> None:
    """The config's sizes are whole numbers in a sane range, and the width divides into its heads."""
    for name in SIZE_KEYS:
        value = config.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_SIZE):
            raise UserError(f"{key}={name_or_path!r}: its config.json has {name}={value!r}, not a size in "
                            f"[1, {MAX_SIZE:,}]; fix the config or export the model again")
    width = config.get("n_embd", config.get("hidden_size"))
    heads = config.get("n_head", config.get("num_attention_heads"))
    if isinstance(width, int) and isinstance(heads, int) and width % heads:
        raise UserError(f"{key}={name_or_path!r}: its config.json has a width of {width}, which {heads} attention "
                        "heads do not divide; fix the config or export the model again")


def check_generation_config(key: str, name_or_path: str) -> None:
    """A local model folder's generation_config.json reads and its sampling values are in range."""
    path = Path(name_or_path).expanduser() / "generation_config.json"
    if not path.is_file():
        return
    found = _read_json(key, name_or_path, path)
    for name, low, high in GENERATION_RANGES:
        value = found.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not low < value <= high):
            raise UserError(f"{key}={name_or_path!r}: its generation_config.json has {name}={value!r}, outside "
                            f"({low}, {high}]; fix or remove the file")


def check_weights(key: str, name_or_path: str, directory: Path) -> None:
    """A local model folder holds safetensors weights whose header reads; pickled ones (pytorch_model.bin, ...) are
    refused."""
    single = directory / WEIGHTS[0]
    if single.is_file():
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(single, framework="numpy") as weights:  # the header only: no torch import
                weights.keys()
        except (SafetensorError, OSError) as exc:
            raise UserError(f"{key}={name_or_path!r}: {single} is not a readable safetensors file ({exc}); export "
                            "the model again or restore the file") from None
        return
    if (directory / WEIGHTS[1]).is_file():
        return
    pickled = sorted(p.name for pattern in PICKLED for p in directory.glob(pattern))
    if pickled:
        raise UserError(f"{key}={name_or_path!r}: its weights are pickled ({', '.join(pickled)}), which this package "
                        "does not load; convert them once: AutoModelForCausalLM.from_pretrained(folder)."
                        "save_pretrained(folder) writes model.safetensors")
    raise UserError(f"{key}={name_or_path!r}: {directory} has no weights ({', '.join(WEIGHTS)})")


def check_init_checkpoint(key: str, init_from: str, model: ModelConfig) -> None:
    """A GPT-2 checkpoint with weights whose architecture is the model config's (one line lists the overrides)."""
    config = check_causal_lm(key, init_from)
    if config.get("model_type") != "gpt2":
        raise UserError(f"{key}={init_from!r}: model_type is {config.get('model_type')!r}; only GPT-2 checkpoints "
                        "(GPT2LMHeadModel) can start a stage")
    differ = [f"model.{k}={config[k]}" for k in MATCHED_KEYS if k in config and config[k] != getattr(model, k)]
    if differ:
        raise UserError(f"{key}={init_from!r}: the model config differs from the checkpoint's; set {' '.join(differ)} "
                        "(or the model group of that checkpoint)")


def load_causal_lm(key: str, name_or_path: str | Path) -> Any:
    """A causal LM with transformers' own classes (never the folder's code): weights from safetensors, or from a
    hub repository's pickled file with torch.load(weights_only=True), which runs no code; one line if it fails."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # no weight-loading bar in `reproduce generate`
    try:
        with _without_load_report():
            model, info = AutoModelForCausalLM.from_pretrained(name_or_path, trust_remote_code=False,
                                                               output_loading_info=True)
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as exc:
        raise UserError(f"{key}={str(name_or_path)!r}: cannot load the model ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None
    require_whole(key, name_or_path, info)
    return model


@contextlib.contextmanager
def _without_load_report() -> Iterator[None]:
    """transformers' warnings while it loads weights off: its table of missing and unexpected tensors (dozens of
    lines on stderr) is what ``require_whole`` says in one line, and a whole model gives none."""
    logger = logging.getLogger("transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def require_whole(key: str, name_or_path: str | Path, info: dict[str, Any]) -> None:
    """Every parameter of the architecture came from the weights (tied ones aside, which transformers does not
    report): none missing, none of another shape, none unknown; otherwise one line."""
    problems = {"missing": info.get("missing_keys"), "of another shape": info.get("mismatched_keys"),
                "not of this architecture": info.get("unexpected_keys")}
    found = [f"{len(keys)} {what} ({', '.join(sorted(str(k) for k in keys)[:3])}{', ...' if len(keys) > 3 else ''})"
             for what, keys in problems.items() if keys]
    if found:
        raise UserError(f"{key}={str(name_or_path)!r}: its weights are not the whole model: tensors "
                        f"{'; '.join(found)}; export the model again or restore its weights file")


def load_tokenizer(key: str, name_or_path: str | Path) -> Any:
    """A checkpoint's tokenizer with transformers' own classes (never the folder's code); one line if it fails."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(name_or_path, trust_remote_code=False)
    except Exception as exc:  # tokenizers' Rust parser raises a bare Exception for a damaged tokenizer.json
        raise UserError(f"{key}={str(name_or_path)!r}: cannot load its tokenizer ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:200] if str(exc) else ''})") from None


def load_pretrained_tokenizer(tok: TokenizerConfig):
    """The fast tokenizer of ``tokenizer.name_or_path`` (no remote code), checked against the config."""
    key = "tokenizer.name_or_path"
    locate(key, tok.name_or_path, "tokenizer_config.json")
    tokenizer = load_tokenizer(key, tok.name_or_path)
    if not tokenizer.is_fast:
        raise UserError(f"{key}={tok.name_or_path!r}: has no fast tokenizer (tokenizer.json or vocab.json + "
                        "merges.txt); the data step needs one")
    if tokenizer.eos_token_id is None:
        raise UserError(f"{key}={tok.name_or_path!r}: its tokenizer has no eos_token to end documents with")
    if len(tokenizer) > MAX_VOCAB:
        raise UserError(f"{key}={tok.name_or_path!r}: {len(tokenizer)} ids do not fit the uint16 token shards")
    if len(tokenizer) != tok.vocab_size:
        raise UserError(f"tokenizer.vocab_size={tok.vocab_size}: the tokenizer of {tok.name_or_path!r} has "
                        f"{len(tokenizer)} ids; set it to that")
    return tokenizer
