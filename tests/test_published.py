"""results/published/: every value has a source, is printed verbatim in shared/PUBLISHED.md, and agrees with conf."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "results" / "published"
# The released models: every row of published/architectures.csv (a size of ours without published numbers has none).
MODELS = tuple(r["model"] for r in csv.DictReader((PUBLISHED / "architectures.csv").open(encoding="utf-8")))
# Columns that name a row or describe it; any other non-empty column is a value and needs a source.
KEY_COLUMNS = frozenset(
    {"model", "task", "metric", "fact", "stage", "stages", "benchmark", "parameter", "source", "note", "location",
     "gpu_source"}
)
PAPER_BODY = tuple(f"paper_body_{name}.csv" for name in ("russian_superglue", "tape", "probing", "generation"))
PAPER_BODY_HEADER = ["model", "task", "metric", "value", "source", "location"]
TRANSCRIBED = (
    "architectures.csv",
    "perplexity.csv",
    "model_cards.csv",
    "recipe.csv",
    "compute.csv",
    "russian_superglue_leaderboard.csv",
    "mera_medium.csv",
    "open_llm_leaderboard.csv",
    "hyperparameters.csv",
)
NOT_PRINTED = {("architectures.csv", "parameters"), ("recipe.csv", "tokens_per_epoch")}  # derived or "80B"
NOT_PRINTED_CELLS = {("compute.csv", "days", "small")}  # "around one week"
QUOTE_COLUMNS = {"model_cards.csv": ("quote",), "recipe.csv": ("quote",), "compute.csv": ("quote", "gpu"),
                 "hyperparameters.csv": ("quote",)}
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    """The header and rows of a CSV file."""
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def rows_without_source(path: Path) -> list[int]:
    """Data-row numbers (1-based) that have a value in a non-key column but an empty ``source``."""
    header, rows = read(path)
    if "source" not in header:
        raise ValueError(f"{path.name}: no source column")
    values = [c for c in header if c not in KEY_COLUMNS]
    return [
        i
        for i, row in enumerate(rows, 1)
        if any((row.get(c) or "").strip() for c in values) and not (row.get("source") or "").strip()
    ]


def printed(value: str, text: str) -> bool:
    """Whether ``value`` occurs in ``text`` as a whole number: "0.21" is not found inside "0.213" or "10.21"."""
    return re.search(rf"(?<![\d.\-]){re.escape(value)}(?!\d|\.\d)", text) is not None


@pytest.fixture(scope="module")
def published_md() -> str:
    for path in (ROOT / "shared" / "PUBLISHED.md", ROOT.parent / "shared" / "PUBLISHED.md"):
        if path.is_file():
            return path.read_text(encoding="utf-8")
    pytest.skip("shared/PUBLISHED.md not found")


def test_every_csv_has_sources() -> None:
    paths = sorted(PUBLISHED.glob("*.csv"))
    assert {p.name for p in paths} >= set(TRANSCRIBED) | set(PAPER_BODY)
    for path in paths:
        header, rows = read(path)
        assert "source" in header, path.name
        assert rows, path.name
        assert all(None not in row for row in rows), f"{path.name}: a row has more fields than the header"
        assert rows_without_source(path) == [], path.name


def test_rows_without_source_flags_a_missing_source(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("model,value,source\nsmall,0.5,\nmedium,0.6,somewhere\nlarge,,\n", encoding="utf-8")
    assert rows_without_source(path) == [1]
    (tmp_path / "nosource.csv").write_text("model,value\nsmall,0.5\n", encoding="utf-8")
    with pytest.raises(ValueError):
        rows_without_source(tmp_path / "nosource.csv")


def test_printed_respects_number_boundaries() -> None:
    assert printed("0.21", "RuCoS 0.21 / 0.202")
    assert not printed("0.21", "0.213 and 10.21 and 0.21.5")
    assert not printed("0.013", "LiDiRus -0.013")
    assert printed("-0.013", "| -0.013 |")


@pytest.mark.parametrize("name", TRANSCRIBED)
def test_numbers_are_printed_in_published_md(name: str, published_md: str) -> None:
    _, rows = read(PUBLISHED / name)
    for row in rows:
        for column, value in row.items():
            if column in KEY_COLUMNS or (name, column) in NOT_PRINTED:
                continue
            if (name, column, row.get("model")) in NOT_PRINTED_CELLS or not NUMBER.fullmatch(value or ""):
                continue
            assert printed(value, published_md), f"{name}: {column}={value} is not in PUBLISHED.md"
    for column in QUOTE_COLUMNS.get(name, ()):
        for row in rows:
            assert row[column] and row[column] in published_md, f"{name}: {column} {row[column]!r} not verbatim"


def test_model_cards_cover_the_table() -> None:
    _, rows = read(PUBLISHED / "model_cards.csv")
    facts = ("framework", "stage1", "stage2", "compute", "test_perplexity")
    assert {(r["model"], r["fact"]) for r in rows} >= {(m, f) for m in MODELS for f in facts}
    assert {(r["model"], r["fact"]) for r in rows if r["model"] == "all"} == {("all", "gpu"), ("all", "tokenizer")}


def test_superglue_rows_match_the_printed_table(published_md: str) -> None:
    _, rows = read(PUBLISHED / "russian_superglue_leaderboard.csv")
    assert [r["model"] for r in rows] == ["RuGPT3Large", "RuGPT3Medium", "RuGPT3Small", "Human benchmark"]
    for r in rows:
        columns = (
            "model score lidirus_mcc rcb_f1/rcb_acc parus_acc muserc_f1a/muserc_em terra_acc russe_acc rwsd_acc"
            " danetqa_acc rucos_f1/rucos_em"
        ).split()
        cells = [" / ".join(r[c] for c in pair.split("/")) for pair in columns]
        assert "| " + " | ".join(cells) + " |" in published_md, r["model"]


def test_mera_and_open_llm_pair_names_with_values(published_md: str) -> None:
    text = " ".join(published_md.split())
    _, mera = read(PUBLISHED / "mera_medium.csv")
    tasks: dict[str, list[str]] = {}
    for r in mera:
        tasks.setdefault(r["task"], []).append(r["value"])
    assert list(tasks)[0] == "Overall"
    for task, values in tasks.items():
        assert f"{task} {' / '.join(values)}" in text, task
    _, llm = read(PUBLISHED / "open_llm_leaderboard.csv")
    for r in llm:
        name = "Avg" if r["benchmark"] == "Average" else f"{r['benchmark']} ({r['shots']}-shot)"
        phrase = f"{name} {r['value']}"
        assert phrase in text, phrase


@pytest.mark.parametrize("experiment", sorted((ROOT / "conf" / "experiment").glob("rugpt3_*_paper.yaml")),
                         ids=lambda p: p.stem)
def test_paper_experiments_name_a_published_compute_row(experiment: Path) -> None:
    """`plan.published` of a paper experiment names a compute.csv model with GPUs and days, whose stages it trains
    (reproduce plan reads the figure from there, so nothing is copied into the YAML)."""
    config = yaml.safe_load(experiment.read_text(encoding="utf-8"))
    model = config["plan"]["published"]
    _, rows = read(PUBLISHED / "compute.csv")
    rows = [r for r in rows if r["model"] == model and r["gpus"] and r["days"]]
    assert rows, f"{experiment.name}: plan.published={model!r} has no compute.csv row with GPUs and days"
    stage_group = next(d["override /stage"] for d in config["defaults"] if "override /stage" in d)
    stages = set(yaml.safe_load((ROOT / "conf" / "stage" / f"{stage_group}.yaml").read_text(encoding="utf-8")))
    assert set(rows[0]["stages"].split("+")) <= stages - {"defaults"}  # the stage group is `# @package stages`


@pytest.mark.parametrize("name", PAPER_BODY)
def test_paper_body_placeholders(name: str) -> None:
    header, rows = read(PUBLISHED / name)
    assert header == PAPER_BODY_HEADER
    assert {r["model"] for r in rows} == set(MODELS)
    for r in rows:
        if any(r[c].strip() for c in ("task", "metric", "value")):
            assert all(r[c].strip() for c in ("task", "metric", "value", "source", "location")), r


# ../shared/published/: the primary sources' files (tape_leaderboard.csv byte for byte) and their README.
TAPE_SOURCE = ("RussianNLP/tape-benchmark-web, leaderboard/tape_leaderboard.csv @ "
               "e584e068035bc578b7ecef06e6795e21fd656b2e")
RUCOLA_NOTEBOOK = ("emnlp2022-submit/RuCoLA, models_lp/threshold_classification.ipynb @ "
                   "729337f194e211e6fc18cbb8bf2e17e074c6661f")


@pytest.fixture(scope="module")
def shared_published() -> Path:
    for path in (ROOT / "shared" / "published", ROOT.parent / "shared" / "published"):
        if path.is_dir():
            return path
    pytest.skip("shared/published/ not found")


def test_tape_leaderboard_is_the_published_file_with_a_source_column(shared_published: Path) -> None:
    with (shared_published / "tape_leaderboard.csv").open(encoding="utf-8", newline="") as f:
        source_rows = list(csv.reader(f))
    with (PUBLISHED / "tape_leaderboard.csv").open(encoding="utf-8", newline="") as f:
        ours = list(csv.reader(f))
    assert ours[0] == [*source_rows[0], "source"]  # the published header, MultiQ/CheGeKa `_acc` (EM) included
    assert [row[:-1] for row in ours[1:]] == source_rows[1:]  # every cell as published, every row, in order
    assert {row[-1] for row in ours[1:]} == {TAPE_SOURCE}
    assert "e584e068035bc578b7ecef06e6795e21fd656b2e" in (shared_published / "README.md").read_text(encoding="utf-8")


def test_rucola_baselines_are_the_notebook_outputs(shared_published: Path) -> None:
    text = (shared_published / "README.md").read_text(encoding="utf-8")
    _, rows = read(PUBLISHED / "rucola_baselines.csv")
    assert [(r["model"], r["split"], r["domain"]) for r in rows] == [
        ("large", "dev", "in_domain"), ("large", "dev", "out_of_domain"), ("medium", "dev", "in_domain"),
        ("medium", "dev", "out_of_domain"), ("medium", "test", "in_domain"), ("medium", "test", "out_of_domain"),
        ("medium", "test", "overall")]
    dev_prefix = {"in_domain": "in_dev", "out_of_domain": "out_dev"}
    test_phrase = {"in_domain": "in-domain test mcc: {} accuracy: {}", "out_of_domain":
                   "out-of-domain test mcc: {} accuracy: {}", "overall": "overall mcc: {} accuracy: {}"}
    for r in rows:
        assert r["source"].startswith(RUCOLA_NOTEBOOK), r
        if r["split"] == "dev":
            line = next(line for line in text.splitlines() if f"gpt3{r['model']}_lp.csv" in line)
            prefix = dev_prefix[r["domain"]]
            assert printed(r["mcc"], line.split(f"{prefix}_mcc:")[1].split(",")[0]), r
            assert printed(r["accuracy"], line.split(f"{prefix}_accuracy:")[1].split(",")[0]), r
        else:
            assert test_phrase[r["domain"]].format(r["mcc"], r["accuracy"]) in text, r


def test_perplexity_history_note_names_both_readme_commits(shared_published: Path) -> None:
    text = (shared_published / "README.md").read_text(encoding="utf-8")
    _, rows = read(PUBLISHED / "perplexity.csv")
    note = next(r["note"] for r in rows if r["model"] == "large")
    for quote in ("8ae3ac9a29c433a8b1265f57884bf08f3961b004", "49cb5d910d8bdb537d3e1cc98faae7200d45d6fb",
                  "Perplexity is 16 on test set", "Final perplexity on test set is `13.6`"):
        assert quote in note and quote in text, quote
