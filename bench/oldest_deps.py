"""Are pyproject.toml's version ranges true? A fresh venv with the lowest version each direct dependency declares
(``name==lower``; torch: TORCH_SPEC, the only build on this machine's disk), or with the newest releases the ranges
allow (``--newest``: no lock, ``--upgrade``), runs the fast tests (``-m "not slow and not lock"``: the lock marker's
tests need the lock's versions) and the micro recipe (conf/experiment/micro.yaml). Written: the versions installed,
the tests passed and failed, the seconds.

    nice -n 19 python bench/oldest_deps.py [--out results/perf/oldest_deps.json]
    nice -n 19 python bench/oldest_deps.py --newest [--out results/perf/newest_deps.json]
    python bench/oldest_deps.py --smoke   # the plan, then this venv (nothing built): one test file, no recipe;
                                          # written to a temporary file
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reproduce.core.environment import canonical  # noqa: E402
from reproduce.core.io import write_json  # noqa: E402
from reproduce.core.meta import cpu_model  # noqa: E402
from reproduce.core.paths import SOURCE_ROOT  # noqa: E402
from tests.helpers import micro_overrides  # noqa: E402

EXTRAS = ("test", "dev")  # what the suite needs, as `make test` installs it
TORCH_SPEC = os.environ.get("TORCH_SPEC", "torch==2.13.0")
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$")
SUMMARY = re.compile(r"(\d+) (passed|failed|error|errors|skipped|deselected)")
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
SELECTION = "not slow and not lock"  # the fast tests; those of the lock's installed versions fail here by design


def declared() -> dict[str, tuple[str, str]]:
    """canonical name -> (name with extras, specifier) of every direct dependency and of the test and dev extras."""
    with open(SOURCE_ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    found: dict[str, tuple[str, str]] = {}
    for line in [*project["dependencies"], *(r for e in EXTRAS for r in project["optional-dependencies"][e])]:
        name, extras, spec = REQUIREMENT.match(line.split(";")[0].strip()).groups()  # type: ignore[union-attr]
        found.setdefault(canonical(name), (name + (extras or ""), spec.strip()))
    return found


def lower_bound(spec: str) -> str | None:
    found = re.search(r">=\s*([^,\s]+)", spec)
    return found.group(1) if found else None


def plan(newest: bool) -> list[str]:
    """The requirements the venv is built from: torch as TORCH_SPEC, the others at their lower bound (or as declared,
    for --newest)."""
    lines = [TORCH_SPEC]
    for name, (full, spec) in declared().items():
        if name == "torch":
            continue
        low = lower_bound(spec)
        lines.append(f"{full}{spec}" if newest or low is None else f"{full}=={low}")
    return lines


def step(command: list[str], log: Path, timeout: float, cwd: Path) -> tuple[int, float, str]:
    """Run ``command`` in ``cwd`` (output to ``log``): exit code, seconds, the output's last lines."""
    started = time.perf_counter()
    with open(log, "ab") as out:
        out.write(("\n$ " + " ".join(command) + "\n").encode())
        out.flush()
        try:
            code = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                                  env={**os.environ, **OFFLINE}).returncode
        except subprocess.TimeoutExpired:
            code = 124
    tail = log.read_text(errors="replace").splitlines()[-40:]
    return code, time.perf_counter() - started, "\n".join(tail)


def checkout(work: Path) -> Path:
    """The committed tree (git HEAD) in ``work``/src, beside a link to the data mirror (``../shared``), so that edits
    made while it runs do not reach it."""
    src = work / "src"
    src.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=SOURCE_ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    if (SOURCE_ROOT.parent / "shared").is_dir():
        (work / "shared").symlink_to(SOURCE_ROOT.parent / "shared")
    return src


def build(venv: Path, requirements: list[str], newest: bool, log: Path, src: Path) -> tuple[int, float, str]:
    """The venv, pip, torch, then the package (editable, with its test and dev extras) and ``requirements``."""
    python = str(venv / "bin" / "python")
    started = time.perf_counter()
    for command in ([sys.executable, "-m", "venv", str(venv)],
                    [python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                    [python, "-m", "pip", "install", "--quiet", requirements[0]],
                    [python, "-m", "pip", "install", "--quiet", *(["--upgrade"] if newest else []),
                     f"-e.[{','.join(EXTRAS)}]", *requirements[1:]]):
        code, _, tail = step(command, log, 1800, src)
        if code != 0:
            return code, time.perf_counter() - started, tail
    return 0, time.perf_counter() - started, ""


def installed(python: str) -> dict[str, str]:
    out = subprocess.run([python, "-c", "import json; from importlib import metadata; print(json.dumps({d.metadata["
                          "'Name']: d.version for d in metadata.distributions()}))"], capture_output=True, text=True)
    return {canonical(k): v for k, v in json.loads(out.stdout or "{}").items()}


def tests(python: str, log: Path, smoke: bool, src: Path) -> dict[str, object]:
    selection = ["tests/test_citation.py"] if smoke else ["-m", SELECTION, "-n", "2", "--dist", "loadfile"]
    code, seconds, tail = step([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection], log, 3600, src)
    counts = {kind: 0 for kind in ("passed", "failed", "errors", "skipped")}
    last = next((line for line in reversed(tail.splitlines()) if " in " in line and SUMMARY.search(line)), "")
    for number, kind in SUMMARY.findall(last):
        counts["errors" if kind.startswith("error") else kind] = int(number)
    failures = [line.split(" - ")[0].removeprefix("FAILED ").removeprefix("ERROR ")
                for line in tail.splitlines() if line.startswith(("FAILED ", "ERROR "))]
    return {"exit_code": code, "selection": "test_citation.py" if smoke else f"-m {SELECTION!r}", **counts,
            "seconds": round(seconds, 1), "failures": failures[:20]}


def micro_recipe(venv: Path, log: Path, src: Path) -> dict[str, object]:
    """The micro recipe through the console script, every output under a temporary folder (with the published numbers
    its paper step reads, as in tests/test_end_to_end.py)."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(src / "results" / "published", Path(tmp) / "results" / "published")
        code, seconds, _ = step([str(venv / "bin" / "reproduce"), *micro_overrides(Path(tmp))], log, 1800, src)
    return {"exit_code": code, "seconds": round(seconds, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--newest", action="store_true", help="the newest releases the ranges allow")
    parser.add_argument("--smoke", action="store_true", help="the plan, then this venv: one test file, no recipe")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=None, help="where the venv and the log go (default: temporary)")
    args = parser.parse_args()
    kind = "newest" if args.newest else "oldest"
    out = (args.out or (Path(tempfile.gettempdir()) / f"{kind}_deps_smoke.json" if args.smoke
                        else SOURCE_ROOT / "results" / "perf" / f"{kind}_deps.json")).resolve()
    requirements = plan(args.newest)
    print(f"{kind}: " + " ".join(requirements), flush=True)
    work = args.work or Path(tempfile.mkdtemp(prefix=f"{kind}_deps_"))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "log.txt"
    venv = work / "venv"
    started = time.perf_counter()
    if args.smoke:
        code, build_s, tail, python, src = 0, 0.0, "", sys.executable, SOURCE_ROOT
    else:
        src = checkout(work)
        code, build_s, tail = build(venv, requirements, args.newest, log, src)
        python = str(venv / "bin" / "python")
    result: dict[str, object] = {
        "kind": kind, "date": date.today().isoformat(), "smoke": args.smoke,
        "machine": {"platform": platform.platform(), "cpu": cpu_model(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "requested": requirements, "install": {"exit_code": code, "seconds": round(build_s, 1)}}
    if code != 0:
        result["install"]["error"] = tail  # type: ignore[index]
        print(f"install failed (exit {code}); the log: {log}\n{tail}", flush=True)
    else:
        found = installed(python)
        result["installed"] = found
        result["direct"] = {name: found.get(name) for name in declared()}
        result["tests"] = tests(python, log, args.smoke, src)
        print(f"tests: {result['tests']}", flush=True)
        if not args.smoke:
            result["micro_recipe"] = micro_recipe(venv, log, src)
            print(f"micro recipe: {result['micro_recipe']}", flush=True)
    result["seconds"] = round(time.perf_counter() - started, 1)
    write_json(out, result)
    print(f"{out}: {kind} dependencies, {result['seconds']} s", flush=True)
    ok = code == 0 and result["tests"]["exit_code"] == 0  # type: ignore[index]
    return 0 if ok and (args.smoke or result["micro_recipe"]["exit_code"] == 0) else 1  # type: ignore[index]


if __name__ == "__main__":
    sys.exit(main())
