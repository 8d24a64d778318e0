"""What verifying a prepared set costs, against the mini run's training time, measured side by side in one process.

Every load of a prepared set (``load_prepared``: training, scoring) checks each shard's size and header against
``manifest.json`` and its tokens' sha256 against the one the manifest records. This times that load of shards of the
mini run's sizes (results/mini/data.json: tokens per split; conf shard size), with and without the sha256 pass, and
the mini model's training speed on the same machine right after (the hand-written loop of bench/train_throughput.py,
stage 1's context and batch); the mini run's training time is its tokens (results/mini/train.json) at that speed,
and the committed run's own training seconds are given beside it (a loaded machine slows the short timed loop more
than the hashing).
Floor: verification at most 5% of the training time.

    python bench/prepared_verify.py [--steps 30] [--out results/perf/prepared_verify.json]
    python bench/prepared_verify.py --smoke   # the micro model and a micro-sized set, 3 steps: seconds; floor not
                                              # judged; written to a temporary file
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import numpy as np  # noqa: E402
from train_throughput import bare_loop  # noqa: E402  (silences progress bars before the libraries load)

from reproduce.config.compose import compose_config  # noqa: E402
from reproduce.core.io import read_json, write_json  # noqa: E402
from reproduce.core.meta import cpu_model, package_metadata  # noqa: E402
from reproduce.data.prepared_set import PreparedData  # noqa: E402
from reproduce.data.shards import ShardedTokens, shard_header, write_shard  # noqa: E402
from reproduce.data.tokenizer import train_bbpe  # noqa: E402

FLOOR = 0.05
VOCAB = 4096  # the mini recipe's vocabulary


def make_set(folder: Path, split_tokens: dict[str, int], shard_tokens: int) -> dict[str, list]:
    """Shards of random ids of the given sizes; per split: (files, (tokens, sha256) as the manifest records)."""
    rng, made = np.random.default_rng(0), {}
    for split, count in split_tokens.items():
        files = []
        for k, start in enumerate(range(0, count, shard_tokens)):
            path = folder / split / f"shard-{k:05d}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_shard(path, rng.integers(0, VOCAB, min(shard_tokens, count - start), dtype=np.uint16), VOCAB)
            files.append(path)
        made[split] = (files, [shard_header(p) for p in files])
    return made


def load_seconds(made: dict[str, list], verify: bool, rounds: int) -> float:
    """The fastest of ``rounds`` loads of every split's shards, as ``load_prepared`` does them."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for files, expected in made.values():
            ShardedTokens(files, VOCAB, verify, expected)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="timed training steps (default 30; --smoke: 3)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default results/perf/prepared_verify.json (--smoke: a temporary file)")
    parser.add_argument("--smoke", action="store_true", help="micro sizes: checks that it runs")
    args = parser.parse_args()
    steps = args.steps or (3 if args.smoke else 30)
    out = args.out or (Path(tempfile.gettempdir()) / "prepared_verify_smoke.json" if args.smoke
                       else ROOT / "results" / "perf" / "prepared_verify.json")
    base = ["experiment=micro"] if args.smoke else []
    cfg = compose_config("reproduce", [*base, f"model.vocab_size={VOCAB}"])
    mini_data, mini_train = (read_json(ROOT / "results" / "mini" / f"{n}.json") for n in ("data", "train"))
    split_tokens = {s: (v["tokens"] // 100 if args.smoke else v["tokens"]) for s, v in mini_data["split"].items()}
    train_tokens = sum(s["tokens"] for s in mini_train["stages"].values())
    with tempfile.TemporaryDirectory() as tmp:
        made = make_set(Path(tmp), split_tokens, cfg.data.shard_tokens)
        with_sha = load_seconds(made, True, 3)
        headers_only = load_seconds(made, False, 3)
        tokenizer = train_bbpe(["Мороз и солнце; день чудесный!"] * 50, vocab_size=300, min_frequency=1)
        train = ShardedTokens(*made["train"][:1])[:]
        data = PreparedData(Path(tmp), tokenizer, {"train": train}, {})
        rate = bare_loop(cfg, data, cfg.trainer.precision, steps)
    training_s = train_tokens / rate
    ratio = with_sha / training_s
    result = {
        "machine": cpu_model(), "date": time.strftime("%Y-%m-%d"), "smoke": args.smoke,
        "command": " ".join(["python", "bench/prepared_verify.py", *sys.argv[1:]]),
        "split_tokens": split_tokens, "shard_tokens": cfg.data.shard_tokens,
        "load_with_sha256_s": with_sha, "load_headers_only_s": headers_only,
        "training_tokens_per_second": rate, "training_steps_timed": steps, "mini_training_tokens": train_tokens,
        "mini_training_s_at_this_rate": training_s,
        "mini_training_s_committed": sum(s["seconds"] for s in mini_train["stages"].values()),
        "verify_over_training": ratio, "floor": FLOOR,
        "verify_over_committed_training": with_sha / sum(s["seconds"] for s in mini_train["stages"].values()),
        "meets_floor": None if args.smoke else ratio <= FLOOR,
        "meta": package_metadata(),
    }
    write_json(out, result)
    print(f"verifying the prepared set: {with_sha:.3f} s (headers only {headers_only:.3f} s); the mini run trains "
          f"{train_tokens:,} tokens at {rate:,.0f} tokens/s = {training_s:.0f} s; ratio {ratio:.2e} "
          f"(floor {FLOOR}); against the committed "
          f"run's {result['mini_training_s_committed']:.0f} s: {result['verify_over_committed_training']:.2e}")
    print(f"written to {out}")
    return 0 if args.smoke or ratio <= FLOOR else 1


if __name__ == "__main__":
    sys.exit(main())
