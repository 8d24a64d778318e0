"""`make lock`: requirements/constraints.txt, every dependency of the package and of all its extras pinned with ``==``
for each Python it supports, torch aside (``TORCH_SPEC`` installs it: the CPU and CUDA builds differ).

pip's own resolver makes it (``pip install --dry-run --ignore-installed --report``), once per Python (``pip
--python``: the interpreter's tags and markers), with ``--uploaded-prior-to`` so that the same command gives the same
file until its date is moved. The versions the committed reference run was made with (``results/mini/summary.json``'s
``meta``) are pinned where that Python can install them. Where the Pythons' versions differ, a line per version carries
a ``python_version`` marker. torch's own build (torch, triton, nvidia-*) is left out: it comes with ``TORCH_SPEC``.

    python requirements/lock.py [--pythons 3.10 3.11 3.12] [--torch 'torch==2.13.0'] [--date 2026-12-07T00:00:00Z]

Standard library only: it runs in a venv that holds nothing but pip.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the package's lock reader: standard library only, like this script
from reproduce.core.environment import TORCH_BUILD, canonical  # noqa: E402

LOCK = ROOT / "requirements" / "constraints.txt"
REFERENCE = ROOT / "results" / "mini" / "summary.json"
# meta key of a results file -> the distribution it names (the engines whose versions a run records)
REFERENCE_PACKAGES = {"transformers": "transformers", "tokenizers": "tokenizers", "pytorch_lightning":
                      "pytorch-lightning", "lm_eval": "lm-eval", "numpy": "numpy"}


def extras() -> list[str]:
    """Every extra pyproject.toml declares: the lock covers them all, so a new extra needs only `make lock`."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    return sorted(project.get("optional-dependencies", {}))


def reference_pins() -> list[str]:
    """``name==version`` of the engines the committed reference run recorded (none where it records none)."""
    if not REFERENCE.is_file():
        return []
    meta = json.loads(REFERENCE.read_text()).get("meta", {})
    return [f"{dist}=={meta[key]}" for key, dist in REFERENCE_PACKAGES.items() if isinstance(meta.get(key), str)]


def interpreter(version: str) -> str:
    """A working ``python<version>``: on PATH, else one of pyenv's (whose shim may refuse a version not enabled)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [shutil.which(f"python{version}"), *sorted(map(str, pyenv.glob(f"{version}.*/bin/python{version}")))]
    for candidate in filter(None, candidates):
        found = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip() == version:
            return candidate
    sys.exit(f"error: no working python{version} (PATH, pyenv); install it (e.g. `pyenv install {version}`) or lock "
             f"fewer versions (`make lock LOCK_PYTHONS='...'`)")


def start(version: str, requirements: list[str], date: str, report: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "pip", "--python", interpreter(version), "install", "--dry-run",
               "--ignore-installed", "--quiet", "--report", str(report), "--uploaded-prior-to", date, *requirements]
    with open(log, "wb") as out:
        return subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def resolve(pythons: list[str], torch: str, date: str, work: Path) -> tuple[dict[str, dict[str, str]], dict[str, bool]]:
    """python version -> {distribution: version}, and whether the reference's pins held there; the Pythons in
    parallel (each waits mostly on the index)."""
    project = f".[{','.join(extras())}]"
    pins = reference_pins()
    results: dict[str, dict[str, str]] = {}
    pinned: dict[str, bool] = {}
    tries = {v: [[torch, project, *pins], [torch, project]] if pins else [[torch, project]] for v in pythons}
    running = {v: start(v, tries[v].pop(0), date, work / f"{v}.json", work / f"{v}.log") for v in pythons}
    while running:
        for version, process in list(running.items()):
            if process.poll() is None:
                continue
            del running[version]
            if process.returncode == 0:
                report = json.loads((work / f"{version}.json").read_text())
                results[version] = {canonical(item["metadata"]["name"]): item["metadata"]["version"]
                                    for item in report["install"]}
                pinned[version] = bool(pins) and len(tries[version]) == 1  # the first try, with the pins, held
            elif tries[version]:  # the reference's versions do not install on this Python: resolve without them
                running[version] = start(version, tries[version].pop(0), date, work / f"{version}.json",
                                         work / f"{version}.log")
            else:
                last = (work / f"{version}.log").read_text(errors="replace").strip().splitlines()
                errors = [line for line in last if line.startswith("ERROR")] or last[-1:]
                shown = errors[-1].strip() if errors else "no output"
                sys.exit(f"error: pip could not resolve the package for Python {version}: {shown} (check "
                         f"pyproject.toml's ranges and TORCH_SPEC={torch!r})")
        time.sleep(0.5)
    return results, pinned


def marker(versions: list[str]) -> str:
    return " or ".join(f'python_version == "{v}"' for v in versions)


def render(results: dict[str, dict[str, str]], pinned: dict[str, bool], torch: str, date: str) -> str:
    pythons = sorted(results, key=lambda v: tuple(map(int, v.split("."))))
    own = canonical("reproduce")
    names = sorted({n for found in results.values() for n in found if n != own and not TORCH_BUILD.match(n)})
    held = [v for v in pythons if pinned[v]]
    lines = [
        "# Every dependency of reproduce and of all its extras (" + ", ".join(extras()) + "), pinned for Python "
        + ", ".join(pythons) + " on Linux x86_64;",
        "# torch aside (TORCH_SPEC installs it). Made by `make lock` (requirements/lock.py): pip's resolver, releases",
        f"# uploaded before {date}, {torch}, and the versions results/mini/summary.json was made with",
        "# (" + ", ".join(reference_pins()) + ")" + (f" on Python {', '.join(held)}" if held != pythons else "") + ".",
        "# Do not edit: change pyproject.toml, then run `make lock`.",
    ]
    for name in names:
        by_version: dict[str, list[str]] = {}
        for python in pythons:
            if name in results[python]:
                by_version.setdefault(results[python][name], []).append(python)
        for version, where in sorted(by_version.items(), key=lambda item: pythons.index(item[1][0])):
            lines.append(f"{name}=={version}" if where == pythons else f"{name}=={version} ; {marker(where)}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pythons", nargs="+", default=["3.11", "3.12"])
    parser.add_argument("--torch", default="torch==2.13.0", help="TORCH_SPEC: the torch the lock must fit")
    parser.add_argument("--date", required=True, help="only releases uploaded before this (ISO 8601)")
    parser.add_argument("--output", type=Path, default=LOCK)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        results, pinned = resolve(args.pythons, args.torch, args.date, Path(work))
    text = render(results, pinned, args.torch, args.date)
    temporary = args.output.with_name(f".{args.output.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, args.output)
    print(f"{args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}: "
          f"{sum(1 for line in text.splitlines() if not line.startswith('#'))} pins for Python {', '.join(results)}")


if __name__ == "__main__":
    main()
