"""One record per results file (reproduce/core/records.py): every committed file reads back through its record, a write
checks its fields and leaves nothing half-written, a read refuses what is no results file in one line, and no module
writes a results file around its record."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest

from reproduce.core import records
from reproduce.core.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
# Modules that write JSON which is no results file: prepared data's own bookkeeping, the run's pointer to it, and
# runs/<run>/trackers.json (the tracker runs' ids and last logged steps).
NOT_RESULTS_WRITERS = {"core/io", "core/records", "data/prepare", "data/scan", "data/shard_writer",
                       "commands/data_steps", "train/trackers"}


def _committed() -> list[str]:
    return sorted(p.relative_to(RESULTS).as_posix() for p in RESULTS.rglob("*.json"))


@pytest.mark.parametrize("name", [n for n in _committed() if records.record_of(n) is not None])
def test_every_committed_results_file_reads_through_its_record(name: str) -> None:
    records.record_of(name).read(RESULTS / name)


def test_the_results_files_of_a_run_each_have_a_record() -> None:
    for name in ("mini/summary.json", "mini/train.json", "mini/data.json", "mini/curves.json", "mini/verdict.json",
                 "mini/seed_spread.json", "mini/lm_eval_ru_local_stage2.json", "perf/gpu_mfu.json",
                 "eval/m/ru_local.json", "eval/m/perplexity.json", "plan/x.json"):
        assert records.record_of(name) is not None, name
    assert records.record_of("eval/m/perplexity.json") is records.eval_perplexity


def test_a_write_with_a_wrong_field_names_it_and_keeps_the_old_file(tmp_path: Path) -> None:
    good = json.loads((RESULTS / "mini" / "train.json").read_text(encoding="utf-8"))
    path = tmp_path / "train.json"
    records.train.write(path, good)
    before = path.read_bytes()
    bad = json.loads(before)
    bad["stages"]["stage1"]["steps"] = "many"
    with pytest.raises(UserError, match=r"train.json: field stages.stage1.steps is 'many', not an integer"):
        records.train.write(path, bad)
    del bad["stages"]
    with pytest.raises(UserError, match="no field stages"):
        records.train.write(path, bad)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["train.json"]


def test_a_read_refuses_what_is_no_results_file_in_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "summary.json"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    with pytest.raises(UserError, match="not a regular file"):
        records.summary.read(fifo)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(UserError, match="nested too deeply"):
        records.summary.read(deep)
    for text, line in (("{", "not valid JSON"), ("[]", r"field \(the file\) is list, not an object")):
        deep.write_text(text, encoding="utf-8")
        with pytest.raises(UserError, match=line):
            records.summary.read(deep)
    deep.write_bytes(b'{"run": "\xff"}')
    with pytest.raises(UserError, match="unreadable"):
        records.summary.read(deep)
    with pytest.raises(UserError, match="not found; run `reproduce compare` first"):
        records.verdict.read(tmp_path / "absent.json")


def test_a_gpu_mfu_outside_its_range_is_one_line(tmp_path: Path) -> None:
    data = json.loads((RESULTS / "perf" / "gpu_mfu.json").read_text(encoding="utf-8"))
    assert records.read_gpu_mfu(RESULTS / "perf" / "gpu_mfu.json").runs
    data["runs"][0]["mfu"] = 1.5
    path = tmp_path / "gpu_mfu.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(UserError, match=r"runs\[0\] has mfu=1.5"):
        records.read_gpu_mfu(path)


def test_top_level_tasks_leave_out_subtasks_of_present_tasks_only() -> None:
    assert records.top_level_tasks({"rublimp", "rublimp_a", "rucola_x", "parus"}) == ["parus", "rublimp", "rucola_x"]


def test_no_module_writes_json_around_the_records() -> None:
    writers = set()
    for path in (ROOT / "reproduce").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(n, ast.Call) and ast.unparse(n.func).endswith("write_json") for n in ast.walk(tree)):
            writers.add(path.relative_to(ROOT / "reproduce").with_suffix("").as_posix())
    assert writers <= NOT_RESULTS_WRITERS
