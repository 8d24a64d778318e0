"""The manual: README.md and docs/ build with mkdocs, name only files that exist, show only commands that run, and the
repository names no internal tracker numbers."""

from __future__ import annotations

import itertools
import os
import re
import shlex
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from reproduce.cli import command_help, split_command
from reproduce.config.compose import compose_config
from reproduce.core.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
REPRODUCE = str(Path(sys.executable).with_name("reproduce"))
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP_FOLDERS = ("reproduce/", "conf/", "launch/", "results/", "bench/", "docs/", "paper/", "tests/", ".ci/",
               "requirements/")
TOP_FILES = {"README.md", "Makefile", "pyproject.toml", "CITATION.cff", "LICENSE", "mkdocs.yml", "CHANGELOG.md"}
TRACKER = re.compile(r"issue[s]? ?#?[0-9]+", re.IGNORECASE)
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
       "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "NO_MKDOCS_2_WARNING": "1"}


def _rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _prose(text: str) -> str:
    """The page without its fenced blocks."""
    return FENCE.sub("", text)


def _slug(heading: str) -> str:
    """The anchor of a heading, as GitHub and mkdocs' toc both make it for plain headings."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return re.sub(r"\s", "-", text)


def _anchors(page: Path) -> set[str]:
    text = _prose(page.read_text(encoding="utf-8"))
    return {_slug(m) for m in re.findall(r"^#{1,6} (.+)$", text, re.MULTILINE)}


def _named_paths(page: Path) -> set[str]:
    """Repository paths named in backticks or in fenced blocks: those under a known top-level folder, and the
    top-level files; placeholders (<run>, *, {a,b}, $VAR) are left out."""
    text = page.read_text(encoding="utf-8")
    code = [re.sub(r"(^|\s)#.*", "", line) for block in FENCE.findall(text) for line in block.splitlines()]
    chunks = INLINE.findall(_prose(text)) + code  # a fenced line's comment names outputs, not repository files
    found = set()
    for chunk in chunks:
        for token in re.split(r"[\s=]+", chunk):
            token = token.strip("'\"(),;:").rstrip(".")
            if not token or any(c in token for c in "<*{$[]"):
                continue
            if token.startswith(TOP_FOLDERS) or token in TOP_FILES:
                found.add(token)
    return found


def _make_targets(page: Path) -> set[str]:
    """`make <target>` in backticks or fenced blocks."""
    text = page.read_text(encoding="utf-8")
    code = "\n".join(INLINE.findall(_prose(text)) + FENCE.findall(text))
    return {f"make {m}" for m in re.findall(r"^make ([a-z][\w-]*)", code, re.MULTILINE)}


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_named_paths_and_links_exist(page: Path) -> None:
    missing = [p for p in sorted(_named_paths(page)) if not (ROOT / p).exists()]
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            missing.append(target)
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            missing.append(target)
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE))
    missing += [t for t in sorted(_make_targets(page)) if t.split()[1] not in targets]
    assert not missing, f"{_rel(page)} names what does not exist: {missing}"


def test_readme_is_a_front_page() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    first = FENCE.search(text)
    assert first and first.group(1).split("\n") == ["make reproduce", "make test", ""]
    assert text.startswith("```\nmake reproduce\nmake test\n```")


def test_mkdocs_builds_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
                          "-d", str(tmp_path / "site")], cwd=ROOT, env=ENV, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, text=True, check=True, timeout=30).stdout
        files = [ROOT / name for name in out.split("\0") if name]
    except (OSError, subprocess.SubprocessError):  # not a git checkout: every file but the build outputs
        skip = {".git", ".venv", "runs", "prepared", "outputs", "site", "__pycache__", ".gpu_site"}
        files = [p for p in ROOT.rglob("*") if not skip & set(p.relative_to(ROOT).parts)]
    return [f for f in files if f.is_file() and not f.is_symlink()]


def test_no_tracker_numbers() -> None:
    found = []
    for file in _tracked_files():
        data = file.read_bytes()
        if b"\0" in data[:8192]:
            continue
        text = data.decode("utf-8", errors="replace")
        found += [f"{file.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
                  for m in TRACKER.finditer(text)]
    assert not found, found


# Every `reproduce ...` command the README and docs show: cheap ones run for real through the console script; every
# other one has its help and its config composed with its overrides, as the console script does, in this process.


def _shown_commands() -> dict[tuple[str, ...], str]:
    """Each distinct command (its words after `reproduce`) and where it is first shown."""
    commands: dict[tuple[str, ...], str] = {}
    for page in PAGES:
        for block in FENCE.findall(page.read_text(encoding="utf-8")):
            for line in block.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words and words[0] in ("reproduce", ".venv/bin/reproduce"):
                    commands.setdefault(tuple(words[1:]), f"{_rel(page)}: {' '.join(line.split('#')[0].split())}")
    return commands


SHOWN = _shown_commands()


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([REPRODUCE, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=120)


@cache
def _command_names() -> tuple[str, ...]:
    out = _run(["--help"], ROOT)
    assert out.returncode == 0, out.stderr
    section = out.stdout.split("commands:", 1)[1].split("\n\n", 1)[0]
    return tuple(re.findall(r"^  ([a-z]+) ", section, re.MULTILINE))


def _sweep(args: list[str]) -> list[list[str]]:
    """A -m sweep as its jobs (comma lists outside brackets); any other command as itself."""
    if "-m" not in args and "--multirun" not in args:
        return [args]
    choices = []
    for arg in args:
        key, sep, value = arg.partition("=")
        sweeps = sep and "," in value and value[:1] not in "[{"
        choices.append([f"{key}={v}" for v in value.split(",")] if sweeps else [arg])
    return [[a for a in job if a not in ("-m", "--multirun")] for job in itertools.product(*choices)]


def _results_copy(tmp: Path, run: str) -> None:
    """The committed results in a folder of their own; the run's reference is the copy taken before a run."""
    shutil.copytree(ROOT / "results", tmp / "results")
    if (tmp / "results" / run / "summary.json").is_file():
        (tmp / "runs" / run / "reference").mkdir(parents=True)
        shutil.copyfile(tmp / "results" / run / "summary.json", tmp / "runs" / run / "reference" / "summary.json")


def _check(words: tuple[str, ...], tmp: Path) -> list[str]:
    """What is wrong with one shown command (nothing, when it runs or composes as shown)."""
    args = [re.sub(r"<([\w-]+)>", r"\1", a) for a in words]  # repo_id=<user>/name -> user/name
    name = args[0] if args and args[0] in _command_names() else "run"
    overrides = args[1:] if args and args[0] == name else args
    values = dict(a.split("=", 1) for a in overrides if "=" in a)
    reference = values.get("reference", values.get("compare.reference"))
    if "--help" in args or "--cfg" in args or name == "plan":  # seconds, from the config alone
        out = _run(args, tmp)
        ok = out.returncode == 0 and (name != "plan" or "--cfg" in args or (tmp / "results" / "plan").is_dir())
        return [] if ok else [f"exit {out.returncode}: {out.stderr.strip()}"]
    if name == "compare" and (reference is None or (ROOT / reference).is_dir()):  # on a copy of the committed results
        _results_copy(tmp, values.get("run_name", "mini"))
        out = _run(args, tmp)
        verdict = re.search(r"\| (identical|within seed spread|differs) \|", out.stdout)
        return [] if out.returncode in (0, 3) and verdict else [f"exit {out.returncode}: {out.stderr.strip()}"]
    return _composes(args)


def _composes(args: list[str]) -> list[str]:
    """The command's help and its config composed with its overrides (each job of a sweep), as the console script
    splits the command line and composes it; nothing runs and nothing is written."""
    command, overrides = split_command(args)
    errors = [] if command_help(command).startswith(f"reproduce {command.name}: ") else ["its help is wrong"]
    for job in _sweep(overrides):
        try:
            compose_config(command.config_name, job)
        except UserError as exc:
            errors.append(f"{command.name} {' '.join(job)}: {exc}")
    return errors


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, ...], list[str]]:
    """Every shown command checked once."""
    _command_names()
    return {words: _check(words, tmp_path_factory.mktemp("command")) for words in SHOWN}


@pytest.mark.parametrize("words", list(SHOWN), ids=list(SHOWN.values()))
def test_shown_command_runs_or_composes(words: tuple[str, ...], outcomes: dict[tuple[str, ...], list[str]]) -> None:
    assert not outcomes[words], f"{SHOWN[words]}: {outcomes[words]}"


def test_the_front_page_commands_are_checked() -> None:
    shown = {s.split(": ", 1)[1] for s in SHOWN.values()}
    for command in ("reproduce", "reproduce compare", "reproduce plan experiment=rugpt3_large_paper"):
        assert command in shown
    assert any(s.startswith("reproduce eval model=") for s in shown)
