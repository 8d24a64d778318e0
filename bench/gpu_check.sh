#!/usr/bin/env bash
# The GPU path end to end in one call: bench/gpu_check.py's parts a (MFU and the levers), b (the recipe,
# experiment=gpu_check, stopped by SIGTERM and resumed) and c (DDP and FSDP on one GPU). docs/gpus.md: "The GPU check".
#   bash bench/gpu_check.sh                     # every part on one GPU
#   bash bench/gpu_check.sh --parts b,c         # a subset (a: MFU, b: recipe, c: engines)
#   bash bench/gpu_check.sh --tiny              # the same parts on this CPU, micro model and corpus (or --smoke)
# The offline bundle .gpu_site/ (bench/gpu_bundle.py) is unpacked into $GPU_SITE (default /tmp/gpu_site) and used
# where this Python lacks the packages (its site.tar.xz), and where no data mirror is set or beside the checkout (its
# data.tar.xz); nothing is fetched. $GPU_BUNDLE names another bundle folder, used even where this machine has the
# packages and the data (to try a bundle before carrying it: bench/gpu_bundle.py --smoke, then --tiny). The console
# goes to $GPU_CHECK_LOG (default runs/gpu_check.log) too; with $OUT set the key results are copied
# there.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
GPU_SITE=${GPU_SITE:-/tmp/gpu_site}
BUNDLE=${GPU_BUNDLE:-.gpu_site}
FORCE=${GPU_BUNDLE:+1}
unpack() {  # unpack $BUNDLE/$1.tar.xz into $GPU_SITE/$1
    [ -f "$BUNDLE/$1.tar.xz" ] || return 0
    mkdir -p "$GPU_SITE/$1"
    "$PYTHON" -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], filter="data")' \
        "$BUNDLE/$1.tar.xz" "$GPU_SITE/$1" \
        || { echo "error: cannot unpack $BUNDLE/$1.tar.xz into $GPU_SITE" >&2; exit 2; }
}
if [ -n "$FORCE" ] && [ ! -f "$BUNDLE/site.tar.xz" -o ! -f "$BUNDLE/data.tar.xz" ]; then
    echo "error: GPU_BUNDLE=$GPU_BUNDLE holds no site.tar.xz and data.tar.xz; build it with bench/gpu_bundle.py --out" >&2
    exit 2
fi
if [ -n "$FORCE" ] || ! "$PYTHON" -c 'import importlib.util as u, sys
sys.exit(any(u.find_spec(m) is None for m in ("hydra", "omegaconf", "lm_eval", "datasets")))' 2>/dev/null; then
    unpack site && export PYTHONPATH="$GPU_SITE/site${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ -n "$FORCE" ] || { [ -z "${REPRODUCE_DATA_MIRROR:-}" ] && [ ! -d ../shared/data ]; }; then
    if [ -f "$BUNDLE/data.tar.xz" ]; then unpack data && export REPRODUCE_DATA_MIRROR="$GPU_SITE/data"; fi
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
LOG=${GPU_CHECK_LOG:-runs/gpu_check.log}
mkdir -p "$(dirname "$LOG")"
"$PYTHON" bench/gpu_check.py "$@" 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
if [ -n "${OUT:-}" ]; then cp "$LOG" "$OUT/"; fi
exit "$status"
