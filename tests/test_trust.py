"""Inputs that are not what they seem: two models that map to one results name, special files, resource bounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from reproduce.core.errors import UserError
from reproduce.core.layout import EvalLayout
from reproduce.evaluate.inputs import ModelRef, check_results_name, find_models, record_source


def test_two_models_that_map_to_one_results_name_are_refused_naming_both(tmp_path: Path) -> None:
    first, second = tmp_path / "m v1", tmp_path / "m_v1"
    for folder in (first, second):
        folder.mkdir()
        (folder / "config.json").write_text("{}", encoding="utf-8")
    (one,), (two,) = find_models(str(first)), find_models(str(second))
    assert one.name == two.name == "m_v1"
    folders = EvalLayout.of(tmp_path / "results", tmp_path / "runs")
    check_results_name(folders, one, overwrite=False)  # nothing recorded yet
    record_source(folders, one)
    check_results_name(folders, ModelRef(one.name, str(tmp_path / "." / "m v1")), overwrite=False)  # the same folder
    with pytest.raises(UserError, match=r"model='.*m_v1': its results folder .*m_v1 holds the results of '.*m v1', "
                                        r"another model named 'm_v1' too; give eval.name=<another name>"):
        check_results_name(folders, two, overwrite=False)
    check_results_name(folders, two, overwrite=True)
    hub = ModelRef(one.name, "owner/m_v1")
    with pytest.raises(UserError, match="holds the results of"):
        check_results_name(folders, hub, overwrite=False)
