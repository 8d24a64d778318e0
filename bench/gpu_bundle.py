"""The offline bundle of bench/gpu_check.sh, for a GPU machine that can fetch nothing: the Python packages its image
lacks and the data files the check reads, packed into .gpu_site/ (gitignored), to be copied to the GPU machine with
the checkout.

- site.tar.xz: hydra-core, omegaconf, lm-eval, datasets and what the check imports through them that the image
  (torch, Lightning, transformers, tokenizers, pandas, pyarrow, scikit-learn, ...) lacks, copied from this
  environment (pure Python; lm-eval without its own task folders: the check builds its tasks from
  reproduce/evaluate/tasks/). multiprocess follows the Python version: its installed version comes as the wheel for
  the image's Python (``pip download``, the only thing fetched, here).
- data.tar.xz: every file of the manifests experiment=gpu_check reads (RusLit, ruGPT-3's tokenizer, the ru_local
  benchmarks), from the cache or the mirror, sha256 checked, laid out as the mirror (REPRODUCE_DATA_MIRROR).

    .venv/bin/python bench/gpu_bundle.py                 # .gpu_site/{site,data}.tar.xz, bundle.json
    .venv/bin/python bench/gpu_bundle.py --python 3.12   # the GPU image's Python (its default)
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
sys.path.insert(0, str(ROOT))
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
    """The wheel of the installed version of ``name`` for ``python``, unpacked into the archive; its version."""
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


def data_files() -> list[tuple[str, Path]]:
    """(mirror path, local file) of every manifest row that experiment=gpu_check reads, sha256 checked."""
    from reproduce.compose import compose_config
    from reproduce.data.manifest import make_resolver, read_manifest
    from reproduce.paths import config_file
    from reproduce.preflight import manifests_needed

    cfg = compose_config("reproduce", ["experiment=gpu_check"])
    manifests = [config_file(s.manifest) for s in cfg.data.sources.values() if s.manifest]
    manifests += manifests_needed(cfg, ("prepare", "eval"))
    resolver = make_resolver(cfg.data)
    return sorted({entry.path: resolver.resolve(entry) for m in manifests for entry in read_manifest(m)}.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default="3.12", help="the GPU image's Python version")
    parser.add_argument("--out", type=Path, default=BUNDLE)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    versions = {}
    with tarfile.open(args.out / "site.tar.xz", "w:xz") as archive:
        for name in DISTRIBUTIONS:
            versions[name] = add_installed(archive, name)
        for name in PER_PYTHON:
            versions[name] = add_wheel(archive, name, args.python)
    files = data_files()
    with tarfile.open(args.out / "data.tar.xz", "w:xz") as archive:
        for arcname, path in files:
            archive.add(path, arcname=arcname)
    sizes = {p.name: p.stat().st_size for p in sorted(args.out.glob("*.tar.xz"))}
    (args.out / "bundle.json").write_text(json.dumps(
        {"python": args.python, "packages": versions, "data_files": len(files), "bytes": sizes}, indent=2) + "\n")
    total = sum(sizes.values())
    print(f"{args.out}: {', '.join(f'{k} {v / 2**20:.1f} MiB' for k, v in sizes.items())}; packages "
          f"{', '.join(f'{k} {v}' for k, v in versions.items())}; {len(files)} data files")
    if total > LIMIT:
        raise SystemExit(f"error: the bundle is {total / 2**20:.1f} MiB, over the 64 MiB cap")


if __name__ == "__main__":
    main()
