"""The recipe's data steps, each one command: ``prepare`` (the tokenized splits) and ``contamination`` (their n-gram
overlap with the evaluation sets). Kept apart from training and evaluation so that `reproduce prepare` loads no
training or evaluation library."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from reproduce.config.schema import RecipeConfig
from reproduce.core import layout, records
from reproduce.core.io import read_json, write_json
from reproduce.core.meta import run_metadata
from reproduce.data.contamination import batch_encoder, contamination_report
from reproduce.data.manifest import make_resolver
from reproduce.data.prepare import prepare_set, report
from reproduce.data.prepared_set import (
    MANIFEST,
    PreparedData,
    load_prepared,
    prepared_folder,
    prepared_inputs,
    run_prepared,
)
from reproduce.recipe.record import missing_output

log = logging.getLogger("reproduce")


def prepare(cfg: RecipeConfig, data: PreparedData | None = None) -> PreparedData:
    """The run's prepared set (<paths.prepared>/<hash>/: made, finished, or reused when another run made it), named in
    runs/<run>/prepared.json; the report in results/<run>/data.json.

    With ``resume=auto``, data prepared before for this config (results/<run>/config.yaml vouches) is loaded at once.
    """
    pointer = cfg.layout.prepared_pointer
    if cfg.resume == "auto" and missing_output(cfg, "prepare") is None:
        folder = Path(read_json(pointer)["folder"])
        if (folder / MANIFEST).is_file():  # else the set was deleted: made again below
            log.info(f"[data] prepared before for this config: {folder} (resume=never prepares again)")
            return load_prepared(folder)
    inputs = prepared_inputs(cfg)
    folder = prepared_folder(cfg, inputs)
    reused = cfg.resume == "auto" and (folder / MANIFEST).is_file()
    if reused:
        log.info(f"[data] reusing {folder}: prepared before with the same data and tokenizer settings")
    timings = prepare_set(cfg, inputs, folder, fresh=cfg.resume == "never")
    data = load_prepared(folder)
    write_json(pointer, {"folder": folder.as_posix(), "hash": data.manifest["hash"]})
    records.data.write(cfg.layout.result(layout.DATA), {"meta": run_metadata(cfg), **report(data, timings, reused)})
    log.info(f"[data] tokenizer of {len(data.tokenizer)} ids; tokens: "
             + ", ".join(f"{k} {len(v) / 1e6:.2f}M" for k, v in data.shards.items()))
    return data


def contamination(cfg: RecipeConfig, data: PreparedData | None = None) -> dict[str, Any]:
    """n-gram overlap of every evaluation set (and the test documents) with the train shards: contamination.json."""
    data = data or run_prepared(cfg)
    result = contamination_report(
        cfg.contamination, make_resolver(cfg.data), batch_encoder(data.tokenizer), data.shards["train"].chunks(1 << 24),
        data.documents("test") if cfg.contamination.test_works else None)
    records.contamination.write(cfg.layout.result(layout.CONTAMINATION),
               {"meta": run_metadata(cfg), "prepared": data.manifest["hash"], **result})
    for name, row in result["sets"].items():
        share = "n/a" if row["share"] is None else f"{100 * row['share']:.2f}%"
        log.info(f"[contamination] {name}: {row['contaminated']} of {row['checked']} checked items ({share}) share a "
                 f"{cfg.contamination.n}-token sequence with the train split")
    return result
