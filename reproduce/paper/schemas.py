"""The fields of each results file that the paper reads, with their types: a file is checked field by field when the
paper loads it, so that a wrong type is one line naming the file and the field, never a traceback in a table.

A schema is a type (``NUMBER``, ``INTEGER``, ``TEXT``, ``ANY``), a list ``[schema]`` of items, or a dict of fields:
a key ending in ``?`` is optional, ``"*"`` stands for every other key. Fields a schema does not name are not read.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

from reproduce.errors import UserError


class Kind:
    def __init__(self, name: str, *types: type, nullable: bool = False) -> None:
        self.name, self.types, self.nullable = name, types, nullable

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        return not self.types or (isinstance(value, self.types) and not isinstance(value, bool))


NUMBER = Kind("a number", int, float)
INTEGER = Kind("an integer", int)
TEXT = Kind("a string", str)
ANY = Kind("anything", nullable=True)
NUMBER_OR_NULL = Kind("a number or null", int, float, nullable=True)
INTEGER_OR_NULL = Kind("an integer or null", int, nullable=True)

METRICS = {"*": {"*": NUMBER}}  # task -> metric -> value
PERPLEXITY_ROW = {"stage": TEXT, "context": INTEGER, "tokens": INTEGER, "perplexity": NUMBER, "bits_per_byte": NUMBER,
                  "ratio_to_unigram": NUMBER}
SCHEMAS: tuple[tuple[str, Any], ...] = (  # results/ file pattern -> schema; the first pattern that matches counts
    ("architectures.json", {"models": {"*": {"n_layer": INTEGER, "n_embd": INTEGER, "n_head": INTEGER,
                                             "n_positions": INTEGER, "vocab_size": INTEGER, "parameters": INTEGER}}}),
    ("*/summary.json", {"run": TEXT, "perplexity": [PERPLEXITY_ROW],
                        "unigram": {"tokens": INTEGER, "perplexity": NUMBER, "bits_per_byte": NUMBER},
                        "stages": {"*": {"parameters": INTEGER, "tokens": INTEGER, "steps": INTEGER}},
                        "suite?": {"*": METRICS},
                        "rublimp?": {"*": {"mean": NUMBER, "per_phenomenon": {"*": NUMBER}}}}),
    ("*/curves.json", {"train": [{"stage": TEXT, "step": INTEGER, "tokens": INTEGER, "loss": NUMBER}],
                       "validation": [{"stage": TEXT, "step": INTEGER, "tokens": INTEGER, "loss": NUMBER}]}),
    ("*/loss_by_position.json", {"windows": {"*": INTEGER}, "stages": {"*": {"*": [NUMBER]}}}),
    ("*/samples.json", {"settings": {"*": ANY},
                        "stages": {"*": [{"prompt": TEXT, "text": TEXT, "sample_index": INTEGER}]}}),
    ("*/seed_spread.json", {"runs": [TEXT], "sigmas": NUMBER,
                            "metrics": {"*": {"mean": NUMBER, "std": NUMBER, "runs": INTEGER}}}),
    ("*/contamination.json", {"n": INTEGER, "min_tokens?": INTEGER, "train_tokens": INTEGER,
                              "sets": {"*": {"items": INTEGER, "checked": INTEGER, "contaminated": INTEGER,
                                             "share": NUMBER_OR_NULL, "examples": [TEXT]}}}),
    ("eval/*/perplexity.json", {"tokens": INTEGER, "perplexity": NUMBER, "bits_per_byte": NUMBER,
                                "context": INTEGER, "stride": INTEGER, "parameters?": INTEGER_OR_NULL,
                                "meta": {"texts": ANY}}),
    ("eval/*/*.json", {"metrics?": METRICS}),
    ("plan/*.json", {"stages": {"*": {"batch_tokens": INTEGER, "steps": INTEGER, "tokens": INTEGER}},
                     "config": {"stages": {"*": {"optim": {"*": ANY}}}},
                     "devices": {"*": {"gpu_hours": NUMBER_OR_NULL,
                                       "stages": {"*": {"mfu": NUMBER, "mfu_source": TEXT,
                                                        "gpu_hours": NUMBER_OR_NULL}}}},
                     "published?": {"stages": [TEXT], "gpu_hours": NUMBER, "flops": NUMBER, "implied_mfu": NUMBER,
                                    "implied_mfu_6nd": NUMBER}}),
    ("perf/train_throughput_*.json", {"machine": {"cpu": TEXT, "cpus": INTEGER}, "model": TEXT,
                                      "rows": [{"precision": TEXT, "package_tokens_per_s": NUMBER,
                                                "bare_loop_tokens_per_s": NUMBER}]}),
)


def schema_of(name: str) -> Any:
    """The schema of a results file named relative to results/, or None (not checked here)."""
    return next((schema for pattern, schema in SCHEMAS if fnmatch.fnmatchcase(name, pattern)), None)


def check_fields(path: Path, data: Any, schema: Any, where: str = "") -> None:
    """Raise one line naming ``path`` and the first field of ``data`` that ``schema`` does not accept."""
    if isinstance(schema, Kind):
        if not schema.accepts(data):
            _wrong(path, where, data, schema.name)
    elif isinstance(schema, list):
        if not isinstance(data, list):
            _wrong(path, where, data, "a list")
        for i, item in enumerate(data):
            check_fields(path, item, schema[0], f"{where}[{i}]")
    elif isinstance(schema, dict):
        if not isinstance(data, dict):
            _wrong(path, where, data, "an object")
        named = {key.rstrip("?") for key in schema if key != "*"}
        for key, sub in schema.items():
            if key == "*":
                for name, item in data.items():
                    if name not in named:
                        check_fields(path, item, sub, f"{where}.{name}" if where else str(name))
            elif key.rstrip("?") in data:
                field = key.rstrip("?")
                check_fields(path, data[field], sub, f"{where}.{field}" if where else field)
            elif not key.endswith("?"):
                raise UserError(f"{path}: no field {f'{where}.{key}' if where else key}; regenerate the file "
                                "(`make reproduce`)")


def _wrong(path: Path, where: str, value: Any, expected: str) -> None:
    shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    raise UserError(f"{path}: field {where or '(the file)'} is {shown[:60]}, not {expected}; regenerate the file "
                    "(`make reproduce`)")
