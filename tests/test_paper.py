"""paper/ is rebuilt from results/ alone: every output, same bytes twice, no stale or half-built files, one clear line
for a missing or malformed results file, mismatches flagged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reproduce.core.errors import UserError
from reproduce.paper.build import build_paper
from tests.paper_fixture import RESULTS, copy_results

TABLES = ["architectures", "recipe", "hyperparameters", "compute", "perplexity", "zero_shot",
          "russian_superglue_leaderboard", "mera_medium", "open_llm_leaderboard", "paper_tape", "rucola_baselines",
          "published_vs_ours", "paper_body_russian_superglue", "paper_body_tape", "paper_body_probing",
          "paper_body_generation", "contamination", "samples"]
FIGURES = ["loss_vs_tokens", "loss_by_position", "perplexity_vs_parameters", "task_accuracy", "throughput_mfu",
           "rublimp_per_phenomenon", "benchmarks_vs_tokens"]
OUTPUTS = sorted(["README.md", *(f"tables/{t}.{s}" for t in TABLES for s in ("md", "tex")),
                  *(f"figures/{f}.{s}" for f in FIGURES for s in ("pdf", "png"))])


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_results(tmp_path_factory.mktemp("paper"))


@pytest.fixture(scope="module")
def built(results: Path) -> Path:
    """paper/ built once from the results fixture (tests copy it rather than build it again)."""
    paper = results.parent / "paper"
    build_paper(results, ["mini"], paper)
    return paper


def _snapshot(paper: Path) -> dict[str, bytes]:
    return {p.relative_to(paper).as_posix(): p.read_bytes() for p in sorted(paper.rglob("*")) if p.is_file()}


def test_all_outputs_and_identical_bytes(results: Path, tmp_path: Path) -> None:
    paper = tmp_path / "paper"
    written = build_paper(results, ["mini"], paper)
    assert sorted(p.relative_to(paper).as_posix() for p in written) == OUTPUTS
    first = _snapshot(paper)
    assert sorted(first) == OUTPUTS and all(first.values())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paper"]  # no staging folder left behind
    (paper / "tables" / "stale.md").write_text("from an older build")
    (tmp_path / ".paper.new.killed").mkdir()  # the staging folder of a build that was killed
    build_paper(results, ["mini"], paper)
    assert _snapshot(paper) == first  # same bytes, and the stale file is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paper"]
    index = first["README.md"].decode()
    for name in (*TABLES, *FIGURES):
        line = next(line for line in index.splitlines() if f"/{name}." in line)
        assert "From `results/" in line  # every artifact names its results files


def test_tables_content(built: Path) -> None:
    paper = built
    arch = (paper / "tables" / "architectures.md").read_text()
    assert arch.count("| yes |") == 3 and "no:" not in arch
    ppl = (paper / "tables" / "perplexity.md").read_text()
    assert "| ruGPT-3 medium (published†) | — | 355,871,744 | — | — | 17.4 |" in ppl
    assert "| 13.6 |" in ppl and "| n/r |" in ppl and "not comparable" in ppl
    summary = json.loads((RESULTS / "mini" / "summary.json").read_text(encoding="utf-8"))  # the digits of its CPU
    final = next(r for r in summary["perplexity"] if r["stage"] == "stage2" and r["context"] == 256)
    assert (f"| mini | stage2 | 2,615,424 | 256 | 65,536 | {final['perplexity']:.2f} | {final['bits_per_byte']:.3f} "
            f"| {final['ratio_to_unigram']:.3f} |") in ppl
    compute = (paper / "tables" / "compute.md").read_text()
    assert "| large | stage1 | 128 | 14 | 43,008 | 1.20e+21 | 6.2% | 5.7% | 37.5% | 901 |" in compute
    assert "(assumed)" in compute and "Derived, not published" in compute
    board = (paper / "tables" / "russian_superglue_leaderboard.md").read_text()
    assert "| RuGPT3Small | 0.438 | -0.013 | 0.356 / 0.473 |" in board and "not zero-shot" in board
    assert "| small | n/r |" in (paper / "tables" / "paper_body_tape.md").read_text()
    tex = (paper / "tables" / "perplexity.tex").read_text()
    assert r"\toprule" in tex and "17.4" in tex and "---" in tex


def test_architecture_mismatch_is_flagged(results: Path, tmp_path: Path) -> None:
    root = copy_results(tmp_path)
    data = json.loads((root / "architectures.json").read_text())
    data["models"]["rugpt3_medium"]["parameters"] += 1
    (root / "architectures.json").write_text(json.dumps(data))
    build_paper(root, ["mini"], tmp_path / "paper")
    rows = [r for r in (tmp_path / "paper" / "tables" / "architectures.md").read_text().splitlines()
            if r.startswith("| medium |")]
    assert len(rows) == 1 and rows[0].endswith("| no: parameters |") and "355,871,745 / 355,871,744" in rows[0]


@pytest.mark.parametrize(("name", "damage", "message"), [
    ("architectures.json", None, "results file not found"),
    ("mini/summary.json", None, "results file not found"),
    ("mini/curves.json", None, "results file not found"),
    ("published/perplexity.csv", None, "results file not found"),
    ("published/compute.csv", None, "results file not found"),
    ("mini/summary.json", "{not json", "not valid JSON"),
    ("mini/summary.json", '{"run": "mini"}', "no field perplexity"),
    ("published/mera_medium.csv", "task,metric,value,source\nBPS,score,0.43,\n", "has a value but no source"),
    ("published/open_llm_leaderboard.csv", "model,benchmark,value\nx,ARC,1\n", "no column source"),
    ("published/recipe.csv", "model,stage,context,epochs,tokens_per_epoch,quote,source,note\nsmall,stage1\n",
     "row 2 has 2 cells, the header 8"),
    ("published/paper_body_probing.csv", "model,task,metric,value,source,location\nsmall,t,acc,0.5,arXiv,\n",
     "has a value but no location"),
])
def test_bad_results_file(built: Path, tmp_path: Path, name: str, damage: str | None, message: str) -> None:
    root = copy_results(tmp_path)
    paper = tmp_path / "paper"
    shutil.copytree(built, paper)
    before = _snapshot(paper)
    if damage is None:
        (root / name).unlink()
    else:
        (root / name).write_text(damage, encoding="utf-8")
    with pytest.raises(UserError, match=message) as err:
        build_paper(root, ["mini"], paper)
    assert name in str(err.value) and "\n" not in str(err.value)
    assert _snapshot(paper) == before  # the old paper/ untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paper", "results"]


def test_only_the_listed_runs_enter_the_paper(tmp_path: Path) -> None:
    root = copy_results(tmp_path)
    shutil.copytree(root / "mini", root / "experiment")
    build_paper(root, ["mini"], tmp_path / "paper")
    assert "| experiment |" not in (tmp_path / "paper" / "tables" / "perplexity.md").read_text()
    build_paper(root, ["mini", "experiment"], tmp_path / "both")
    assert "| experiment | stage2 |" in (tmp_path / "both" / "tables" / "perplexity.md").read_text()
    with pytest.raises(UserError, match="paper.runs is empty"):
        build_paper(root, [], tmp_path / "none")
    with pytest.raises(UserError, match="absent/summary.json"):
        build_paper(root, ["absent"], tmp_path / "none")
