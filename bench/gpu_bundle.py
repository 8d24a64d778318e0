"""The offline bundle of bench/gpu_check.sh, for a GPU machine that can fetch nothing: the Python packages its image
lacks and the data files the check reads, packed into .gpu_site/ (gitignored), to be copied to the GPU machine with
the checkout.

- site.tar.xz: hydra-core, omegaconf, lm-eval, datasets and what the check imports through them that the image
  (torch, Lightning, transformers, tokenizers, pandas, pyarrow, scikit-learn, ...) lacks, copied from this
  environment (pure Python; lm-eval without its own task folders: the check builds its tasks from
  reproduce/evaluate/tasks/). multiprocess follows the Python version: its installed version comes as the wheel for
  the image's Python (``pip download``, the only thing fetched, here; nothing when it is this Python's version).
- data.tar.xz: every file the recipe of experiment=gpu_check reads (RusLit, ruGPT-3's tokenizer, the contamination
  sets and the ru_local suite's files), found by the checks its pre-flight runs, from the cache or the mirror, sha256
  checked, laid out as the mirror (REPRODUCE_DATA_MIRROR).

    .venv/bin/python bench/gpu_bundle.py                 # .gpu_site/{site,data}.tar.xz, bundle.json
    .venv/bin/python bench/gpu_bundle.py --python 3.12   # the GPU image's Python (its default)
    .venv/bin/python bench/gpu_bundle.py --smoke --out /tmp/b   # the bundle of `gpu_check.sh --tiny` for this Python,
        # fast compression, in seconds; try it with GPU_BUNDLE=/tmp/b bash bench/gpu_check.sh --tiny
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from gpu_check import DATA, RUN, TINY, TINY_DATA  # noqa: E402

from reproduce.data.manifest import Entry, Resolver  # noqa: E402

# What the check imports (found by running it) that the GPU image (docs/gpus.md: The GPU check) does not hold.
DISTRIBUTIONS = ("hydra-core", "omegaconf", "antlr4-python3-runtime", "lm_eval", "datasets", "dill", "pytz")
PER_PYTHON = ("multiprocess",)  # a copy of the standard library's multiprocessing for each Python version
LEFT_OUT = ("lm_eval/tasks/",)  # lm-eval's own task folders (75 MB); its tasks/*.py stay
BUNDLE = ROOT / ".gpu_site"
LIMIT = 64 << 20  # a 64 MiB cap for everything copied to the GPU machine, the working tree included


def _kept(relative: str) -> bool:
    if "__pycache__" in relative or relative.startswith("..") or relative.endswith(".pyc"):
        return False
    return not any(relative.startswith(prefix) and "/" in relative[len(prefix):] for prefix in LEFT_OUT)


def add_installed(archive: tarfile.TarFile, name: str) -> str:
    """A distribution's files as installed here (its RECORD), under their site-packages paths; its version."""
    dist = importlib.metadata.distribution(name)
    compiled = [str(f) for f in dist.files or [] if str(f).endswith((".so", ".pyd"))]
    if compiled:
        raise SystemExit(f"error: {name} holds compiled code ({compiled[0]}); it cannot be copied to another Python")
    for file in dist.files or []:
        if _kept(str(file)):
            archive.add(dist.locate_file(file), arcname=str(file), recursive=False)
    return dist.version


def add_wheel(archive: tarfile.TarFile, name: str, python: str) -> str:
    """The wheel of the installed version of ``name`` for ``python``, unpacked into the archive (this Python's: the
    installed files); its version."""
    if python == f"{sys.version_info.major}.{sys.version_info.minor}":
        return add_installed(archive, name)
    version = importlib.metadata.version(name)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "--python-version", python, "--implementation", "py", "--platform", "any", "-d", tmp,
                        f"{name}=={version}"], check=True)
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as zipped:
            zipped.extractall(Path(tmp) / "unpacked")
        for path in sorted((Path(tmp) / "unpacked").rglob("*")):
            if path.is_file():
                archive.add(path, arcname=str(path.relative_to(Path(tmp) / "unpacked")))
    return version


class Recorder(Resolver):
    """A resolver that keeps the local file of every manifest entry it resolves, by its mirror path."""

    def __init__(self, resolver: Resolver):
        super().__init__(resolver.cache_dir, resolver.mirror_dir, resolver.allow_download)
        self.found: dict[str, Path] = {}

    def resolve(self, entry: Entry) -> Path:
        self.found[entry.path] = path = super().resolve(entry)
        return path


def data_files(overrides: list[str]) -> list[tuple[str, Path]]:
    """(mirror path, local file) of every file the recipe of ``overrides`` reads, found by the checks its pre-flight
    runs (reproduce/commands/preflight.py ``check_steps``), sha256 checked: its sources, the released tokenizer, the
    contamination sets, the evaluation suite."""
    from reproduce.config.compose import compose_config
    from reproduce.core.paths import config_file
    from reproduce.data.eval_items import read_items
    from reproduce.data.manifest import make_resolver, read_manifest
    from reproduce.data.sources import open_source
    from reproduce.evaluate.suites import resolve_suite

    cfg = compose_config("reproduce", overrides)
    recorder = Recorder(make_resolver(cfg.data))
    for name, source in cfg.data.sources.items():
        open_source(name, source).check(recorder)
    if cfg.tokenizer.kind == "released":
        for entry in read_manifest(config_file(cfg.tokenizer.manifest)):
            recorder.resolve(entry)
    for name, texts in cfg.contamination.sets.items():
        read_items(name, texts, recorder)
    resolve_suite(cfg.eval, recorder)
    return sorted(recorder.found.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=None, help="the GPU image's Python version (default 3.12; --smoke: this "
                        "Python's)")
    parser.add_argument("--out", type=Path, default=None, help="the bundle's folder (default .gpu_site; --smoke: "
                        "a folder under the system's temporary directory)")
    parser.add_argument("--smoke", action="store_true", help="the bundle of `gpu_check.sh --tiny` (micro corpus), "
                        "fast compression: seconds")
    args = parser.parse_args()
    python = args.python or (f"{sys.version_info.major}.{sys.version_info.minor}" if args.smoke else "3.12")
    out = args.out or (Path(tempfile.gettempdir()) / "gpu_bundle_smoke" if args.smoke else BUNDLE)
    preset = 0 if args.smoke else 6  # xz's fastest, or its default
    out.mkdir(parents=True, exist_ok=True)
    versions = {}
    with tarfile.open(out / "site.tar.xz", "w:xz", preset=preset) as archive:
        for name in DISTRIBUTIONS:
            versions[name] = add_installed(archive, name)
        for name in PER_PYTHON:
            versions[name] = add_wheel(archive, name, python)
    files = data_files([f"experiment={RUN}", *([*TINY_DATA, *TINY] if args.smoke else DATA)])
    with tarfile.open(out / "data.tar.xz", "w:xz", preset=preset) as archive:
        for arcname, path in files:
            archive.add(path, arcname=arcname)
    sizes = {p.name: p.stat().st_size for p in sorted(out.glob("*.tar.xz"))}
    (out / "bundle.json").write_text(json.dumps(
        {"python": python, "smoke": args.smoke, "packages": versions, "data_files": len(files), "bytes": sizes},
        indent=2) + "\n")
    total = sum(sizes.values())
    print(f"{out}: {', '.join(f'{k} {v / 2**20:.1f} MiB' for k, v in sizes.items())}; packages "
          f"{', '.join(f'{k} {v}' for k, v in versions.items())}; {len(files)} data files")
    if total > LIMIT:
        raise SystemExit(f"error: the bundle is {total / 2**20:.1f} MiB, over the 64 MiB cap")


if __name__ == "__main__":
    main()
