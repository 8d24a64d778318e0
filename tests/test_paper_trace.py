"""Every number in every generated table traces to a field of a results/ file, or to a published row with a source;
and the committed paper/ is exactly what `reproduce paper` builds from the committed results/."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.image import imread

from reproduce.config.compose import compose_config
from reproduce.paper.build import render_paper
from reproduce.paper.formats import Table
from reproduce.paper.reader import Num, show
from tests.paper_fixture import RESULTS, add_evaluated, add_released, copy_results

PAPER = RESULTS.parent / "paper"
RUNS = compose_config("paper", []).paper.present_runs(RESULTS)[0]  # conf/paper/default.yaml: the committed paper's
# A number standing on its own in a cell: not the digits of stage1, rugpt3_large, ruGPT-3 or value_1.
NUMBER = re.compile(r"(?<![\w.-])[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?%?(?![\w.])")


def _field(root: Path, file: str, key: tuple) -> tuple[object, str | None]:
    """The value at ``key`` in ``root/file``, read here independently of the paper code, and a CSV row's source."""
    path = (root / file).resolve()
    assert path.is_relative_to(root.resolve()) and path.is_file(), f"{file} is not a file under results/"
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as f:
            row = list(csv.DictReader(f))[key[0]]
        return row[key[1]], row["source"]
    value = json.loads(path.read_text(encoding="utf-8"))
    for part in key:
        value = value[part]
    return value, None


# A derived cell's operation on the values of its fields (ours first), written here apart from the paper code.
OPERATIONS = {"percent": lambda ours: 100 * ours, "percent_minus": lambda ours, published: 100 * ours - published,
              "minus": lambda ours, published: ours - published}


def untraced(tables: list[Table], root: Path) -> list[str]:
    """Cells showing a number that is not exactly the formatted value of the results fields they name (or, for a
    derived cell, its operation on them)."""
    problems = []
    for table in tables:
        for row in table.rows:
            for cell in row:
                if not NUMBER.search(cell):
                    continue
                if not isinstance(cell, Num):
                    problems.append(f"{table.name}: {cell!r} names no results field")
                    continue
                shown, values = [], []
                for ref in cell.refs:
                    value, source = _field(root, ref.file, ref.key)
                    if source is not None and not source.strip():
                        problems.append(f"{table.name}: {cell!r} comes from {ref.file} row {ref.key[0]} without source")
                    shown.append(show(value, ref.fmt))
                    values.append(value)
                operation = getattr(cell, "operation", None)
                expected = (format(OPERATIONS[operation](*map(float, values)), cell.fmt) if operation
                            else cell.template.format(*shown))
                if expected != cell:
                    problems.append(f"{table.name}: {cell!r} is not {expected!r} of {cell.refs}")
    return problems


def test_committed_tables_trace_to_results() -> None:
    _, tables = render_paper(RESULTS, RUNS)
    assert {"architectures", "recipe", "compute", "perplexity", "zero_shot", "contamination"} <= {t.name for t in
                                                                                                  tables}
    assert untraced(tables, RESULTS) == []
    assert sum(isinstance(c, Num) for t in tables for r in t.rows for c in r) > 200


def test_evaluated_models_and_filled_body_table_trace(tmp_path: Path) -> None:
    root = copy_results(tmp_path)
    add_evaluated(root, "ckpt-a", 1_000_000, 80.0, 0.61)
    body = root / "published" / "paper_body_tape.csv"
    body.write_text("model,task,metric,value,source,location\nsmall,Winograd,acc,0.567,arXiv 2309.10931v3,Table 4\n"
                    "medium,,,,,\nlarge,,,,,\n", encoding="utf-8")
    _, tables = render_paper(root, ["mini"])
    by_name = {t.name: t for t in tables}
    row = ["ckpt-a", "reproduce eval", "1,000,000", "2048", "50,000", "80.00", "0.900", "—", "—"]
    assert row in by_name["perplexity"].rows
    assert ["ckpt-a", "ru_local", "0.610", "0.000", "0.510", "0.560", "0.700", "0.110"] in by_name["zero_shot"].rows
    assert by_name["paper_body_tape"].rows == [["small", "0.567"], ["medium", "n/r"], ["large", "n/r"]]
    assert untraced(tables, root) == []


def test_published_vs_ours_traces_ours_and_the_difference(tmp_path: Path) -> None:
    root = copy_results(tmp_path)
    add_released(root, "large", 0, 0.41)
    add_released(root, "large", 4, 0.43)
    _, tables = render_paper(root, ["mini"])
    by_name = {t.name: t for t in tables}
    rows = {tuple(r[:4]): r[4:] for r in by_name["published_vs_ours"].rows}
    # per size: published, ours, difference; medium and small have no results of ours
    assert rows[("TAPE", "Winograd", "acc", "0")] == ["38.6", "n/r", "n/r", "39.5", "n/r", "n/r",
                                                      "39.2", "41.0", "+1.8"]
    assert rows[("TAPE", "Winograd", "acc", "4")][6:] == ["38.8", "43.0", "+4.2"]
    assert rows[("TAPE", "MultiQ", "em", "0")][6:] == ["0.14", "0.4", "+0.3"]  # ours: em 0.0041, in percent
    assert rows[("TAPE", "CheGeKa", "f1", "1")][6:] == ["0.0", "n/r", "n/r"]  # no k = 1 results
    assert rows[("RuCoLA PenLP, dev", "in-domain", "mcc", "—")] == ["n/r"] * 3 + ["0.21", "n/r", "n/r",
                                                                                "0.22", "0.010", "-0.210"]
    assert rows[("RuCoLA PenLP, dev", "out-of-domain", "acc", "—")][6:] == ["54.6", "36.00", "-18.60"]
    assert not any("Ethics" in key[1] for key in rows)  # no task of ours
    assert by_name["paper_tape"].rows[0][:3] == ["small", "0", "38.6 / 57.9"]
    assert by_name["paper_tape"].rows[-2][2] == "38.8±2.9 / 58.4±0.5"  # large, k = 4
    assert ["ai-forever--rugpt3large_based_on_gpt2", "tape"] in [r[:2] for r in by_name["zero_shot"].rows]
    assert "tape_4shot" not in {r[1] for r in by_name["zero_shot"].rows}  # a k-shot file is not zero-shot
    assert untraced(tables, root) == []
    path = root / "eval" / "ai-forever--rugpt3large_based_on_gpt2" / "tape.json"
    result = json.loads(path.read_text())
    result["metrics"]["tape_winograd"]["acc"] = 0.5  # the results changed after the tables were made
    path.write_text(json.dumps(result))
    assert any("'+1.8' is not '+10.8'" in p for p in untraced(tables, root))


def test_untraced_numbers_are_caught(tmp_path: Path) -> None:
    root = copy_results(tmp_path)
    _, tables = render_paper(root, ["mini"])
    plain = Table("made_up", "x", ["a", "b"], [["mini", "0.5"], ["stage1", "n/r"]], [], [])
    assert untraced([plain], root) == ["made_up: '0.5' names no results field"]
    summary = json.loads((root / "mini" / "summary.json").read_text())
    summary["perplexity"][0]["perplexity"] += 1  # the results changed after the tables were made
    (root / "mini" / "summary.json").write_text(json.dumps(summary))
    assert any("148.59" in p for p in untraced(tables, root))
    path = root / "published" / "perplexity.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    rows[2]["source"] = ""  # large: 13.6 without its source
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert [p for p in untraced(tables, root) if "without source" in p] == [
        "perplexity: '13.6' comes from published/perplexity.csv row 2 without source"]


def _committed() -> dict[str, bytes]:
    return {p.relative_to(PAPER).as_posix(): p.read_bytes() for p in sorted(PAPER.rglob("*")) if p.is_file()}


PNG_PIXELS_DIFFERING = 1e-3  # the share of a PNG's pixel values that may differ from the committed one


def png_pixels_differing(built: bytes, committed: bytes) -> float:
    """The share of pixel values (channels counted apart) in which two PNGs of the same size differ."""
    first, second = (imread(io.BytesIO(data), format="png") for data in (built, committed))
    assert first.shape == second.shape
    return float(np.mean(first != second))


def test_committed_paper_is_regenerated() -> None:
    """`reproduce paper` from the committed results/ gives the committed paper/: tables, PDFs and the index byte for
    byte; PNGs pixel for pixel but for a share of at most 1e-3 of their values (antialiasing may round a point
    differently where a coordinate's last bits depend on the CPU's instruction set; what the figures derive, the
    fits, is drawn from values rounded for display). The figures are compared when this matplotlib is the one
    paper/README.md records (another version rasterises differently)."""
    files, _ = render_paper(RESULTS, RUNS)
    committed = _committed()
    assert sorted(files) == sorted(committed)
    same_matplotlib = f"matplotlib {matplotlib.__version__}," in committed["README.md"].decode()
    for name, data in files.items():
        if name.startswith("figures/") and not same_matplotlib:
            continue
        if name.endswith(".png"):
            share = png_pixels_differing(data, committed[name])
            assert share <= PNG_PIXELS_DIFFERING, f"paper/{name}: {share:.2%} of its pixel values differ; run it"
        else:
            if name == "README.md" and not same_matplotlib:  # it names the matplotlib that drew the figures
                data = re.sub(rb"matplotlib [^,\s]+,", re.search(rb"matplotlib [^,\s]+,", committed[name]).group(0),
                              data, count=1)
            assert data == committed[name], f"paper/{name} differs from what `reproduce paper` builds; run it"
    if not same_matplotlib:
        pytest.skip(f"figures not compared: paper/ was built with another matplotlib than {matplotlib.__version__}")


def test_the_png_comparison_tells_a_changed_figure() -> None:
    """A figure drawn from other values differs in far more than the tolerated share of pixel values."""
    from matplotlib.figure import Figure

    def png(values: list[float]) -> bytes:
        fig = Figure(figsize=(3, 2), dpi=100)
        fig.add_subplot().plot(values)
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()

    assert png_pixels_differing(png([1, 2, 3]), png([1, 2, 3])) == 0
    assert png_pixels_differing(png([1, 2, 3]), png([1, 3, 2])) > PNG_PIXELS_DIFFERING
