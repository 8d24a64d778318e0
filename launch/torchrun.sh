#!/bin/bash
# Multi-process runs under torchrun: every process starts at once; rank zero prepares the data while the others
# wait, every rank trains, rank zero exports, evaluates and writes the results.
#   one node, 8 GPUs:     bash launch/torchrun.sh 8 experiment=rugpt3_large_paper trainer=ddp
#   this laptop, 2 CPUs:  bash launch/torchrun.sh 2 trainer.devices=2 trainer.strategy=ddp run_name=cpu2
# On N nodes, run it on each with NNODES=N NODE_RANK=<i> MASTER_ADDR=<node 0> (and trainer.num_nodes=N).
set -euo pipefail
nproc=$1
shift
exec .venv/bin/torchrun --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --nproc_per_node="$nproc" \
  --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-29500}" \
  .venv/bin/reproduce "$@"
