"""paper/ is rebuilt from synthetic results/ alone: every output, same bytes twice, mismatches flagged."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reproduce.errors import UserError
from reproduce.io import read_json, write_json
from reproduce.paper.build import build_paper

PUBLISHED = Path(__file__).resolve().parents[1] / "results" / "published"
OUTPUTS = [
    "README.md",
    "figures/loss_vs_tokens.pdf",
    "figures/loss_vs_tokens.png",
    "figures/rublimp_per_phenomenon.pdf",
    "figures/rublimp_per_phenomenon.png",
    "tables/architectures.md",
    "tables/architectures.tex",
    "tables/mini_results.md",
    "tables/mini_results.tex",
]
META = {
    "package_version": "0.1.0",
    "torch": "2.0",
    "transformers": "4.0",
    "lm_eval": "0.4",
    "git_commit": "abc123",
    "device": "cpu",
    "dtype": "bf16-mixed",
    "seed": 1234,
}


def _arch(n_layer: int, n_embd: int, n_head: int, n_positions: int, vocab: int) -> dict[str, int]:
    params = vocab * n_embd + n_positions * n_embd + n_layer * (12 * n_embd**2 + 13 * n_embd) + 2 * n_embd
    return {
        "n_layer": n_layer,
        "n_embd": n_embd,
        "n_head": n_head,
        "n_positions": n_positions,
        "vocab_size": vocab,
        "parameters": params,
    }


@pytest.fixture
def results(tmp_path: Path) -> Path:
    root = tmp_path / "results"
    shutil.copytree(PUBLISHED, root / "published")
    write_json(
        root / "architectures.json",
        {
            "meta": META,
            "models": {
                "mini": _arch(4, 256, 4, 256, 8192),
                "rugpt3_small": _arch(12, 768, 12, 2048, 50264),
                "rugpt3_medium": _arch(24, 1024, 16, 2048, 50257),
                "rugpt3_large": _arch(24, 1536, 16, 2048, 50257),
            },
        },
    )
    phenomena = {f"phenomenon_{i:02d}": 0.5 + i / 100 for i in range(6)}
    write_json(
        root / "mini" / "summary.json",
        {
            "meta": META,
            "run": "mini",
            "perplexity": [
                {
                    "stage": s,
                    "context": c,
                    "tokens": 262144,
                    "nll_per_token": 5.1,
                    "perplexity": 164.0 - c / 10,
                    "bits_per_byte": 1.9,
                }
                for s in ("stage1", "stage2")
                for c in (128, 256)
            ],
            "unigram": {"tokens": 262144, "perplexity": 900.0, "bits_per_byte": 3.1},
            "rublimp": {
                "stage1": {"mean": 0.6, "n_pairs": 600, "per_phenomenon": phenomena},
                "stage2": {
                    "mean": 0.7,
                    "n_pairs": 600,
                    "per_phenomenon": {k: v + 0.1 for k, v in phenomena.items()},
                },
            },
            "timings_s": {
                "prepare": 60.0,
                "stage1": 400.0,
                "stage2": 150.0,
                "evaluate": 120.0,
                "total": 730.0,
            },
        },
    )
    write_json(
        root / "mini" / "curves.json",
        {
            "meta": META,
            "train": [
                {
                    "stage": s,
                    "step": k,
                    "tokens": 4096 * k,
                    "loss": 8.0 - k / 10 - (s == "stage2"),
                    "lr": 1e-3,
                }
                for s in ("stage1", "stage2")
                for k in range(10, 60, 10)
            ],
            "validation": [
                {"stage": s, "step": k, "tokens": 4096 * k, "loss": 7.5 - k / 10 - (s == "stage2")}
                for s in ("stage1", "stage2")
                for k in (25, 50)
            ],
        },
    )
    return root


def _snapshot(paper: Path) -> dict[str, bytes]:
    return {p.relative_to(paper).as_posix(): p.read_bytes() for p in sorted(paper.rglob("*")) if p.is_file()}


def test_all_outputs_and_identical_bytes(results: Path, tmp_path: Path) -> None:
    paper = tmp_path / "paper"
    written = build_paper(results, ["mini"], paper)
    assert sorted(p.relative_to(paper).as_posix() for p in written) == OUTPUTS
    first = _snapshot(paper)
    assert sorted(first) == OUTPUTS  # nothing else (no temporary files) left behind
    assert all(first.values())
    build_paper(results, ["mini"], paper)
    assert _snapshot(paper) == first
    other = tmp_path / "other" / "paper"
    build_paper(results, ["mini"], other)
    assert _snapshot(other) == first
    index = first["README.md"].decode()
    assert all(name.rsplit(".", 1)[0] in index for name in OUTPUTS if name != "README.md")


def test_tables_content(results: Path, tmp_path: Path) -> None:
    paper = tmp_path / "paper"
    build_paper(results, ["mini"], paper)
    arch = (paper / "tables" / "architectures.md").read_text()
    assert arch.count("| yes |") == 3 and "no:" not in arch
    assert "| mini | 4 / —" in arch
    mini = (paper / "tables" / "mini_results.md").read_text()
    assert "| 17.4 |" in mini and "| 13.6 |" in mini and "| n/r |" in mini
    assert "not comparable" in mini and "model card README.md of ai-forever/rugpt3large_based_on_gpt2" in mini
    assert "| mini | stage2 | 256 | 262,144 | 138.40 | 1.900 | 900.00 | 0.154 | 0.700 |" in mini
    tex = (paper / "tables" / "mini_results.tex").read_text()
    assert r"\begin{tabular}" in tex and "mini" in tex and "17.4" in tex and "---" in tex


def test_architecture_mismatch_is_flagged(results: Path, tmp_path: Path) -> None:
    data = read_json(results / "architectures.json")
    data["models"]["rugpt3_medium"]["parameters"] += 1
    write_json(results / "architectures.json", data)
    build_paper(results, ["mini"], tmp_path / "paper")
    rows = [
        r
        for r in (tmp_path / "paper" / "tables" / "architectures.md").read_text().splitlines()
        if r.startswith("| medium |")
    ]
    assert len(rows) == 1 and rows[0].endswith("| no: parameters |")
    assert "355,871,745 / 355,871,744" in rows[0]


@pytest.mark.parametrize(
    "missing",
    [
        "architectures.json",
        "mini/summary.json",
        "mini/curves.json",
        "published/perplexity.csv",
        "published/architectures.csv",
    ],
)
def test_missing_results_file(results: Path, tmp_path: Path, missing: str) -> None:
    (results / missing).unlink()
    paper = tmp_path / "paper"
    with pytest.raises(UserError, match="make reproduce") as err:
        build_paper(results, ["mini"], paper)
    assert missing in str(err.value) and "\n" not in str(err.value)
    assert not paper.exists()  # nothing half-written


def test_no_runs(results: Path, tmp_path: Path) -> None:
    shutil.rmtree(results / "mini")
    with pytest.raises(UserError, match="summary.json"):
        build_paper(results, ["mini"], tmp_path / "paper")


def test_only_the_listed_runs_enter_the_paper(results: Path, tmp_path: Path) -> None:
    shutil.copytree(results / "mini", results / "experiment")
    summary = read_json(results / "experiment" / "summary.json")
    write_json(results / "experiment" / "summary.json", {**summary, "run": "experiment"})
    build_paper(results, ["mini"], tmp_path / "paper")
    assert "| experiment |" not in (tmp_path / "paper" / "tables" / "mini_results.md").read_text()
    build_paper(results, ["mini", "experiment"], tmp_path / "both")
    assert "| experiment | stage2 |" in (tmp_path / "both" / "tables" / "mini_results.md").read_text()
    with pytest.raises(UserError, match="paper.runs is empty"):
        build_paper(results, [], tmp_path / "none")
