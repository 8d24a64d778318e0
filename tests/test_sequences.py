"""Packed windows and a data order that depends on (seed, epoch) alone: resume and world size keep it."""

from __future__ import annotations

import numpy as np
import pytest

from reproduce.data.sequences import PackedSequences, StageOrder, epoch_permutation


def test_windows_overlap_by_one_token() -> None:
    data = PackedSequences(np.arange(101, dtype=np.uint16), context=10)
    assert len(data) == 10
    assert data[0].tolist() == list(range(11)) and data[9].tolist() == list(range(90, 101))
    assert data[1][0] == data[0][-1]


def test_order_crosses_epochs_with_fresh_permutations() -> None:
    order = list(StageOrder(num_windows=10, total=30, seed=3, micro_batch=2))
    assert sorted(order[:10]) == list(range(10)) and sorted(order[10:20]) == list(range(10))
    assert order[:10] == epoch_permutation(10, 3, 0).tolist() and order[10:20] == epoch_permutation(10, 3, 1).tolist()
    assert order[:10] != order[10:20]
    assert order != list(StageOrder(num_windows=10, total=30, seed=4, micro_batch=2))


def test_resume_sees_the_rest_of_the_same_order() -> None:
    full = list(StageOrder(num_windows=7, total=24, seed=1, micro_batch=4))
    assert list(StageOrder(num_windows=7, total=24, seed=1, micro_batch=4, start=8)) == full[8:]


def test_world_size_does_not_change_what_each_step_sees() -> None:
    micro, total = 2, 24
    single = list(StageOrder(12, total, 5, micro_batch=micro))
    ranks = [list(StageOrder(12, total, 5, micro_batch=micro, rank=r, world=3)) for r in range(3)]
    rebuilt = []
    for step in range(total // (micro * 3)):
        for r in range(3):
            rebuilt += ranks[r][step * micro : (step + 1) * micro]
    assert rebuilt == single
    assert len(ranks[0]) == total // 3


def test_misaligned_resume_point_is_refused() -> None:
    with pytest.raises(ValueError, match="multiples"):
        StageOrder(10, 20, 0, micro_batch=4, start=2)
