"""A built wheel installs a CLI that finds its configs from any folder, outside the repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from reproduce.core.paths import SOURCE_ROOT


def test_wheel_ships_the_configs_and_its_cli_composes_outside_the_repository(tmp_path: Path) -> None:
    source = tmp_path / "source"  # build from a copy, so the checkout gets no build/ folder
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(SOURCE_ROOT / name, source / name)
    shutil.copytree(SOURCE_ROOT / "reproduce", source / "reproduce",
                    ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
                   check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("reproduce-*.whl"))
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True,
                   timeout=300)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run([sys.executable, "-c", "import reproduce.core.paths as p; print(p.CONF_DIR, p.SOURCE_ROOT)"],
                           cwd=elsewhere, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.split() == [str(site / "reproduce" / "conf"), "None"]
    cli = [sys.executable, str(site / "bin" / "reproduce")]
    out = subprocess.run([*cli, "train", "--cfg", "job", "model=rugpt3_large", "run_name=demo"], cwd=elsewhere,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "run_name: demo" in out.stdout and "n_embd: 1536" in out.stdout and "manifests/ruslit.tsv" in out.stdout
    bad = subprocess.run([*cli, "model.n_head=5"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: model.n_head=5: must divide model.n_embd=192"
    assert not list(elsewhere.iterdir())
