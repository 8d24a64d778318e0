"""Which process this is, before Lightning has set up a process group.

Lightning starts the other ranks of a multi-process run by running the same command line again, with LOCAL_RANK
(and NODE_RANK) set; torchrun sets RANK; SLURM sets SLURM_PROCID. Work that must happen once (data preparation,
export, evaluation, results) runs on rank zero; the other ranks only train.
"""

from __future__ import annotations

import os


def global_rank(devices_per_node: int = 1) -> int:
    """This process's rank among all processes of the run (0 for a single-process run)."""
    for name in ("RANK", "SLURM_PROCID"):
        if name in os.environ:
            return int(os.environ[name])
    return int(os.environ.get("NODE_RANK", 0)) * devices_per_node + int(os.environ.get("LOCAL_RANK", 0))


def is_rank_zero(devices_per_node: int = 1) -> bool:
    return global_rank(devices_per_node) == 0
