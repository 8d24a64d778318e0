"""Extending the package touches only what docs/development.md says: a benchmark is its folder and a line of
suites.yaml, a source kind is one class and one YAML, a model size is its YAMLs."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from reproduce.commands import data_steps
from reproduce.commands.preflight import load
from reproduce.commands.table import COMMANDS
from reproduce.config.schema import SourceConfig
from reproduce.core.errors import UserError
from reproduce.core.paths import CONF_DIR, SOURCE_ROOT
from reproduce.data.manifest import Resolver
from reproduce.data.records import Record, Skip
from reproduce.data.sources import KINDS, FileSource
from reproduce.evaluate.benchmarks import TASKS_DIR
from reproduce.paper.reader import Results
from reproduce.paper.tables import architecture_table
from reproduce.recipe.record import start_steps
from tests.helpers import micro_overrides, reproduce, save_tiny_model

TOY_ITEMS = [("Кошка спит на диване.", "Кошка спят на диване."), ("Мы идём домой.", "Мы идёт домой."),
             ("Дети читают книгу.", "Дети читает книгу.")]
TOY_TASK = """task: toy_pairs
dataset_path: csv
dataset_kwargs:
  data_files:
    test: mirror:toy/pairs.csv
output_type: multiple_choice
test_split: test
doc_to_text: ""
target_delimiter: ""
doc_to_choice: "{{[good, bad]}}"
doc_to_target: 0
metric_list:
  - metric: acc
metadata:
  version: 1.0
"""


def _toy_benchmark(tmp: Path) -> tuple[Path, Path]:
    """A copy of the package's task folders plus a toy benchmark (its folder and a suite line, nothing else), and a
    cache holding the toy data file."""
    tasks = tmp / "tasks"
    shutil.copytree(TASKS_DIR, tasks, ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp / "cache" / "toy"
    cache.mkdir(parents=True)
    with (cache / "pairs.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([("good", "bad"), *TOY_ITEMS])
    sha = hashlib.sha256((cache / "pairs.csv").read_bytes()).hexdigest()
    toy = tasks / "toy"
    toy.mkdir()
    (toy / "toy_pairs.yaml").write_text(TOY_TASK, encoding="utf-8")
    (toy / "manifest.tsv").write_text(f"path\tsha256\turl\ntoy/pairs.csv\t{sha}\thttps://example.invalid/pairs.csv\n",
                                      encoding="utf-8")
    (toy / "benchmark.yaml").write_text("contamination:\n  format: csv\n  fields: [good, bad]\n", encoding="utf-8")
    with (tasks / "suites.yaml").open("a", encoding="utf-8") as f:
        f.write("toy:\n  network: false\n  benchmarks: [toy]\n  tasks: [toy_pairs]\n")
    return tasks, cache.parent


@pytest.mark.slow  # prepare, contamination and eval through the console script
def test_a_benchmark_is_its_folder_and_a_suite_line(tmp_path: Path, mirror: Path) -> None:
    tasks, cache = _toy_benchmark(tmp_path)
    env = {"REPRODUCE_TASKS_DIR": str(tasks)}
    overrides = [o for o in micro_overrides(tmp_path) if not o.startswith("data.cache_dir=")]
    overrides += [f"data.cache_dir={cache}", "eval.suite=toy"]
    reproduce("prepare", *overrides, cwd=tmp_path, env=env)
    # the toy set is in the report without a config line, beside the package's (RuBLiMP's 45,000 items left out)
    reproduce("contamination", *overrides, "~contamination.sets.rublimp", cwd=tmp_path, env=env)
    report = json.loads((tmp_path / "results" / "micro" / "contamination.json").read_text(encoding="utf-8"))
    assert report["sets"]["toy"]["items"] == len(TOY_ITEMS) and "parus" in report["sets"]

    save_tiny_model(tmp_path / "tiny", mirror, n_positions=64)
    reproduce("eval", "model=tiny", "suite=toy", f"data.cache_dir={cache}", cwd=tmp_path, env=env)
    scored = json.loads((tmp_path / "results" / "eval" / "tiny" / "toy.json").read_text(encoding="utf-8"))
    assert scored["metrics"]["toy_pairs"]["n"] == len(TOY_ITEMS)
    assert scored["meta"]["task_files"]["mirror:toy/pairs.csv"] == hashlib.sha256(
        (cache / "toy" / "pairs.csv").read_bytes()).hexdigest()

    (cache / "toy" / "pairs.csv").write_text("good,bad\nchanged,x\n", encoding="utf-8")  # the pre-flight checks it
    line = reproduce("eval", "model=tiny", "suite=toy", f"data.cache_dir={cache}", cwd=tmp_path, env=env, code=2).stderr
    assert "pairs.csv: sha256" in line and "does not match the manifest's" in line


@pytest.fixture
def lines_kind() -> Iterator[type[FileSource]]:
    """A test-only kind, defined (and so registered) while the test runs: every non-empty line of the matched files
    is a document."""

    class LinesSource(FileSource):
        kind = "lines"

        def records(self, resolver: Resolver) -> Iterator[Record | Skip]:
            for shown, file in self.files():
                for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
                    if line.strip():
                        yield Record(f"{self.name}:{shown}:{number}", self.name, line, shown, number)

    yield LinesSource
    KINDS.pop("lines")  # other tests see the package's kinds only


def test_a_source_kind_is_one_class_and_one_yaml(tmp_path: Path, lines_kind: type[FileSource]) -> None:
    """The class registers itself; a YAML (here the same values as a command-line source) selects it; the checks,
    the fingerprint and preparation take it as any other kind."""
    assert KINDS["lines"] is lines_kind
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"Строка номер {i}: кошка спит, собака лает, дети читают книгу." for i in range(400)),
                      encoding="utf-8")
    source = f"{{kind: lines, paths: ['{corpus}']}}"
    overrides = [*micro_overrides(tmp_path), "~data.sources.ruslit"]  # the micro recipe's corpus out
    cfg = load(COMMANDS["prepare"], [*overrides, "data=text", "~data.sources.text", f"+data.sources.mine={source}"])
    assert isinstance(cfg.data.sources["mine"], SourceConfig) and cfg.data.sources["mine"].kind == "lines"
    start_steps(cfg, ("prepare",))  # as the CLI does before the step
    data = data_steps.prepare(cfg)
    splits = data.manifest["splits"]
    assert sum(splits[name]["documents"] for name in splits) == 400
    assert data.manifest["inputs"]["sources"]["mine"]["kind"] == "lines"
    bad = f"{{kind: lines, paths: ['{tmp_path}/none*.txt']}}"
    with pytest.raises(UserError, match="matches no file"):
        load(COMMANDS["prepare"], [*overrides, "data=text", "~data.sources.text", f"+data.sources.mine={bad}",
                                    "run_name=other"])


def test_a_model_size_is_its_yamls(tmp_path: Path) -> None:
    """Every conf/model/rugpt3_* is in results/architectures.json; a size without published numbers gets a row of
    its own with no published counterpart, not a failure."""
    sizes = sorted(p.stem for p in (CONF_DIR / "model").glob("rugpt3_*.yaml"))
    committed = json.loads((SOURCE_ROOT / "results" / "architectures.json").read_text(encoding="utf-8"))["models"]
    assert set(sizes) <= set(committed)
    shutil.copytree(SOURCE_ROOT / "results" / "published", tmp_path / "published")
    extra = {**committed, "rugpt3_xl": {"n_layer": 48, "n_embd": 1600, "n_head": 25, "n_positions": 2048,
                                        "vocab_size": 50257, "parameters": 1_560_000_000}}
    (tmp_path / "architectures.json").write_text(json.dumps({"models": extra}), encoding="utf-8")
    rows = {row[0]: row for row in architecture_table(Results(tmp_path)).rows}
    assert rows["xl"][-1] == "— (no published counterpart)" and rows["large"][-1] == "yes"
