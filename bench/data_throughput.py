"""Data preparation floors, measured side by side in one run on all of RusLit with the released ruGPT-3 tokenizer.

1. Tokenization throughput of `reproduce prepare` (its tokenize pass: documents read, cleaned, tokenized by the worker
   processes and written to shards) over `tokenizers`' own `encode_batch` on the same cleaned documents with the same
   number of threads. Floor: 0.8.
2. Peak resident memory of `prepare` (the process and its workers, summed, sampled every 50 ms) on RusLit and on RusLit
   four times (four sources over the same manifest). Floors: under 1.5 GB, growth at most 1.2x.
3. The training loader: packed windows of context + 1 tokens from the prepared shards, in the stage's (seed, epoch)
   order, through a DataLoader in one process. Floor: 2M tokens/s.

Usage: python bench/data_throughput.py [--out results/perf/data_throughput.json]; ratios are printed last.
    python bench/data_throughput.py --smoke   # the micro corpus (manifests/ruslit_micro.tsv), x2 instead of x4,
                                              # short windows: seconds; floors not judged; written to a temporary file
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import psutil  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from reproduce.config.compose import compose_config  # noqa: E402
from reproduce.core.io import read_json, write_json  # noqa: E402
from reproduce.core.meta import package_metadata  # noqa: E402
from reproduce.core.paths import config_file  # noqa: E402
from reproduce.data.corpus import to_text  # noqa: E402
from reproduce.data.manifest import make_resolver, read_manifest  # noqa: E402
from reproduce.data.parallel import worker_count  # noqa: E402
from reproduce.data.prepared_set import load_prepared  # noqa: E402
from reproduce.data.records import Record  # noqa: E402
from reproduce.data.sequences import PackedSequences, StageOrder  # noqa: E402
from reproduce.data.sources import open_source  # noqa: E402
from reproduce.data.tokenizer import load_bpe_files  # noqa: E402

SHARD_TOKENS = 1 << 22  # several shards per split, so the loader crosses shard boundaries
SMOKE = ["data.sources.ruslit.manifest=manifests/ruslit_micro.tsv"]  # the micro recipe's corpus


def prepare(tmp: Path, copies: int, workers: int, data: list[str], shard_tokens: int) -> tuple[dict, float]:
    """`reproduce prepare` in a subprocess on the corpus (RusLit, or ``data``'s) ``copies`` times; its data.json and
    peak tree RSS (bytes)."""
    manifest = compose_config("reproduce", data).data.sources["ruslit"].manifest
    extra = [f"+data.sources.copy{i}={{kind: manifest, manifest: {manifest}, clean: ruslit}}"
             for i in range(2, copies + 1)]
    command = [sys.executable, "-m", "reproduce.cli", "prepare", "tokenizer=rugpt3", f"data.workers={workers}",
               f"data.shard_tokens={shard_tokens}", f"run_name=x{copies}", f"paths.results={tmp / 'results'}",
               f"paths.runs={tmp / 'runs'}", f"paths.prepared={tmp / 'prepared'}", *data, *extra]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    if process.returncode != 0:
        raise SystemExit(f"prepare failed: {process.stderr.read()}")
    return read_json(tmp / "results" / f"x{copies}" / "data.json"), peak


def encode_batch_rates(data: list[str]) -> tuple[float, float]:
    """tokens/s of encode_batch, and of encode_batch_fast (no offsets: what prepare's workers call), over the cleaned
    documents of the corpus (made before the clock starts), with the threads RAYON_NUM_THREADS allows."""
    cfg = compose_config("reproduce", ["tokenizer=rugpt3", *data])
    resolver = make_resolver(cfg.data)
    source = cfg.data.sources["ruslit"]
    texts = [t for r in open_source("ruslit", source).records(resolver) if isinstance(r, Record)
             for t in [to_text(r, source.clean, cfg.data.max_line_chars).text] if t]
    files = {Path(e.path).name: resolver.resolve(e) for e in read_manifest(config_file(cfg.tokenizer.manifest))}
    backend = load_bpe_files(files["vocab.json"], files["merges.txt"]).backend_tokenizer
    rates = []
    for encode in (backend.encode_batch, backend.encode_batch_fast):
        started = time.perf_counter()
        tokens = sum(len(e.ids) + 1 for e in encode(texts, add_special_tokens=False))
        rates.append(tokens / (time.perf_counter() - started))
    return rates[0], rates[1]


def loader_rate(folder: Path, context: int = 2048, batch: int = 8, windows: int = 20_000) -> float:
    data = load_prepared(folder)
    train = PackedSequences(data.shards["train"], context)
    total = windows - windows % batch
    order = StageOrder(len(train), total, seed=1234, micro_batch=batch)
    started, seen = time.perf_counter(), 0
    for x in DataLoader(train, batch_size=batch, sampler=order, num_workers=0):
        seen += x.numel()
    return seen / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="default results/perf/data_throughput.json (--smoke: a temporary file)")
    parser.add_argument("--smoke", action="store_true", help="the micro corpus, x2, short windows: checks that it runs")
    args = parser.parse_args()
    out = args.out or (Path(tempfile.gettempdir()) / "data_throughput_smoke.json" if args.smoke
                       else ROOT / "results" / "perf" / "data_throughput.json")
    data, copies, shard_tokens = (SMOKE, 2, 1 << 14) if args.smoke else ([], 4, SHARD_TOKENS)
    workers = worker_count(None)
    os.environ["RAYON_NUM_THREADS"] = str(workers)  # encode_batch with as many threads as prepare has workers
    with tempfile.TemporaryDirectory() as tmp:
        one, peak1 = prepare(Path(tmp), 1, workers, data, shard_tokens)
        four, peak4 = prepare(Path(tmp), copies, workers, data, shard_tokens)
        reference, fast = encode_batch_rates(data)
        loader = loader_rate(Path(one["prepared"]["folder"]), *((64, 8, 512) if args.smoke else ()))
    package = one["prepared"]["tokenize_tokens_per_second"]
    many = f"{copies}x"
    rows = {
        "tokenize_ratio": package / reference, "tokenize_ratio_to_encode_batch_fast": package / fast,
        "prepare_tokens_per_second": package, "encode_batch_tokens_per_second": reference,
        "encode_batch_fast_tokens_per_second": fast, "threads": workers,
        "peak_rss_bytes_1x": peak1, f"peak_rss_bytes_{many}": peak4, f"rss_growth_{many}": peak4 / peak1,
        "tokens_1x": sum(s["tokens"] for s in one["split"].values()),
        f"tokens_{many}": sum(s["tokens"] for s in four["split"].values()),
        "prepare_seconds_1x": one["timings_s"], f"prepare_seconds_{many}": four["timings_s"],
        "loader_tokens_per_second": loader,
    }
    command = "python bench/data_throughput.py" + (" --smoke" if args.smoke else "")
    write_json(out, {"meta": {**package_metadata(), "cpu": platform.processor() or platform.machine()},
                     "command": command, **rows})
    print(json.dumps({k: v for k, v in rows.items() if not k.startswith("prepare_seconds")}, indent=1))
    print(f"tokenize ratio (prepare / encode_batch, {workers} threads): {rows['tokenize_ratio']:.2f} (floor 0.8); "
          f"against encode_batch_fast: {rows['tokenize_ratio_to_encode_batch_fast']:.2f}")
    print(f"peak RSS: {peak1 / 2**30:.2f} GiB on the corpus, {peak4 / 2**30:.2f} GiB on it x{copies} (floor 1.5 GB); "
          f"growth {rows[f'rss_growth_{many}']:.2f}x (floor 1.2x at x4)")
    print(f"loader: {loader / 1e6:.1f}M tokens/s (floor 2M); written {out}")

if __name__ == "__main__":
    main()
