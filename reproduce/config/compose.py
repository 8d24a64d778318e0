"""Compose a command's typed config from ``conf/`` and Hydra overrides; every composition error is one line."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from reproduce.config.schema import PaperCommandConfig, RecipeConfig
from reproduce.core.errors import UserError
from reproduce.core.paths import CONF_DIR

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
        key = getattr(cause, "full_key", None) or _unparsed(line, overrides)
        raise UserError((f"{key}: {line}" if key and key not in line else line) + _quoting_hint(line, overrides)) \
            from None


_GRAMMAR_ERRORS = ("Lexer", "mismatched input", "no viable alternative", "extraneous input", "missing")


def _unparsed(line: str, overrides: list[str]) -> str | None:
    """The first override Hydra's grammar cannot parse, when ``line`` is a grammar error that does not name it."""
    if not any(word in line for word in _GRAMMAR_ERRORS):
        return None
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_override(override)
        except HydraException:
            return override if override.isprintable() else repr(override)
    return None


def _quoting_hint(line: str, overrides: list[str]) -> str:
    """Hydra's grammar takes unquoted values of Latin letters, digits and a few signs; say how to quote the rest."""
    if not any(word in line for word in _GRAMMAR_ERRORS):
        return ""
    odd = next((o for o in overrides if not o.isascii() or " " in o.partition("=")[2]), None)
    if odd is None:
        return ""
    key, _, value = odd.partition("=")
    if value.startswith("[") and value.endswith("]"):  # a list: each item quoted
        value = "[" + ",".join(f"'{item.strip()}'" for item in value[1:-1].split(",")) + "]"
    else:
        value = f"'{value}'"
    return f"; quote a value with spaces or non-Latin letters, in the shell and for Hydra: \"{key}={value}\""
