"""A probe of unusual inputs, as a new user and as an adversary would try them: none of its cases is in the test
table (tests/bad_settings.py). Each case runs the console script and is judged:

- clean: exit code 2, one line naming the key or file (the case's words), no traceback, nothing written; or, for a
  fault (a damaged file, a held lock), what the case expects (a warning and a recovery), nothing lost;
- traceback, unclear (another exit code, several lines, or the line does not name the thing), security (a file
  written outside the run's folders), data loss (results or models removed or changed), hang (over 120 s).

The floor: at least 100 cases, at least 95% clean, no security or data-loss case, no hang.

    python bench/probe.py [--out results/perf/probe.json]
    python bench/probe.py --smoke   # the first case of each class but the faults (they need a trained micro run):
                                    # seconds; every case must be clean; written to a temporary file
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce.core.checksums import SUMS, write_sums  # noqa: E402
from reproduce.core.paths import SOURCE_ROOT, default_mirror  # noqa: E402
from tests.helpers import micro_overrides  # noqa: E402

REPRODUCE = str(Path(sys.executable).with_name("reproduce"))
TIMEOUT_S = 120


@dataclass(frozen=True)
class Probe:
    name: str
    kind: str  # names | models | values | hydra | eval inputs | paper | faults
    args: list[str]
    words: str  # the error line must hold these (for a fault: stdout or stderr must)
    code: int = 2
    setup: Callable[[Path], None] | None = None  # a fault's damage, done just before the command
    check: Callable[[Path], bool] | None = None  # a fault's test that nothing was lost
    env: tuple[tuple[str, str], ...] = ()


def _files(root: Path) -> dict[str, float]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file() and "cache" not in p.parts}


def _model_folders(root: Path) -> None:
    """Model folders as far as the checks read them: ruGPT-3's config and vocabulary, weights of each kind."""
    released = default_mirror() / "tokenizers" / "rugpt3"
    config = json.loads((released / "config.json").read_text(encoding="utf-8"))
    variants = {"model": {}, "config_auto_map": {"auto_map": {"AutoConfig": "cfg.Evil"}},
                "no_type": {"model_type": None}, "no_context": {"n_positions": 0, "n_ctx": None}, "weights_pt": {},
                "weights_pkl": {}, "no_config": {}, "bad_config": {}, "no_card": {}}
    for name, changes in variants.items():
        folder = root / name
        folder.mkdir(parents=True)
        for file in ("vocab.json", "merges.txt"):
            shutil.copy(released / file, folder / file)
        (folder / "config.json").write_text(json.dumps({k: v for k, v in {**config, **changes}.items()
                                                        if v is not None}), encoding="utf-8")
        save_file({"wte": torch.zeros(1)}, folder / "model.safetensors")  # a header to read; nothing is loaded
    for name, suffix in (("weights_pt", "model.pt"), ("weights_pkl", "weights.pkl")):
        (root / name / "model.safetensors").unlink()
        (root / name / suffix).write_bytes(b"\x80\x04pickle")
    (root / "no_config" / "config.json").unlink()
    (root / "truncated").mkdir()
    for file in ("config.json", "vocab.json", "merges.txt"):
        shutil.copy(root / "model" / file, root / "truncated" / file)
    (root / "truncated" / "model.safetensors").write_bytes((root / "model" / "model.safetensors").read_bytes()[:12])
    (root / "bad_config" / "config.json").write_text("{not json", encoding="utf-8")
    write_sums(root / "no_card")
    shutil.copytree(root / "no_card", root / "export")
    (root / "export" / "README.md").write_text("---\nlanguage: ru\n---\n", encoding="utf-8")
    (root / "texts").mkdir()
    (root / "texts" / "empty.txt").write_text("  \n", encoding="utf-8")
    (root / "texts" / "latin1.txt").write_bytes("Ça ira, ça ira".encode("latin-1"))


def _results(root: Path, name: str, summary_change: Callable[[dict], None] | None = None,
             file: str = "summary.json", raw: bytes | None = None) -> None:
    """results/<name>/ from the committed mini run, one file changed."""
    shutil.copytree(SOURCE_ROOT / "results" / "mini", root / name)
    path = root / name / file
    if raw is not None:
        path.write_bytes(raw)
    elif summary_change is not None:
        data = json.loads(path.read_text(encoding="utf-8"))
        summary_change(data)
        path.write_text(json.dumps(data), encoding="utf-8")


def config_probes(inputs: Path, papers: Path) -> list[Probe]:
    """Every class but the faults: settings and files the pre-flight must refuse."""
    model = inputs / "model"
    names = [Probe(f"run name {v!r}", "names", [f"run_name={v}"], "run_name=") for v in
             ("..", "a/../b", "~root", "$HOME", ".hidden", "x*y", "'a b'", "a\tb", "perf", "plan", "multirun",
              "architectures.json", "x" * 101)]
    names += [
        Probe("evaluation name '..'", "names", ["eval", "model=nosuch", "eval.name=.."], "eval.name="),
        Probe("evaluation name a/b", "names", ["eval", "model=nosuch", "eval.name=a/b"], "eval.name="),
        Probe("blank evaluation name", "names", ["eval", "model=nosuch", "eval.name=' '"], "eval.name="),
        Probe("paper run '..'", "names", ["paper", "paper.runs=[..]"], "paper.runs="),
        Probe("paper run absolute", "names", ["paper", "paper.runs=[/tmp/x]"], "paper.runs="),
        Probe("extra paper run 'published'", "names", ["paper", "paper.extra_runs=[published]"], "paper.extra_runs="),
        Probe("seed run outside results", "names", ["compare", "compare.seed_runs=[../x]"], "compare.seed_runs="),
    ]
    models = [
        Probe("config with an auto_map", "models", ["eval", f"model={inputs / 'config_auto_map'}"], "auto_map"),
        Probe("generate with an auto_map", "models", ["generate", f"model={inputs / 'config_auto_map'}", "prompt=x"],
              "auto_map"),
        Probe("init_from with an auto_map", "models", [f"stages.stage1.init_from={inputs / 'config_auto_map'}",
                                                       "tokenizer=pretrained", "tokenizer.vocab_size=50257",
                                                       f"tokenizer.name_or_path={model}", "model=rugpt3_small"],
              "auto_map"),
        Probe("config without a model type", "models", ["eval", f"model={inputs / 'no_type'}"], "model_type None"),
        Probe("config without a context", "models", ["eval", f"model={inputs / 'no_context'}"], "no context length"),
        Probe("weights as model.pt", "models", ["eval", f"model={inputs / 'weights_pt'}"], "model.pt"),
        Probe("weights as a pickle", "models", ["eval", f"model={inputs / 'weights_pkl'}"], "weights.pkl"),
        Probe("weights truncated", "models", ["eval", f"model={inputs / 'truncated'}"], "not a readable safetensors"),
        Probe("folder without config.json", "models", ["eval", f"model={inputs / 'no_config'}"], "no config.json"),
        Probe("config.json not JSON", "models", ["eval", f"model={inputs / 'bad_config'}"], "not readable JSON"),
        Probe("publish a folder that is no export", "models", ["publish", f"model={model}", "repo_id=a/b"], SUMS),
        Probe("publish without a model card", "models", ["publish", f"model={inputs / 'no_card'}", "repo_id=a/b"],
              "no model card"),
        Probe("publish to a bad repository id", "models", ["publish", f"model={inputs / 'export'}",
                                                           "repo_id=not_a_repo"], "not a Hub repository id"),
        Probe("publish a missing folder", "models", ["publish", "model=/nonexistent/x", "repo_id=a/b"],
              "no such folder"),
    ]
    values = [Probe(f"{key}={value}", "values", [f"{key}={value}"], key) for key, value in (
        ("seed", "abc"), ("eval.generate.seed", "-5"), ("stages.stage1.data_seed", "4294967296"),
        ("data.split_seed", "99999999999"), ("stages.stage1.optim.lr", "inf"), ("stages.stage1.optim.lr", "nan"),
        ("stages.stage1.optim.eps", "0"), ("stages.stage1.optim.min_lr", "nan"), ("stages.stage1.optim.betas",
                                                                                 "[nan,0.9]"),
        ("stages.stage1.optim.grad_clip", "inf"), ("stages.stage1.epochs", "inf"), ("stages.stage1.epochs", "nan"),
        ("data.validation_fraction", "nan"), ("data.sources.ruslit.weight", "inf"),
        ("data.sources.ruslit.weight", "-1"), ("data.print_every_s", "inf"), ("model.resid_pdrop", "nan"),
        ("model.layer_norm_epsilon", "inf"), ("model.initializer_range", "0"), ("eval.generate.top_p", "nan"),
        ("eval.generate.top_p", "0"), ("eval.generate.top_k", "-1"), ("eval.generate.max_new_tokens", "0"),
        ("eval.generate.num_samples", "0"), ("eval.generate.temperature", "-0.5"), ("eval.perplexity.stride", "-4"),
        ("eval.perplexity.batch_size", "0"), ("eval.batch_size", "-1"), ("eval.num_fewshot", "-2"),
        ("trainer.precision", "16-true"), ("trainer.precision", "16"), ("trainer.devices", "-1"),
        ("trainer.num_nodes", "0"), ("trainer.loss_chunk_tokens", "-5"), ("stages.stage2.keep_checkpoints", "-1"),
        ("stages.stage1.validation_windows", "0"), ("compare.sigmas", "0"), ("compare.sigmas", "nan"),
        ("contamination.n", "0"), ("contamination.min_tokens", "0"), ("eval.generate.max_new_tokens", "250"))]
    values += [
        Probe("greedy with three samples", "values", ["eval.generate.temperature=0", "eval.generate.num_samples=3"],
              "eval.generate.num_samples=3"),
        Probe("four nodes without a launcher", "values", ["trainer.num_nodes=4", "stages.stage1.batch_size=32",
                                                          "stages.stage2.batch_size=32"], "trainer.num_nodes=4"),
        Probe("plan MFU nan", "values", ["plan", "experiment=rugpt3_large_paper", "plan.mfu=nan"], "plan.mfu"),
        Probe("plan of a model without published compute", "values", ["plan", "experiment=rugpt3_large_paper",
                                                                      "plan.published=huge"], "plan.published"),
    ]
    hydra = [Probe(name, "hydra", args, words) for name, args, words in (
        ("--cfg without a value", ["--cfg"], "--cfg needs a value"),
        ("--package without a value", ["--package"], "--package needs a value"),
        ("unknown short flag", ["-x"], "unknown flag -x"),
        ("unknown long flag with a value", ["--nothing=1"], "unknown flag --nothing"),
        ("empty seed", ["seed="], "seed"),
        ("unbalanced bracket", ["eval.stages=[stage1"], "eval.stages"),
        ("Cyrillic run name unquoted", ["run_name=тест"], "quote a value"),
        ("Cyrillic prompts with a space", ["eval.generate.prompts=[Привет мир]"], "quote a value"),
        ("appending an existing key", ["+seed=1"], "seed"),
        ("unknown data group", ["data=nosuch"], "data/nosuch"),
        ("unknown trainer group", ["trainer=gpux"], "trainer/gpux"),
        ("unknown experiment", ["experiment=nosuch"], "experiment/nosuch"),
        ("a sweep with one bad seed", ["-m", "seed=1,-1", "run_name=s${seed}"], "seed=-1"),
        ("--cfg job with a bad type", ["train", "--cfg", "job", "stages.stage1.epochs=abc"], "stages.stage1.epochs"),
        ("compare of a run without results", ["compare", "run_name=nothing_here"], "run_name=nothing_here"))]
    eval_inputs = [
        Probe("only an empty text", "eval inputs", ["eval", f"model={model}",
                                                    f"eval.perplexity.texts=[{inputs / 'texts' / 'empty.txt'}]"],
              "no file holds text"),
        Probe("only a Latin-1 text", "eval inputs", ["eval", f"model={model}",
                                                     f"eval.perplexity.texts=[{inputs / 'texts' / 'latin1.txt'}]"],
              "no file holds text"),
        Probe("a folder as texts", "eval inputs", ["eval", f"model={model}",
                                                   f"eval.perplexity.texts=[{inputs / 'texts'}]"], "matches no file"),
        Probe("no tasks of the suite", "eval inputs", ["eval", f"model={model}", "eval.tasks=[]"], "eval.tasks"),
        Probe("CUDA device 1", "eval inputs", ["eval", f"model={model}", "eval.device=cuda:1"], "eval.device=cuda:1"),
        Probe("an int8 dtype", "eval inputs", ["eval", f"model={model}", "eval.dtype=int8"], "eval.dtype"),
        Probe("the unk prefix", "eval inputs", ["eval", f"model={model}", "eval.prefix_token=unk"], "prefix_token"),
        Probe("a negative limit", "eval inputs", ["eval", f"model={model}", "eval.limit=-3"], "eval.limit"),
    ]
    paper = [Probe(name, "paper", ["paper", f"paths.results={papers}", f"paper.runs=[{run}]",
                                   f"paths.paper={papers.parent / 'paper_out'}"], words) for name, run, words in (
        ("perplexity rows as an object", "rows_object", "field perplexity is dict, not a list"),
        ("a loss that is text", "loss_text", "field train[0].loss is 'x'"),
        ("summary not UTF-8", "not_utf8", "unreadable"),
        ("contamination share as text", "share_text", "field sets.parus.share is 'abc'"),
        ("context as a string in the summary", "context_text", "field perplexity[1].context is '256'"))]
    return names + models + values + hydra + eval_inputs + paper


def _micro(root: Path) -> list[str]:
    """A micro run (prepared and trained) to damage."""
    args = micro_overrides(root)
    for command in ("prepare", "train"):
        subprocess.run([REPRODUCE, command, *args], cwd=root, check=True, capture_output=True, timeout=900,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return args


def fault_probes(root: Path, args: list[str]) -> list[Probe]:
    """Damaged files of the micro run and a held lock: each one line, or a recovery that loses nothing."""
    runs, results = root / "runs" / "micro", root / "results" / "micro"
    prepared = Path(json.loads((runs / "prepared.json").read_text())["folder"])
    models = {p: p.read_bytes() for p in sorted((runs / "models").rglob("model.safetensors"))}

    def same_models(_: Path) -> bool:
        return all(p.is_file() for p in models) and {p: p.read_bytes() for p in models} == models

    def damaged(path: Path, data: bytes) -> tuple[Callable[[Path], None], Callable[[Path], bool]]:
        """Write ``data`` over ``path``; afterwards put the file back and check that nothing else was lost."""
        kept = path.read_bytes()

        def restore(_: Path) -> bool:
            path.write_bytes(kept)
            return all((results / name).is_file() for name in ("data.json", "train.json")) and same_models(_)
        return (lambda _: path.write_bytes(data)), restore

    shard = next(iter(sorted(prepared.rglob("shard-*.bin"))))
    sidecar = next(iter(sorted((runs / "checkpoints" / "stage2").glob("*.sha256"))))
    sidecar_text = sidecar.read_text(encoding="utf-8")

    def unverified_kept(_: Path) -> bool:
        """The unverified checkpoint is refused but kept; its checksum is put back for the cases after."""
        kept = sidecar.with_suffix("").is_file()
        sidecar.write_text(sidecar_text, encoding="utf-8")
        return kept

    cases = [("prepared manifest.json damaged", prepared / "manifest.json", b"{", "delete the folder and run"),
             ("a token shard truncated", shard, b"RUGPT3TK", "delete the folder and run"),
             ("prepared.json damaged", runs / "prepared.json", b"[", "prepared.json: unreadable"),
             ("config record that is a list", results / "config.yaml", b"- a\n- b\n", "unreadable config record")]
    probes = []
    for name, path, data, words in cases:
        setup, check = damaged(path, data)
        probes.append(Probe(name, "faults", ["train", *args], words, setup=setup, check=check))
    return probes + [
        Probe("checkpoint without its checksum, export gone", "faults", ["train", *args], "every checkpoint in",
              setup=lambda _: (sidecar.unlink(), shutil.rmtree(runs / "models" / "stage2")), check=unverified_kept),
        Probe("export without SHA256SUMS", "faults", ["train", *args], "is not intact", code=0,
              setup=lambda _: (runs / "models" / "stage1" / SUMS).unlink(), check=same_models),
        Probe("stale lock file of another host", "faults", ["train", *args], "trained before", code=0,
              setup=lambda _: (runs / ".lock").write_text('{"pid": 1, "host": "elsewhere"}'), check=same_models),
    ]


def run_probe(probe: Probe, cwd: Path, also_allowed: tuple[str, ...] = ()) -> tuple[str, str, float]:
    """(verdict, the line or the reason, seconds); ``also_allowed``: folders beside ``cwd`` (relative to its parent)
    the command may write new files into (a user's own folder that a link under ``cwd`` points at)."""
    if probe.setup:
        probe.setup(cwd)
    before, around = _files(cwd), _files(cwd.parent)
    started = time.perf_counter()
    try:
        out = subprocess.run([REPRODUCE, *probe.args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT_S,
                             env={**os.environ, "HF_HUB_OFFLINE": "1", **dict(probe.env)})
    except subprocess.TimeoutExpired:
        return "hang", f"over {TIMEOUT_S} s", TIMEOUT_S
    seconds = time.perf_counter() - started
    lines = out.stderr.strip().splitlines()
    if "Traceback" in out.stderr:
        return "traceback", lines[-1] if lines else "", seconds
    allowed = tuple(f"{cwd.name}/{root}/" for root in ("results", "runs", "prepared", "papers", "inputs")) + \
        tuple(f"{folder.rstrip('/')}/" for folder in also_allowed)
    outside = [p for p in _files(cwd.parent) if p not in around and not p.startswith(allowed)]
    if outside:
        return "security", f"wrote {outside[0]}", seconds
    if probe.check is not None and not probe.check(cwd):
        return "data loss", "what the run had is gone or changed", seconds
    if out.returncode != probe.code:
        return "unclear", f"exit {out.returncode}: {(lines or [''])[-1][:160]}", seconds
    if probe.code == 2:
        line = lines[0] if len(lines) == 1 else ""
        if not line.startswith("error: ") or probe.words not in line:
            return "unclear", " | ".join(lines)[:200], seconds
        if probe.kind != "faults" and _files(cwd) != before:
            return "unclear", "wrote files before failing", seconds
        return "clean", line, seconds
    return ("clean", probe.words, seconds) if probe.words in out.stdout + out.stderr else \
        ("unclear", f"no {probe.words!r} in the output", seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="default results/perf/probe.json (--smoke: a "
                        "temporary file)")
    parser.add_argument("--smoke", action="store_true", help="one case of each class but the faults")
    args = parser.parse_args()
    out_path = (args.out or (Path(tempfile.gettempdir()) / "probe_smoke.json" if args.smoke
                             else Path("results/perf/probe.json"))).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp) / "work"
        shutil.copytree(SOURCE_ROOT / "results" / "published", cwd / "results" / "published")
        _model_folders(cwd / "inputs")
        papers = cwd / "papers" / "results"
        shutil.copytree(SOURCE_ROOT / "results" / "published", papers / "published")
        shutil.copy(SOURCE_ROOT / "results" / "architectures.json", papers / "architectures.json")
        _results(papers, "rows_object", lambda s: s.update(perplexity={"stage": "x"}))
        _results(papers, "loss_text", lambda c: c["train"][0].update(loss="x"), file="curves.json")
        _results(papers, "not_utf8", raw=b"\xff\xfe{")
        _results(papers, "share_text", lambda c: c["sets"]["parus"].update(share="abc"), file="contamination.json")
        _results(papers, "context_text", lambda s: s["perplexity"][1].update(context="256"))
        probes = config_probes(cwd / "inputs", papers)
        if args.smoke:
            probes = [next(p for p in probes if p.kind == kind) for kind in dict.fromkeys(p.kind for p in probes)]
        else:
            probes += fault_probes(cwd, _micro(cwd))
        rows = []
        for probe in probes:
            verdict, detail, seconds = run_probe(probe, cwd)
            rows.append({"name": probe.name, "class": probe.kind, "verdict": verdict, "seconds": round(seconds, 2),
                         "detail": detail})
            print(f"{verdict:10} {seconds:6.2f} s  [{probe.kind}] {probe.name}: {detail[:140]}", flush=True)
    counts = Counter(r["verdict"] for r in rows)
    clean = counts["clean"] / len(rows)
    ok = clean == 1 if args.smoke else (
        len(rows) >= 100 and clean >= 0.95 and not any(counts[v] for v in ("security", "data loss", "hang")))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps({"cases": len(rows), "verdicts": dict(counts), "clean_share": clean,
                                    "slowest_refusal_s": max(r["seconds"] for r in rows if r["class"] != "faults"),
                                    "rows": rows}, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(rows)} cases: {dict(counts)}; clean {clean:.1%} (floor 95%, no security, data loss or hang) "
          f"[{'ok' if ok else 'MISSED'}]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
