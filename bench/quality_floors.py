"""The mini recipe's floors, read from a run's results: the final model against its unigram baseline, side by side.

Both perplexities come from the same run on the same test tokens (the unigram model is fitted on the run's
train split with the same tokenizer). Floors: perplexity at most 0.30x the unigram's, RuBLiMP at least 72%;
the final stage's mean test loss over the second half of its positions below the first half's (the
longer context is used), and the whole run within 15 minutes. Exits 1 if a floor is missed.

    python bench/quality_floors.py [results/mini/summary.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

MAX_PPL_RATIO = 0.30  # floor: final test perplexity at most 0.30x the unigram model's
MIN_RUBLIMP = 0.72  # floor: RuBLiMP mean accuracy over all 45,000 pairs
MAX_MINUTES = 15  # floor: the whole run after installation
ANCHOR = "plain PyTorch loop, 4x256 GPT-2, 8k BBPE, 8 min at context 128: 0.32x unigram, RuBLiMP 70% (100/phenomenon)"


def main(path: Path) -> int:
    summary = json.loads(path.read_text(encoding="utf-8"))
    final = list(summary["stages"])[-1]
    unigram = summary["unigram"]
    ok = True
    print(f"run {summary['run']} ({path}); anchor: {ANCHOR}")
    for row in summary["perplexity"]:
        ratio = row["perplexity"] / unigram["perplexity"]
        is_final = row["stage"] == final and row["context"] == summary["stages"][final]["context"]
        print(f"  {row['stage']} @ {row['context']}: ppl {row['perplexity']:.2f} vs unigram {unigram['perplexity']:.2f}"
              f" -> ratio {ratio:.3f}; {row['bits_per_byte']:.3f} vs {unigram['bits_per_byte']:.3f} bits/byte"
              + (f"  [floor <= {MAX_PPL_RATIO}: {'ok' if ratio <= MAX_PPL_RATIO else 'MISSED'}]" if is_final else ""))
        ok &= not is_final or ratio <= MAX_PPL_RATIO
        first, second = row["nll_positions_first_half"], row["nll_positions_second_half"]
        half = row["context"] // 2
        print(f"    mean loss at positions 0-{half - 1} {first:.4f}, {half}-{row['context'] - 1} {second:.4f}"
              + (f"  [floor: second half lower: {'ok' if second < first else 'MISSED'}]" if is_final else ""))
        ok &= not is_final or second < first
    blimp = summary["rublimp"].get(final)
    if blimp is None:
        print(f"  no RuBLiMP result for {final}")
        return 1
    full = blimp["n_pairs"] == 45_000
    print(f"  RuBLiMP {final}: {blimp['mean']:.4f} over {blimp['n_pairs']:,} pairs  "
          f"[floor >= {MIN_RUBLIMP} on all 45,000: {'ok' if blimp['mean'] >= MIN_RUBLIMP and full else 'MISSED'}]")
    ok &= blimp["mean"] >= MIN_RUBLIMP and full
    timings = summary["timings_s"]
    print("  timings: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items())
          + f"  [floor <= {MAX_MINUTES} min: {'ok' if timings['total'] <= MAX_MINUTES * 60 else 'MISSED'}]")
    ok &= timings["total"] <= MAX_MINUTES * 60
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "results/mini/summary.json")))
