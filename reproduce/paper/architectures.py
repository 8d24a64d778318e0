"""results/architectures.json: every conf/model config as the recipe composes it, with its exact parameter count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reproduce.config.compose import compose_config
from reproduce.core import records
from reproduce.core.arithmetic import ARCHITECTURE_KEYS
from reproduce.core.meta import package_metadata
from reproduce.core.paths import CONF_DIR
from reproduce.model.gpt2 import exact_parameters, gpt2_config


def architectures() -> dict[str, dict[str, Any]]:
    """Each ``model=<name>`` composed with the recipe's defaults (mini's vocabulary is the default tokenizer's)."""
    models = {}
    for path in sorted((CONF_DIR / "model").glob("*.yaml")):
        config = gpt2_config(compose_config("reproduce", [f"model={path.stem}"]).model, 0, 0)
        models[path.stem] = {key: getattr(config, key) for key in ARCHITECTURE_KEYS} | {
            "parameters": exact_parameters(config)}
    return models


def write_architectures(path: Path) -> bool:
    """Write the table's source only when an architecture changed, so a rebuild leaves results/ untouched; says
    whether it wrote."""
    models = architectures()
    if path.is_file() and records.architectures.read(path).get("models") == models:
        return False
    source = "conf/model/*.yaml, composed by conf/reproduce.yaml"
    records.architectures.write(path, {"meta": {**package_metadata(), "source": source}, "models": models})
    return True
