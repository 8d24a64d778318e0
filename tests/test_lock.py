"""The dependency lock (requirements/constraints.txt): in step with pyproject.toml (every dependency of every extra
pinned, every pin inside its declared range, for each locked Python), the installed versions the lock's, and each
way out of step one line naming what to run."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from reproduce.config.compose import compose_config
from reproduce.core import environment, meta
from reproduce.core.environment import TORCH_BUILD, canonical, check, differing, installed, read_lock
from reproduce.core.errors import UserError
from reproduce.core.paths import SOURCE_ROOT

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "constraints.txt"
PYTHONS = re.search(r"^LOCK_PYTHONS \?= (.+)$", (ROOT / "Makefile").read_text(), re.M).group(1).split()  # type: ignore


def _declared() -> list[tuple[str | None, Requirement]]:
    """(extra or None, requirement) of every dependency pyproject.toml declares."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    found: list[tuple[str | None, Requirement]] = [(None, Requirement(r)) for r in project["dependencies"]]
    for extra, requirements in project.get("optional-dependencies", {}).items():
        found += [(extra, Requirement(r)) for r in requirements]
    return found


def test_the_lock_covers_the_supported_pythons() -> None:
    with open(ROOT / "pyproject.toml", "rb") as f:
        requires = tomllib.load(f)["project"]["requires-python"]
    assert {"3.11", "3.12"} <= set(PYTHONS)
    assert requires == f">={PYTHONS[0]}"
    assert f"pinned for Python {', '.join(PYTHONS)}" in LOCK.read_text(encoding="utf-8")


@pytest.mark.parametrize("python", PYTHONS)
def test_every_declared_dependency_is_pinned_inside_its_range(python: str) -> None:
    pins = read_lock(LOCK, python)
    assert pins and all(not TORCH_BUILD.match(name) for name in pins)  # torch comes from TORCH_SPEC
    for extra, requirement in _declared():
        name = canonical(requirement.name)
        if name == "torch" or requirement.marker and not requirement.marker.evaluate(
                {"python_version": python, "extra": extra or ""}):
            continue
        assert name in pins, f"{requirement} ({extra or 'dependencies'}) has no pin for Python {python}: make lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{name}=={pins[name]} is outside pyproject.toml's {requirement}: make lock")


@pytest.mark.lock
def test_the_installed_versions_are_the_locks_transitively() -> None:
    """What `make test` installed (the package with its test and dev extras, and everything they need) is pinned, at
    its pin; the make targets run the same check (python -m reproduce.core.environment)."""
    pins, found = read_lock(LOCK), installed()
    python = ".".join(map(str, sys.version_info[:2]))
    todo, seen = [(canonical("reproduce"), ("test", "dev"))], set()
    while todo:
        name, extras = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker and not any(requirement.marker.evaluate(
                    {"python_version": python, "extra": extra}) for extra in (*extras, "")):
                continue
            todo.append((canonical(requirement.name), tuple(requirement.extras)))
    reached = sorted(n for n in seen - {canonical("reproduce")} if not TORCH_BUILD.match(n))
    assert len(reached) > 50
    assert [n for n in reached if n not in pins] == []
    assert {n: found[n] for n in reached} == {n: pins[n] for n in reached}
    check(LOCK)


def _fake_lock(tmp_path: Path, change: dict[str, str | None]) -> Path:
    """The lock with some pins changed, their markers kept (None: left out)."""
    lines = []
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        name = canonical(line.split("==")[0]) if "==" in line else None
        if name in change:
            if change[name] is None:
                continue
            marker = line.partition(";")[2]
            line = f"{name}=={change[name]}" + (f" ;{marker}" if marker else "")
        lines.append(line)
    path = tmp_path / "constraints.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_shadowed_copy_later_on_sys_path_is_not_the_installed_version(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in `make test`: `import setuptools` appends its vendored packages, each with its dist-info, to sys.path;
    the lock tests then saw setuptools' packaging and platformdirs instead of the installed ones, whichever test had
    imported it first. The installed version is the first on sys.path, the one imported."""
    shadow = tmp_path / "numpy-1.0.0.dist-info"
    shadow.mkdir()
    (shadow / "METADATA").write_text("Metadata-Version: 2.1\nName: numpy\nVersion: 1.0.0\n", encoding="utf-8")
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path)])
    assert installed()["numpy"] == metadata.version("numpy") != "1.0.0"


def test_a_lock_out_of_step_is_one_line_naming_make_lock(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no pin for transformers \(declared in pyproject.toml\).*run `make lock`$"):
        check(_fake_lock(tmp_path, {"transformers": None}))
    bad = tmp_path / "bad.txt"
    bad.write_text('numpy>=2\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.txt:1: 'numpy>=2' is not a pin \(name==version\); run `make lock`"):
        read_lock(bad)
    bad.write_text('numpy==2.0 ; sys_platform == "linux"\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"bad.txt:1: marker .* is not one `make lock` writes; run `make lock`"):
        read_lock(bad)


@pytest.mark.lock
def test_an_installed_version_outside_the_lock_fails_the_make_targets_and_warns_a_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_lock(tmp_path, {"numpy": "1.0.0", "pyyaml": "0.1"})
    assert [(d.name, d.locked) for d in differing(read_lock(fake), installed())] == [("numpy", "1.0.0"),
                                                                                     ("pyyaml", "0.1")]
    out = subprocess.run([sys.executable, "-m", "reproduce.core.environment", str(fake)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [
        f"error: installed versions differ from {fake}: numpy {metadata.version('numpy')} (lock: 1.0.0), pyyaml "
        f"{metadata.version('pyyaml')} (lock: 0.1); run `{environment.FIX}`"]
    monkeypatch.setattr(environment, "LOCK", fake)
    line = environment.warning()
    assert line is not None and line.startswith("warning: installed versions differ from requirements/constraints.txt")
    assert line.endswith(f"run `{environment.FIX}`") and "\n" not in line
    monkeypatch.setattr(meta, "LOCK", fake)
    rows = dict(meta.environment_rows(compose_config("reproduce", [])))
    assert rows["differs from the lock: numpy"] == f"{metadata.version('numpy')} (lock: 1.0.0)"


@pytest.mark.lock
def test_reproduce_env_shows_the_environment_the_package_and_no_difference() -> None:
    rows = dict(meta.environment_rows(compose_config("reproduce", ["trainer=cpu"])))
    assert rows["package"] == f"reproduce {metadata.version('reproduce')}"
    assert rows["transformers"] == metadata.version("transformers") and rows["precision"] == "32-true"
    assert rows["Python"] == ".".join(map(str, sys.version_info[:3])) and rows["threads"].isdigit()
    assert rows["cpu_capability"] and rows["CPU"]
    assert rows["git commit"].split()[0] == str(meta.git("rev-parse", "HEAD"))  # None outside a git checkout
    assert rows["lock"].endswith(" 0 installed version(s) differ")
    assert not any(key.startswith("differs") for key in rows)


@pytest.mark.slow
def test_a_torch_spec_the_lock_cannot_satisfy_is_one_line(tmp_path: Path) -> None:
    """make's set-up with a lock that torch 2.13.0 cannot live with (sympy pinned to a version that does not exist):
    one line naming TORCH_SPEC and what to run, exit code 2, nothing installed."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    base = Path(sys.base_prefix) / "bin" / "python3"
    if subprocess.run([str(base), "-m", "pip", "--version"], capture_output=True).returncode != 0:
        pytest.skip("the base interpreter has no pip")
    fake = _fake_lock(tmp_path, {"sympy": "0.0.1"})
    out = subprocess.run(["make", "-s", f"{venv}/.installed", f"VENV={venv}", f"LOCK={fake}",
                          "TORCH_SPEC=torch==2.13.0"], cwd=SOURCE_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    lines = [line for line in out.stderr.splitlines() if not line.startswith("make")]
    assert lines == [f"error: TORCH_SPEC=torch==2.13.0 cannot be installed with {fake}'s pins (pip's report: "
                     f"{venv}/pip.log); choose a torch they allow, or run `make lock TORCH_SPEC='torch==2.13.0'`"]
    assert not (venv / ".installed").exists()


@pytest.mark.lock
def test_a_run_records_its_environment_and_what_differs_from_the_lock() -> None:
    recorded = meta.package_metadata()
    assert set(meta.ENVIRONMENT) - {"dtype"} <= set(recorded)  # precision: the run's own (run_metadata's dtype)
    assert recorded["lock_differs"] == {} and recorded["numpy"] == metadata.version("numpy")
    assert recorded["package_version"] == metadata.version("reproduce")
