"""N-gram decontamination: hashes against a naive reference, matches inside and across chunks, leading spaces with
the real ruGPT-3 tokenizer, the default sets read from the mirror, errors, and the paper table."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from reproduce.config.compose import compose_config
from reproduce.config.schema import ContaminationConfig, EvalTextsConfig
from reproduce.core.errors import UserError
from reproduce.core.io import write_json
from reproduce.data.contamination import (
    EvalNgrams,
    Item,
    _multipliers,
    contamination_report,
    ngram_hashes,
    read_items,
)
from reproduce.data.manifest import Resolver
from reproduce.evaluate.benchmarks import TASKS_DIR
from reproduce.paper.build import build_paper, render_paper
from reproduce.paper.formats import to_latex, to_markdown
from reproduce.paper.reader import Results
from reproduce.paper.tables import contamination_table
from tests.paper_fixture import copy_results

TOKENIZER = Path("/work/shared/data/tokenizers/rugpt3")
M64 = (1 << 64) - 1


# ------------------------------------------------------------------------------------------------ hashing


def _splitmix(x: int) -> int:
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def _naive_hashes(tokens: list[int], n: int) -> list[int]:
    """The documented hash, one window at a time with Python integers: sum_j M_j * splitmix64(t_j) mod 2^64."""
    mult = [int(m) for m in _multipliers(n)]
    assert all(m % 2 == 1 for m in mult) and len(set(mult)) == n
    return [sum(mult[j] * _splitmix(tokens[i + j]) for j in range(n)) & M64 for i in range(len(tokens) - n + 1)]


@pytest.mark.parametrize("n", [1, 2, 8, 13])
def test_ngram_hashes_match_a_naive_reference(n: int) -> None:
    tokens = np.random.default_rng(n).integers(0, 50257, size=60)
    hashes = ngram_hashes(tokens, n)
    assert hashes.dtype == np.uint64 and len(hashes) == 60 - n + 1
    assert hashes.tolist() == _naive_hashes(tokens.tolist(), n)
    assert ngram_hashes(tokens.astype(np.uint16), n).tolist() == hashes.tolist()  # the shards' dtype
    assert ngram_hashes(tokens[: n - 1], n).shape == (0,)
    assert ngram_hashes(tokens[:n], n).tolist() == hashes[:1].tolist()


def test_ngram_hashes_tell_windows_apart() -> None:
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 300, size=200_000)  # a small vocabulary: many windows share most of their tokens
    hashes = ngram_hashes(tokens, 13)
    windows = np.lib.stride_tricks.sliding_window_view(tokens, 13)
    distinct_windows = len(np.unique(windows, axis=0))
    assert len(np.unique(hashes)) == distinct_windows
    repeated = np.concatenate([tokens[:50], tokens[:50]])
    h = ngram_hashes(repeated, 13)
    assert h[0] == h[50] and h[0] != h[1]


# ------------------------------------------------------------------------------------------------ matching

RNG = np.random.default_rng(1234)
STREAM = RNG.integers(100, 50000, size=10_000)  # the "training" tokens
CODES: dict[str, list[int]] = {  # a fake tokenizer: each text's ids as is and after a leading space
    "inside": STREAM[2000:2020].tolist(),
    " inside": [7, *STREAM[2001:2020].tolist()],
    "straddle": STREAM[4990:5010].tolist(),  # crosses the chunk boundary at 5000
    " straddle": [7, 8, 9],
    "short": STREAM[4996:5006].tolist(),  # 10 tokens: matched whole, across the boundary
    " short": [7, 8, 9],
    "spaced": [1, 2, 3],  # only its leading-space form is in the stream
    " spaced": STREAM[7000:7015].tolist(),
    "absent": [*STREAM[3000:3012].tolist(), 1, *STREAM[3013:3025].tolist()],  # its middle token changed
    " absent": [1, 2, 3],
    "tiny": STREAM[100:105].tolist(),  # 5 tokens, below min_tokens: not checked even though it occurs
    " tiny": STREAM[100:105].tolist(),
}


def _encode(texts: list[str]) -> list[list[int]]:
    return [CODES[t] for t in texts]


def _items() -> dict[str, list[Item]]:
    return {
        "a": [Item(f"a:f:{i}", (name,)) for i, name in enumerate(["inside", "straddle", "absent", "tiny"])],
        "b": [Item("b:f:0", ("short", "tiny")), Item("b:f:1", ("spaced",)), Item("b:f:2", ("tiny",))],
    }


def _scan(chunk: int) -> dict:
    ngrams = EvalNgrams.build(_items(), _encode, 13, 8)
    for start in range(0, len(STREAM), chunk):
        ngrams.scan(STREAM[start:start + chunk].astype(np.uint16))
    assert ngrams.train_tokens == len(STREAM)
    return ngrams.report()


def test_items_in_the_stream_are_found_across_chunk_boundaries() -> None:
    report = _scan(5000)
    a, b = report["a"], report["b"]
    assert a["items"] == 4 and a["checked"] == 3 and a["too_short"] == 1
    assert a["contaminated"] == 2 and a["examples"] == ["a:f:0", "a:f:1"] and a["share"] == pytest.approx(2 / 3)
    # inside: 8 windows + the first of its space form (the others are the same); straddle: 8; absent: 13
    assert a["ngrams"] == 9 + 8 + 13 and a["ngrams_found"] == 8 + 8
    assert b["items"] == 3 and b["checked"] == 2 and b["too_short"] == 1
    assert b["contaminated"] == 2 and b["examples"] == ["b:f:0", "b:f:1"] and b["share"] == 1.0
    assert b["ngrams"] == 1 + 3 and b["ngrams_found"] == 1 + 3  # short: one whole key; spaced: 3 windows of 15


@pytest.mark.parametrize("chunk", [10_000, 999, 13, 7, 1])
def test_chunking_does_not_change_the_report(chunk: int) -> None:
    assert _scan(chunk) == _scan(5000)


def test_absent_items_are_not_found() -> None:
    ngrams = EvalNgrams.build(_items(), _encode, 13, 8)
    ngrams.scan(RNG.integers(100, 50000, size=20_000))  # other tokens
    report = ngrams.report()
    assert report["a"]["contaminated"] == report["b"]["contaminated"] == 0
    assert report["a"]["share"] == 0.0 and report["a"]["ngrams_found"] == 0 and report["a"]["examples"] == []


def test_contains_any_and_pickling() -> None:
    ngrams = EvalNgrams.build(_items(), _encode, 13, 8)
    other = RNG.integers(100, 50000, size=3000)
    for candidate in (ngrams, pickle.loads(pickle.dumps(ngrams))):  # as sent to a worker process
        assert candidate.contains_any(STREAM)
        assert candidate.contains_any(np.concatenate([other, STREAM[2005:2018], other]))  # one 13-gram of "inside"
        assert candidate.contains_any(np.asarray(CODES["short"], dtype=np.uint16))  # a whole short item
        assert not candidate.contains_any(np.concatenate([other, STREAM[2005:2017], other]))  # 12 tokens only
        assert not candidate.contains_any(STREAM[100:105])  # "tiny" is never checked
        assert not candidate.contains_any(np.empty(0, dtype=np.uint16))
        assert not candidate.contains_any(other)


def test_report_with_test_works_is_json(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    (mirror / "s").mkdir(parents=True)
    (mirror / "s" / "items.jsonl").write_text(
        "\n".join(json.dumps({"t": t, "keep": k}) for t, k in [("inside", 1), ("absent", 1), ("straddle", 0)]) + "\n",
        encoding="utf-8",
    )
    manifest = _manifest(tmp_path / "m.tsv", mirror, ["s/items.jsonl"])
    cfg = ContaminationConfig(sets={"s": EvalTextsConfig(manifest=str(manifest), format="jsonl", fields=["t"],
                                                         where={"keep": "1"})})
    resolver = Resolver(tmp_path / "cache", mirror, allow_download=False)
    works = [("novel.txt", STREAM[6000:6400]), ("poem.txt", RNG.integers(100, 50000, size=400))]
    chunks = [STREAM[i:i + 3000] for i in range(0, len(STREAM), 3000)]
    report = contamination_report(cfg, resolver, _encode, iter(chunks), iter(works))
    assert json.loads(json.dumps(report)) == report
    assert report["n"] == 13 and report["min_tokens"] == 8 and report["train_tokens"] == len(STREAM)
    assert list(report["sets"]) == ["s", "test_works"]
    assert report["sets"]["s"]["items"] == 2 and report["sets"]["s"]["examples"] == ["s:items.jsonl:0"]
    works_report = report["sets"]["test_works"]
    assert works_report["items"] == 2 and works_report["contaminated"] == 1
    assert works_report["examples"] == ["test_works:novel.txt"] and works_report["ngrams"] == 2 * (400 - 12)
    assert works_report["ngrams_found"] == 400 - 12
    without = contamination_report(cfg, resolver, _encode, iter(chunks), None)
    assert list(without["sets"]) == ["s"]


# ------------------------------------------------------------------------------------------------ real tokenizer


@pytest.fixture(scope="module")
def encode():
    from reproduce.data.tokenizer import load_bpe_files

    backend = load_bpe_files(TOKENIZER / "vocab.json", TOKENIZER / "merges.txt").backend_tokenizer
    return lambda texts: [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]


def _contains(haystack: list[int], needle: list[int]) -> bool:
    return any(haystack[i:i + len(needle)] == needle for i in range(len(haystack) - len(needle) + 1))


def test_rublimp_sentence_mid_paragraph_is_found(mirror: Path, encode) -> None:
    with (mirror / "eval" / "rublimp" / "negative_concord.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    lengths = {r["source_sentence"]: len(encode([" " + r["source_sentence"]])[0]) for r in rows[:200]}
    long = next(s for s, k in lengths.items() if k >= 16)  # matched by its 13-grams
    short = next(s for s, k in lengths.items() if 8 <= k < 13)  # matched whole
    paragraph = ("Он долго молчал, глядя в окно на мокрые крыши. " + long + " Потом встал, прошёлся по комнате. "
                 + short + " И снова сел к столу.")
    doc = encode([paragraph])[0]
    for sentence in (long, short):
        bare = encode([sentence])[0]
        assert not _contains(doc, bare)  # without the space the first word is another token: no match
        assert _contains(doc, encode([" " + sentence])[0])
    items = {"rublimp": [Item("rublimp:x:0", (long,)), Item("rublimp:x:1", (short,))]}
    ngrams = EvalNgrams.build(items, encode, 13, 8)
    ngrams.scan(np.asarray(doc, dtype=np.uint16))
    report = ngrams.report()["rublimp"]
    assert report["checked"] == 2 and report["contaminated"] == 2
    clean = EvalNgrams.build(items, encode, 13, 8)
    clean.scan(np.asarray(encode(["Он долго молчал, глядя в окно на мокрые крыши. Потом встал."])[0]))
    assert clean.report()["rublimp"]["contaminated"] == 0


# ------------------------------------------------------------------------------------------------ the default sets


@pytest.fixture(scope="module")
def default_items(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Item]]:
    cfg = compose_config("reproduce", []).contamination
    resolver = Resolver(tmp_path_factory.mktemp("cache"), mirror, allow_download=False)
    return {name: read_items(name, texts, resolver) for name, texts in cfg.sets.items()}


def test_default_sets_item_counts(default_items: dict[str, list[Item]], mirror: Path) -> None:
    counts = {name: len(items) for name, items in default_items.items()}
    # distinct texts per file: RuBLiMP 45,000 pairs of which 4 repeat an earlier pair of their file; XWinograd 315
    # schemas on 280 sentences (a second pronoun of the same sentence); PARus 1,500 crowd votes on 500 items
    assert counts == {"rublimp": 44_996, "xwinograd_ru": 280, "parus": 500, "rucola": 983}
    assert default_items["rublimp"][0].id == "rublimp:add_new_suffix.csv:0"
    assert all(len(item.texts) == 2 for item in default_items["rublimp"])
    assert default_items["xwinograd_ru"][0].texts[0].startswith("Члены городского совета отказали")
    assert default_items["rucola"][0] == Item("rucola:in_domain_dev.csv:0", ("Иван вчера не позвонил.",))
    # PARus from its source file gives exactly the items of the mirror's derived majority-vote file
    derived = [json.loads(line) for line in (mirror / "eval/parus/parus_test_human_majority.jsonl").open()]
    assert [item.texts for item in default_items["parus"]] == [
        (d["premise"].strip(), d["choice1"].strip(), d["choice2"].strip()) for d in derived
    ]


def test_new_manifests_match_the_mirror(mirror: Path) -> None:
    from reproduce.data.manifest import read_manifest

    sums = dict(reversed(line.split("  ", 1)) for line in (mirror / "SHA256SUMS").read_text().splitlines())
    for name, count in (("parus", 1), ("rucola", 3), ("xwinograd_ru", 1)):
        entries = read_manifest(TASKS_DIR / name / "manifest.tsv")
        assert len(entries) == count
        for entry in entries:
            if entry.path == "eval/rucola/out_of_domain_dev.csv":  # not mirrored (PenLP only): from its URL
                continue
            assert sums[entry.path] == entry.sha256
            assert entry.url.startswith(("https://raw.githubusercontent.com/",
                                         "derived-from:https://raw.githubusercontent.com/"))
            assert entry.url.startswith("https://") or name == "xwinograd_ru"  # the one derived file
            assert "parus_test_human_majority" not in entry.path


# ------------------------------------------------------------------------------------------------ errors


def _manifest(path: Path, mirror: Path, files: list[str]) -> Path:
    import hashlib

    rows = [f"{f}\t{hashlib.sha256((mirror / f).read_bytes()).hexdigest()}\thttps://example.invalid/{f}"
            for f in files]
    path.write_text("\n".join(["path\tsha256\turl", *rows]) + "\n", encoding="utf-8")
    return path


def _one_line_error(texts: EvalTextsConfig, resolver: Resolver, *needles: str) -> str:
    with pytest.raises(UserError) as err:
        read_items("s", texts, resolver)
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message
    return message


def test_wrong_field_of_a_default_set(mirror: Path, tmp_path: Path) -> None:
    resolver = Resolver(tmp_path / "cache", mirror, allow_download=False)
    texts = EvalTextsConfig(benchmark="rucola", format="csv", fields=["sentense"], files=["in_domain_dev.csv"])
    with pytest.raises(UserError) as err:
        read_items("rucola", texts, resolver)
    message = str(err.value)
    assert message.startswith("contamination.sets.rucola.fields: 'sentense' is not a column of ")
    assert "in_domain_dev.csv" in message and "columns: id, sentence, acceptable" in message and "\n" not in message


def test_read_errors(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "a.csv").write_text("id,text\n0,hello\n1,world,extra\n", encoding="utf-8")
    (mirror / "b.tsv").write_text("ru\tx\tone\nru\tx\n", encoding="utf-8")
    (mirror / "c.jsonl").write_text('{"t": "ok"}\n{"t": "broken"\n', encoding="utf-8")
    manifest = _manifest(tmp_path / "m.tsv", mirror, ["a.csv", "b.tsv", "c.jsonl"])
    resolver = Resolver(tmp_path / "cache", mirror, allow_download=False)

    def cfg(**kw) -> EvalTextsConfig:
        return EvalTextsConfig(manifest=str(manifest), **kw)

    _one_line_error(cfg(format="csv", fields=["text"], files=["a.csv"]), resolver, "a.csv line 3", "3 columns")
    _one_line_error(cfg(format="csv", fields=["txt"], files=["a.csv"]), resolver,
                    "contamination.sets.s.fields: 'txt'", "columns: id, text")
    _one_line_error(cfg(format="csv", fields=["text"], files=["a.csv"], where={"lang": "ru"}), resolver,
                    "contamination.sets.s.where: 'lang'")
    _one_line_error(cfg(format="tsv", fields=["5"], header=False, files=["b.tsv"]), resolver,
                    "contamination.sets.s.fields: '5'", "columns: 0, 1, 2", "0-based")
    _one_line_error(cfg(format="tsv", fields=["2"], header=False, files=["b.tsv"]), resolver, "b.tsv line 2")
    _one_line_error(cfg(format="jsonl", fields=["t"], files=["c.jsonl"]), resolver, "c.jsonl line 2")
    _one_line_error(cfg(format="xml", fields=["t"]), resolver, "contamination.sets.s.format: 'xml'")
    _one_line_error(cfg(format="csv", fields=["t"], files=["*.parquet"]), resolver,
                    "contamination.sets.s.files", "a.csv, b.tsv, c.jsonl")
    _one_line_error(EvalTextsConfig(manifest=str(tmp_path / "none.tsv"), format="csv", fields=["t"]), resolver,
                    "contamination.sets.s.manifest", "none.tsv")
    (mirror / "a.csv").unlink()
    _one_line_error(cfg(format="csv", fields=["text"], files=["a.csv"]), resolver,
                    "contamination.sets.s: a.csv: not found", "downloads are disabled")


# ------------------------------------------------------------------------------------------------ the paper


def _report(train_tokens: int = 11_972_000) -> dict:
    def entry(items: int, checked: int, dirty: int, examples: list[str]) -> dict:
        return {"items": items, "checked": checked, "too_short": items - checked, "contaminated": dirty,
                "share": dirty / checked if checked else None, "ngrams": 10 * checked, "ngrams_found": dirty,
                "examples": examples}

    return {"n": 13, "min_tokens": 8, "train_tokens": train_tokens, "sets": {
        "rublimp": entry(44_996, 42_012, 21, ["rublimp:add_new_suffix.csv:5"]),
        "parus": entry(500, 309, 0, []),
        "test_works": entry(37, 37, 3, ["test_works:Толстой/Война и мир.txt"]),
        "empty": entry(4, 0, 0, []),
    }}


def test_contamination_table(tmp_path: Path) -> None:
    root = copy_results(tmp_path)
    write_json(root / "mini" / "contamination.json", _report())
    results = Results(root)
    table = contamination_table(results, ["mini"])
    assert table.headers == ["set", "items", "checked", "contaminated", "share", "n"]
    assert [row[0] for row in table.rows] == ["empty", "parus", "rublimp", "test_works"]
    md = to_markdown(table)
    assert "| rublimp | 44,996 | 42,012 | 21 | 0.05% | 13 |" in md
    assert "| empty | 4 | 0 | 0 | — | 13 |" in md and "| test_works | 37 | 37 | 3 | 8.11% | 13 |" in md
    assert "13-token" in table.caption and "11,972,000 train tokens" in table.caption
    assert "results/mini/contamination.json" in table.sources
    assert r"0.05\%" in to_latex(table) and r"test\_works" in to_latex(table)
    paper = tmp_path / "paper"
    build_paper(root, ["mini"], paper)
    assert "tables/contamination.{md,tex}" in (paper / "README.md").read_text()
    # two runs: one row per (run, set); a run without the file is left out of the table
    (root / "other").mkdir()
    for name in ("summary.json", "curves.json"):
        (root / "other" / name).write_bytes((root / "mini" / name).read_bytes())
    write_json(root / "other" / "contamination.json", _report(5_000_000))
    both = contamination_table(Results(root), ["mini", "other", "third"])
    assert "mini: rublimp" in [row[0] for row in both.rows] and "other: parus" in [row[0] for row in both.rows]
    assert "mini: 11,972,000 train tokens; other: 5,000,000 train tokens" in both.caption


def test_paper_builds_without_contamination(tmp_path: Path) -> None:
    root = copy_results(tmp_path)
    (root / "mini" / "contamination.json").unlink()
    files, _ = render_paper(root, ["mini"])
    assert "tables/architectures.md" in files and not any("contamination" in name for name in files)
