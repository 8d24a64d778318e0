"""Seconds of `reproduce paper` (the console script, start-up included) from the committed results/ into a temporary
folder, side by side with the 60 s floor, and whether its files equal the committed paper/ byte for byte.

    python bench/paper_build.py [--repeats 3] [--out results/perf/paper_build.json]
    python bench/paper_build.py --smoke   # one build; neither the floor nor the bytes judged; a temporary file
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce.core.meta import package_metadata  # noqa: E402
from reproduce.core.paths import SOURCE_ROOT  # noqa: E402

FLOOR_S = 60.0
REPRODUCE = str(Path(sys.executable).with_name("reproduce"))


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="builds; the slowest counts (default 3; --smoke: 1)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default results/perf/paper_build.json (--smoke: a temporary file)")
    parser.add_argument("--smoke", action="store_true", help="one build: checks that it runs and matches paper/")
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 1 if args.smoke else 3
    args.out = args.out or (Path(tempfile.gettempdir()) / "paper_build_smoke.json" if args.smoke
                            else Path("results/perf/paper_build.json"))
    committed = files(SOURCE_ROOT / "paper")
    seconds, identical = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            paper = Path(tmp) / "paper"
            started = time.perf_counter()
            subprocess.run([REPRODUCE, "paper", f"paths.paper={paper}"], cwd=SOURCE_ROOT, check=True,
                           capture_output=True)
            seconds.append(time.perf_counter() - started)
            identical.append(files(paper) == committed)
    slowest = max(seconds)
    # a smoke run judges neither the time (a busy machine) nor the PNGs' bytes (another CPU's last bits: the suite
    # compares the committed paper by pixels, tests/test_paper_trace.py)
    ok = args.smoke or slowest <= FLOOR_S and all(identical)
    result = {"meta": package_metadata(), "command": "reproduce paper", "files": len(committed),
              "seconds": [round(s, 3) for s in seconds], "floor_s": FLOOR_S, "identical_to_committed": all(identical)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"reproduce paper: {len(committed)} files in {', '.join(f'{s:.1f}' for s in seconds)} s; identical to the "
          f"committed paper/: {all(identical)}")
    print(f"ratio slowest / floor: {slowest / FLOOR_S:.3f} (floor {FLOOR_S:.0f} s) [{'ok' if ok else 'MISSED'}]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
