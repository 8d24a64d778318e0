"""Compose a command's typed config from ``conf/`` and Hydra overrides; every composition error is one line."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
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
    parsed = _parsed(overrides)
    _check_group_choices(parsed)
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            composed = _compose(config_name, overrides)
        _check_no_ops(composed, parsed)
        return OmegaConf.to_object(composed)
    except (HydraException, OmegaConfBaseException) as exc:
        line, cause = one_line(exc), exc
        while cause is not None and not getattr(cause, "full_key", None):
            cause = cause.__cause__
        key = getattr(cause, "full_key", None) or _unparsed(line, overrides)
        raise UserError((f"{key}: {line}" if key and key not in line else line) + _quoting_hint(line, overrides)) \
            from None


def _compose(config_name: str, overrides: list[str]) -> Any:
    """Hydra's compose. An error that Hydra's or OmegaConf's own code raises for an override they do not check (a
    list entry named by a word: OmegaConf's ``int('x')``) is that override's one line: the first override with which
    composition fails (each prefix of the list composed again, on this error path only)."""
    try:
        return compose(config_name=config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException):
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        line = one_line(exc) or type(exc).__name__
        culprit = next((o for i, o in enumerate(overrides) if not _composes(config_name, overrides[:i + 1])),
                       " ".join(overrides))
        shown = culprit if culprit.isprintable() else repr(culprit)
        raise UserError(f"{shown}: the config cannot take it ({line}); check the key's path against "
                        "`reproduce --cfg job`") from None


def _composes(config_name: str, overrides: list[str]) -> bool:
    try:
        compose(config_name=config_name, overrides=overrides)
    except Exception:  # noqa: BLE001 - only whether it composes
        return False
    return True


_OPTION = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")
LIST_GROUPS = {"logger"}  # groups that take several options at once (logger=[csv,tensorboard]; docs/watching.md)


def _parsed(overrides: list[str]) -> list[Any]:
    """Hydra's parse of each override that parses (composition reports one that does not, naming it)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser, found = OverridesParser.create(), []
    for override in overrides:
        try:
            found.append(parser.parse_override(override))
        except HydraException:
            continue
    return found


def _check_group_choices(overrides: list[Any]) -> None:
    """A config group (a folder of conf/) takes the name of one of its files: another value (a number, a list, a
    name too long for a file) is one line listing them, not Hydra's TypeError, ValueError or OSError (found by
    tests/test_fuzz.py: ``model=0``, ``model=[300]``, ``model=xxx...``)."""
    for parsed in overrides:
        folder = CONF_DIR / parsed.key_or_group
        if parsed.is_delete() or parsed.is_sweep_override() or parsed.package or not folder.is_dir():
            continue
        value = parsed.value()
        names = value if parsed.key_or_group in LIST_GROUPS and isinstance(value, list) else [value]
        if any(not isinstance(name, str) or not _OPTION.fullmatch(name) for name in names):
            options = sorted(f.stem for f in folder.glob("*.yaml") if not f.stem.startswith("_"))
            shown = str(value) if len(str(value)) <= 40 else f"{str(value)[:40]}..."
            raise UserError(f"{parsed.key_or_group}={shown}: choose one of the config group's options: "
                            f"{', '.join(options)}")


def _check_no_ops(cfg: DictConfig, overrides: list[Any]) -> None:
    """Two overrides Hydra takes without doing what they say (found by bench/probe_fresh.py): ``~key`` of a setting
    of the schema (a typed field comes back with its default: ``~paths`` ran the whole recipe in the working
    folder), and ``key={}`` onto a mapping that has entries (Hydra merges it: ``data.sources={}`` removed no
    source). Each is one line before any work."""
    for parsed in overrides:
        key = parsed.key_or_group
        if parsed.package or parsed.is_sweep_override() or (CONF_DIR / key).is_dir():
            continue  # a config group's choice (``~logger``) is Hydra's defaults list, not a setting
        if parsed.is_delete():
            parent_key, _, name = key.rpartition(".")
            parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
            schema = OmegaConf.get_type(parent) if isinstance(parent, DictConfig) else None
            if schema is not None and dataclasses.is_dataclass(schema) and \
                    name in {f.name for f in dataclasses.fields(schema)}:
                raise UserError(f"~{key}: a setting of the config cannot be deleted (it would come back with its "
                                f"default); set its value instead, e.g. {key}=...")
        elif parsed.value() == {}:
            node = OmegaConf.select(cfg, key)
            if isinstance(node, DictConfig) and len(node):
                raise UserError(f"{key}={{}}: Hydra merges a mapping into the one there, so this removes nothing "
                                f"({', '.join(map(str, node))} stay); remove an entry with ~{key}.<name>, or "
                                "choose another config group")


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
