"""A suite resolved once (reproduce/evaluate/suites.py ``resolve_suite``): its tasks, benchmarks, task files, verified
data files and the hashes its results record, all in one object; and ``eval.tasks=[]`` as no task at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from reproduce.config.schema import EvalConfig
from reproduce.core.checksums import sha256_of
from reproduce.core.errors import UserError
from reproduce.data.manifest import Resolver
from reproduce.evaluate.benchmarks import benchmark
from reproduce.evaluate.suites import resolve_suite


def test_a_suite_resolves_into_what_its_scorer_and_results_read(tmp_path: Path, mirror: Path) -> None:
    resolver = Resolver(tmp_path / "cache", mirror, allow_download=False)
    suite = resolve_suite(EvalConfig(suite="ru_local", tasks=["rublimp", "parus_crowd_majority"]), resolver)
    assert (suite.name, suite.tasks, suite.scorer, suite.network) == ("ru_local", ["rublimp", "parus_crowd_majority"],
                                                                      "lm_eval", False)
    assert [found.name for found in suite.benchmarks] == ["rublimp", "xwinograd_ru", "parus", "rucola"]
    assert [d.path for d in suite.data_files] == [p for f in suite.benchmarks for p in benchmark(f.name).data_names()]
    for item in suite.data_files:
        assert item.local.is_relative_to(mirror) and sha256_of(item.local) == item.sha256 and item.role is None
        assert suite.task_file_hashes[f"mirror:{item.path}"] == item.sha256
    assert "rublimp/_template_yaml" in suite.task_file_hashes and "parus/utils.py" in suite.task_file_hashes
    assert not any(key.endswith(("manifest.tsv", "benchmark.yaml")) for key in suite.task_file_hashes)
    assert suite.penlp_files == {}


def test_no_task_is_no_benchmark_no_data_and_no_network(tmp_path: Path) -> None:
    suite = resolve_suite(EvalConfig(suite="tape", tasks=[]), Resolver(tmp_path, None, allow_download=False))
    assert (suite.tasks, suite.benchmarks, suite.task_file_hashes, suite.network) == ([], (), {}, False)


def test_a_data_file_that_is_not_found_stops_resolution(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found in .*, and downloads are disabled"):
        resolve_suite(EvalConfig(suite="ru_local"), Resolver(tmp_path, tmp_path / "empty", allow_download=False))
