"""A second, fresh probe (none of its cases is in bench/probe.py or tests/bad_settings.py): what a careless user and an
attacker on a shared machine would try. Symlinks planted where the package writes, FIFOs and devices where it
reads, partial model folders, huge and nested files, bad encodings, unwritable places, absurd resource settings,
Hydra's grammar and signals. Judged as bench/probe.py judges (clean, traceback, unclear, security, data loss, hang);
a planted link's target (a file of "another user" beside the work folder) must keep its bytes.

Runs against any checkout's console script: ``--reproduce /path/to/.venv/bin/reproduce`` (default: this one's).

    nice -n 19 python bench/probe_fresh.py [--out results/perf/probe_fresh.json] [--reproduce PATH]
    python bench/probe_fresh.py --smoke   # the first case of each class, to a temporary file
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import probe  # noqa: E402
from probe import Probe, _model_folders, _results  # noqa: E402

from reproduce.core.meta import package_metadata  # noqa: E402
from reproduce.core.paths import SOURCE_ROOT  # noqa: E402
from tests.helpers import micro_overrides  # noqa: E402

VICTIM = b"another user's file: must keep these bytes\n"


def _victims(work: Path) -> Path:
    """Files and a folder of "another user", beside the work folder (outside every root the package writes)."""
    victims = work.parent / "victim"
    shutil.rmtree(victims, ignore_errors=True)
    victims.mkdir()
    (victims / "file.txt").write_bytes(VICTIM)
    (victims / "folder").mkdir(exist_ok=True)
    (victims / "folder" / "keep.txt").write_bytes(VICTIM)
    return victims


def _intact(victims: Path) -> bool:
    """The target's own files keep their bytes (writing new files through a linked folder is what a user's own
    link asks for; truncating or replacing what was there is not)."""
    try:
        return all((victims / p).read_bytes() == VICTIM for p in ("file.txt", "folder/keep.txt"))
    except OSError:
        return False


def _plant(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.is_file():
        link.unlink()
    elif link.is_dir():
        shutil.rmtree(link)
    link.symlink_to(target)


def _prepared_lock(overrides: list[str]) -> Path:
    """The lock file ``prepare`` takes beside the prepared set these overrides make (``prepared/.<hash>.lock``)."""
    from reproduce.config.compose import compose_config
    from reproduce.data.prepared_set import prepared_folder

    folder = prepared_folder(compose_config("reproduce", overrides))
    return folder.parent / f".{folder.name}.lock"


def link_probes(work: Path, victims: Path) -> list[Probe]:
    """Links planted where the package writes: each command must refuse or write beside, never through them. Each
    case has a run of its own (and the prepared lock's a prepared set made afresh), so that it meets its link first."""
    results = work / "results"

    def micro(run: str, fresh: bool = False) -> list[str]:  # a run of its own (and a prepared set made afresh)
        return [*micro_overrides(work, run), *([f"paths.prepared={work / 'prepared' / run}"] if fresh else [])]

    _results(work / "papers" / "results", "linkrun")
    cases = [  # (name, the link, its target, the command)
        ("plan file linked to a user's file", results / "plan" / "planjson.json", victims / "file.txt",
         ["plan", "run_name=planjson", "plan.corpus_tokens=800000"]),
        ("plan markdown linked to a user's file", results / "plan" / "planmd.md", victims / "file.txt",
         ["plan", "run_name=planmd", "plan.corpus_tokens=800000"]),
        ("plan folder linked to a user's folder", results / "plan", victims / "folder",
         ["plan", "run_name=planlink", "plan.corpus_tokens=800000"]),
        ("paper folder linked to a user's folder", work / "paperlink", victims / "folder",
         ["paper", f"paths.results={work / 'papers' / 'results'}", "paper.runs=[linkrun]",
          f"paths.paper={work / 'paperlink'}"]),
        ("run lock linked to a user's file", work / "runs" / "lock" / ".lock", victims / "file.txt",
         ["prepare", *micro("lock")]),
        ("run log linked to a user's file", work / "runs" / "log" / "reproduce.log", victims / "file.txt",
         ["prepare", *micro("log")]),
        ("prepared lock linked to a user's file", _prepared_lock(micro("plock", True)), victims / "file.txt",
         ["prepare", *micro("plock", True)]),
        ("config record linked to a user's file", results / "record" / "config.yaml", victims / "file.txt",
         ["prepare", *micro("record")]),
        ("eval results folder linked to a user's folder", results / "eval" / "tiny", victims / "folder",
         ["eval", f"model={work / 'inputs' / 'model'}", "eval.name=tiny", "eval.tasks=[]",
          f"eval.perplexity.texts=[{work / 'inputs' / 'texts' / 'empty.txt'}]"]),
        ("verdict linked to a user's file", results / "linked" / "verdict.json", victims / "file.txt",
         ["compare", "run_name=linked", f"compare.reference={SOURCE_ROOT / 'results' / 'mini'}"]),
    ]
    probes = []
    for name, link, target, args in cases:
        def setup(_: Path, link: Path = link, target: Path = target, name: str = name) -> None:
            if "verdict" in name:
                shutil.copytree(SOURCE_ROOT / "results" / "mini", results / "linked", dirs_exist_ok=True)
            _plant(link, target)
        # either refused in one line naming the link, or done without touching the target: both are judged by the
        # victim's bytes; the words are the link's name. A user's own linked folder may be written through (new
        # files in its target), never emptied or its files replaced (docs/trust.md)
        probes.append(Probe(name, "links", args, link.name, code=-1, setup=setup,
                            check=lambda _: _intact(victims),
                            env=(("_THROUGH", "victim/folder"),) if target.name == "folder" else ()))
    for name, link in (("dangling run lock", work / "runs" / "dangling" / ".lock"),
                       ("link loop as the run log", work / "runs" / "loop" / "reproduce.log")):
        def setup(_: Path, link: Path = link, loop: bool = "loop" in name) -> None:
            _plant(link, link if loop else work / "nowhere")
        probes.append(Probe(name, "links", ["prepare", *micro(link.parent.name)], link.name, code=-1, setup=setup,
                            check=lambda _: _intact(victims)))
    return probes


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.mkfifo(path)
    return path


def file_probes(work: Path) -> list[Probe]:
    """FIFOs, devices, huge and nested files, bad encodings where the package reads."""
    inputs, papers = work / "inputs", work / "papers" / "results"
    odd = work / "inputs" / "odd"
    odd.mkdir(parents=True, exist_ok=True)
    (odd / "nested.json").write_text("[" * 200_000 + "]" * 200_000)
    with (odd / "huge.json").open("wb") as f:
        f.truncate(3 << 30)
    (odd / "stray.txt").write_bytes("Привет, мир. ".encode() * 50 + b"\xff" + "Пока.".encode())
    (odd / "bom.txt").write_bytes(b"\xef\xbb\xbf" + "Текст с меткой порядка байтов.\n".encode() * 20)
    (odd / "nul.txt").write_bytes(b"\x00" * 4096)
    manifest_fifo = _fifo(odd / "manifest.tsv")
    ref_fifo = _fifo(odd / "ref" / "summary.json")
    text_fifo = _fifo(odd / "text_fifo.txt")
    for name, content in (("ref_nested", odd / "nested.json"), ("ref_huge", odd / "huge.json")):
        (odd / name).mkdir(exist_ok=True)
        target = odd / name / "summary.json"
        if not target.exists():
            target.symlink_to(content)
    compare = ["compare", "run_name=mini", f"paths.results={work / 'results'}"]
    model = inputs / "model"
    prep = ["prepare", "run_name=fresh"]  # each case a run of its own (below): results/mini holds another config
    rows = [
        ("compare reference that is a FIFO", [*compare, f"compare.reference={ref_fifo.parent}"], "summary.json"),
        ("compare reference nested 200,000 deep", [*compare, f"compare.reference={odd / 'ref_nested'}"],
         "summary.json"),
        ("compare reference of 3 GB", [*compare, f"compare.reference={odd / 'ref_huge'}"], "summary.json"),
        ("manifest that is a FIFO", [*prep, f"data.sources.ruslit.manifest={manifest_fifo}"], "manifest"),
        ("manifest that is /dev/zero", [*prep, "data.sources.ruslit.manifest=/dev/zero"], "manifest"),
        ("manifest that is a folder", [*prep, f"data.sources.ruslit.manifest={odd}"], "manifest"),
        ("perplexity text that is a FIFO", ["eval", f"model={model}", f"eval.perplexity.texts=[{text_fifo}]"],
         "eval.perplexity.texts"),
        ("perplexity text /dev/zero", ["eval", f"model={model}", "eval.perplexity.texts=[/dev/zero]"],
         "eval.perplexity.texts"),
        ("perplexity text of NUL bytes", ["eval", f"model={model}", f"eval.perplexity.texts=[{odd / 'nul.txt'}]"],
         "eval.perplexity.texts"),
        ("text source that is a FIFO", [*prep, "data=text", f"data.sources.text.paths=[{text_fifo}]"],
         "text_fifo.txt"),
        ("text source /dev/zero", [*prep, "data=text", "data.sources.text.paths=[/dev/zero]"], "/dev/zero"),
        ("paper summary that is a FIFO", ["paper", f"paths.results={papers}", "paper.runs=[fifo_run]",
                                          f"paths.paper={work / 'paper_out'}"], "fifo_run"),
        ("paper summary nested deeply", ["paper", f"paths.results={papers}", "paper.runs=[nested_run]",
                                         f"paths.paper={work / 'paper_out'}"], "nested_run"),
        ("model config.json a FIFO", ["eval", f"model={inputs / 'fifo_config'}"], "config.json"),
        ("model config.json nested deeply", ["eval", f"model={inputs / 'nested_config'}"], "config.json"),
        ("model config.json a list", ["eval", f"model={inputs / 'list_config'}"], "config.json"),
        ("model weights /dev/zero", ["eval", f"model={inputs / 'zero_weights'}"], "model.safetensors"),
        ("model weights a FIFO", ["eval", f"model={inputs / 'fifo_weights'}"], "model.safetensors"),
        ("model folder that is a file", ["eval", f"model={odd / 'stray.txt'}"], "stray.txt"),
        ("model folder /dev", ["eval", "model=/dev"], "/dev"),
        ("generate prompt of bytes that are not UTF-8", ["generate", f"model={model}", "prompt=\udcff\udcfe"],
         "prompt"),
        ("run name with an RTL override", ["run_name=a\u202eb"], "run_name"),
        ("run name with a NUL", ["run_name=a\x00b" if False else "run_name='a\\x00b'"], "run_name"),
        ("eval name of Cyrillic homoglyphs of 'published'", ["eval", f"model={model}", "eval.name='рublished'",
                                                              "eval.tasks=[]"], "eval"),
    ]
    for name, folder_changes in (("fifo_config", "fifo"), ("nested_config", "nested"), ("list_config", "list"),
                                 ("zero_weights", "zero"), ("fifo_weights", "fifo_w")):
        folder = inputs / name
        if not folder.exists():
            shutil.copytree(model, folder)
            if folder_changes == "fifo":
                (folder / "config.json").unlink()
                os.mkfifo(folder / "config.json")
            elif folder_changes == "nested":
                (folder / "config.json").write_text("[" * 200_000 + "]" * 200_000)
            elif folder_changes == "list":
                (folder / "config.json").write_text("[1, 2]")
            elif folder_changes == "zero":
                (folder / "model.safetensors").unlink()
                (folder / "model.safetensors").symlink_to("/dev/zero")
            else:
                (folder / "model.safetensors").unlink()
                os.mkfifo(folder / "model.safetensors")
    if not (papers / "fifo_run").exists():
        _results(papers, "fifo_run")
        (papers / "fifo_run" / "summary.json").unlink()
        os.mkfifo(papers / "fifo_run" / "summary.json")
        _results(papers, "nested_run", raw=("[" * 200_000 + "]" * 200_000).encode())
    own = [(name, [f"run_name=fresh{i}" if a == "run_name=fresh" else a for a in args], words)
           for i, (name, args, words) in enumerate(rows)]
    return [Probe(name, "special files", args, words) for name, args, words in own]


def place_probes(work: Path) -> list[Probe]:
    """Unwritable or impossible places, missing folders the package is pointed at."""
    a_file = work / "inputs" / "a_file"
    a_file.write_text("x")
    rows = [
        ("cache under a file", ["prepare", f"data.cache_dir={a_file / 'cache'}"], "data.cache_dir"),
        ("results under a file", ["plan", f"paths.results={a_file / 'results'}"], "paths.results"),
        ("runs under a file", ["prepare", f"paths.runs={a_file / 'runs'}"], "paths.runs"),
        ("prepared under a file", ["prepare", f"paths.prepared={a_file / 'prepared'}"], "paths.prepared"),
        ("results in /proc", ["plan", "paths.results=/proc/results"], "paths.results"),
        ("results on /dev/full", ["plan", "paths.results=/dev/full"], "paths.results"),
        ("runs in /sys", ["prepare", "paths.runs=/sys/runs"], "paths.runs"),
    ]
    env_rows = [
        ("tasks folder missing", ["eval", f"model={work / 'inputs' / 'model'}"], "REPRODUCE_TASKS_DIR",
         (("REPRODUCE_TASKS_DIR", str(work / "nowhere")),)),
        ("tasks folder is a file", ["eval", f"model={work / 'inputs' / 'model'}"], "REPRODUCE_TASKS_DIR",
         (("REPRODUCE_TASKS_DIR", str(a_file)),)),
        ("tasks folder empty", ["eval", f"model={work / 'inputs' / 'model'}"], "REPRODUCE_TASKS_DIR",
         (("REPRODUCE_TASKS_DIR", str(work / "inputs")),)),
        ("HOME under a file", ["prepare", *[o for o in micro_overrides(work) if "cache_dir" not in o],
                               "data.cache_dir='~/cache'"], "data.cache_dir", (("HOME", str(a_file / "home")),)),
    ]
    return [Probe(n, "places", a, w) for n, a, w in rows] + [Probe(n, "places", a, w, env=e) for n, a, w, e in
                                                             env_rows]


def value_probes(work: Path) -> list[Probe]:
    """Absurd resource settings and Hydra's grammar, on `prepare` of the micro recipe (a value wrongly accepted
    prepares it in seconds: judged unclear, not a hang)."""
    def micro(i: int) -> list[str]:  # a run of its own: an earlier case's results hold another config
        return ["prepare", *micro_overrides(work, f"value{i}")]
    absurd = [("data.workers", "100000"), ("data.workers", "-3"), ("eval.batch_size", "1000000000"),
              ("stages.stage1.batch_size", "1000000000000"), ("stages.stage1.micro_batch_size", "0"),
              ("trainer.devices", "100000"), ("trainer.num_nodes", "1000000"), ("data.shard_tokens", "-1"),
              ("data.max_line_chars", "0"), ("eval.perplexity.max_tokens", "-1"), ("compare.sigmas", "1e308"),
              ("model.n_layer", "0"), ("model.n_head", "7"), ("model.n_positions", "-8"),
              ("model.vocab_size", "1"), ("stages.stage1.context", "0"), ("stages.stage1.context", "1000000000"),
              ("tokenizer.vocab_size", "70000"), ("eval.generate.max_new_tokens", "100000000"),
              ("stages.stage1.optim.warmup_fraction", "2"), ("data.validation_fraction", "1"),
              ("eval.num_fewshot", "100000"), ("stages.stage1.keep_checkpoints", "0"), ("eval.limit", "-0.5"),
              ("eval.perplexity.stride", "0"), ("stages.stage2.epochs", "1e9"), ("data.print_every_s", "-1"),
              ("stages.stage1.validate_every_steps", "0"), ("eval.perplexity.batch_size", "100000000"),
              ("stages.stage1.optim.weight_decay", "-1"), ("stages.stage1.optim.lr", "1e10"),
              ("contamination.n", "100000"), ("trainer.accumulate_grad_batches", "0")]
    grammar = [("run name from an environment variable", ["run_name=${oc.env:HOME}"], "run_name"),
               ("run name interpolating itself", ["run_name=${run_name}"], "run_name"),
               ("seed interpolating a missing key", ["seed=${nosuch}"], "seed"),
               ("hydra run dir to /etc", ["plan", "hydra.run.dir=/etc"], ""),
               ("--config-dir to /tmp", ["--config-dir=/tmp"], "--config-dir"),
               ("--config-path given", ["--config-path", "/tmp"], "--config-path"),
               ("-cd given", ["-cd", "/tmp"], "-cd"),
               ("deleting the paths", ["~paths"], "paths"),
               ("paths set to null", ["paths=null"], "paths"),
               ("a source reading /etc/shadow", ["+data.sources.evil={kind: text, paths: [/etc/shadow]}"],
                "data.sources"),
               ("the sources emptied", ["data.sources={}"], "data.sources"),
               ("a sweep of a thousand seeds without a name", ["-m", "seed=range(0,1000)"], "run_name"),
               ("a key of a quoted dot", ["'stages.stage1'.epochs=1"], "stages.stage1"),
               ("an override that is only '='", ["="], "="),
               ("an override of a surrogate key", ["\udcff=1"], "\\udcff"),
               ("a value of a NUL byte quoted", ["run_name='\x01'"], "run_name")]
    return [Probe(f"{k}={v}", "values", [*micro(i), f"{k}={v}"], k) for i, (k, v) in enumerate(absurd)] + \
        [Probe(n, "hydra", a, w, code=0 if n.startswith("hydra run dir") else 2) for n, a, w in grammar]


def signal_probes(work: Path) -> list[Probe]:
    """SIGINT and SIGTERM to commands that are no training: one line, exit 130/143 (or done before it came)."""
    def prepare(run: str) -> list[str]:  # a run and a prepared folder of its own: the signal comes while it prepares
        return ["prepare", *micro_overrides(work, run), f"paths.prepared={work / 'prepared' / run}", "data.workers=2"]

    _results(work / "papers" / "results", "sigrun")
    return [Probe(f"{signal.Signals(s).name} to {' '.join(a[:1])}", "signals", a, "stopped", code=128 + s,
                  env=(("_SIGNAL", str(s)), ("_AFTER", str(after)))) for s, a, after in (
        (signal.SIGINT, prepare("sigint"), 6.0),
        (signal.SIGTERM, prepare("sigterm"), 8.0),
        (signal.SIGINT, ["eval", f"model={work / 'inputs' / 'model'}", "eval.limit=2",
                         "eval.tasks=[parus_crowd_majority]"], 8.0),
        (signal.SIGTERM, ["plan"], 1.5),
        (signal.SIGINT, ["paper", f"paths.results={work / 'papers' / 'results'}", "paper.runs=[sigrun]",
                         f"paths.paper={work / 'paper_sig'}"], 1.5))]


def run_case(p: Probe, cwd: Path, reproduce: str) -> tuple[str, str, float]:
    """bench/probe.py's judgement; links (code -1): exit 0 or 2 are both fine as long as the victim is intact and
    a refusal is one line; signals: sent by this process after the entry took them."""
    env = dict(p.env)
    if "_SIGNAL" in env:
        from tests.helpers import signalled

        if p.setup:
            p.setup(cwd)
        out, seconds = signalled(p.args, cwd, int(env["_SIGNAL"]), float(env["_AFTER"]))
        text = out.stdout + out.stderr
        if "Traceback" in text:
            return "traceback", out.stderr.strip().splitlines()[-1:][0] if out.stderr.strip() else "", seconds
        lines = out.stderr.strip().splitlines()
        if out.returncode == 0 or (out.returncode == p.code and len(lines) == 1 and lines[0].startswith("stopped")):
            return "clean", (lines or ["finished before the signal"])[0], seconds
        return "unclear", f"exit {out.returncode}: {' | '.join(lines)[:200]}", seconds
    if p.code == -1:
        through = tuple(v for k, v in p.env if k == "_THROUGH")
        for code in (0, 2):
            verdict, detail, seconds = probe.run_probe(Probe(p.name, p.kind, p.args, p.words if code == 2 else "",
                                                             code, p.setup, p.check, p.env), cwd, through)
            if verdict != "unclear" or not detail.startswith("exit "):
                return verdict, detail, seconds
            p = Probe(p.name, p.kind, p.args, p.words, p.code, None, p.check, p.env)  # set up once
        return verdict, detail, seconds
    return probe.run_probe(p, cwd)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--reproduce", default=probe.REPRODUCE, help="the console script of the checkout to probe")
    parser.add_argument("--smoke", action="store_true", help="the first case of each class")
    parser.add_argument("--only", action="append", default=[],
                        help="only the cases whose name holds this text (repeatable; a partial run)")
    args = parser.parse_args()
    run = {"reproduce": args.reproduce, "command": " ".join(["python", "bench/probe_fresh.py", *sys.argv[1:]]),
           "meta": package_metadata(), "started": time.perf_counter()}
    probe.REPRODUCE = args.reproduce
    out_path = (args.out or (Path(tempfile.gettempdir()) / "probe_fresh_smoke.json" if args.smoke
                             else Path("results/perf/probe_fresh.json"))).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp) / "work"
        shutil.copytree(SOURCE_ROOT / "results" / "published", cwd / "results" / "published")
        shutil.copytree(SOURCE_ROOT / "results" / "mini", cwd / "results" / "mini")
        _model_folders(cwd / "inputs")
        papers = cwd / "papers" / "results"
        shutil.copytree(SOURCE_ROOT / "results" / "published", papers / "published")
        shutil.copy(SOURCE_ROOT / "results" / "architectures.json", papers / "architectures.json")
        victims = _victims(cwd)
        # the micro recipe prepared once, untimed: a value wrongly accepted then costs seconds, not a preparation that
        # a loaded machine could stretch past the hang's bound (the cases that prepare afresh name their own folder)
        if not args.smoke:
            subprocess.run([args.reproduce, "prepare", *micro_overrides(cwd, "warmup")], cwd=cwd, capture_output=True,
                           timeout=1800, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        # the cheap refusals first, so that a run cut short still covers the most classes
        probes = value_probes(cwd) + file_probes(cwd) + place_probes(cwd) + link_probes(cwd, victims)
        probes += signal_probes(cwd)
        if args.smoke:
            probes = [next(p for p in probes if p.kind == kind) for kind in ("special files", "values", "hydra")]
        if args.only:
            probes = [p for p in probes if any(text in p.name for text in args.only)]
        rows = []
        for p in probes:
            verdict, detail, seconds = run_case(p, cwd, args.reproduce)
            if not _intact(victims):
                verdict, detail = "security", "a planted link's target changed"
                _victims(cwd)
            rows.append({"name": p.name, "class": p.kind, "verdict": verdict, "seconds": round(seconds, 2),
                         "detail": detail})
            print(f"{verdict:10} {seconds:6.2f} s  [{p.kind}] {p.name}: {detail[:140]}", flush=True)
            record(out_path, run, rows, len(probes))  # as it goes: an interrupted run keeps what it found
    return record(out_path, run, rows, len(probes), args.smoke or bool(args.only))


def record(out_path: Path, run: dict, rows: list[dict], planned: int, smoke: bool | None = None) -> int:
    """Write the probe's file (``smoke`` None: a run still going); the exit code against the floor."""
    counts = Counter(r["verdict"] for r in rows)
    clean = counts["clean"] / len(rows)
    ok = clean == 1 if smoke else (
        len(rows) >= 100 and clean >= 0.95 and not any(counts[v] for v in ("security", "data loss", "hang")))
    failing = Counter(f"{r['class']}: {r['verdict']}" for r in rows if r["verdict"] != "clean")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    result = {"date": time.strftime("%Y-%m-%d", time.gmtime()), "reproduce": run["reproduce"],
              "command": run["command"], "meta": run["meta"], "seconds": round(time.perf_counter() - run["started"], 1),
              "complete": smoke is not None, "planned": planned, "cases": len(rows), "verdicts": dict(counts),
              "clean_share": clean, "failures_by_class": dict(failing), "rows": rows}
    out_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if smoke is not None:
        print(f"{len(rows)} cases: {dict(counts)}; clean {clean:.1%} (floor 95%, no security, data loss or hang) "
              f"[{'ok' if ok else 'MISSED'}]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
