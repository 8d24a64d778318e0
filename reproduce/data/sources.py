"""Document sources: every raw document of one configured source (data.sources.<name>), streamed in a fixed order.

Each kind of source is one class here, registered by its ``kind`` when it is defined (``KINDS``): a manifest of
checked files (RusLit), text files, JSON Lines, Parquet, or a Hugging Face dataset (hub or local folder). A class
names the config field it cannot do without (``needs``), yields its documents (``records``: a picklable ``Record``
with a stable id "<source>:<where>", or a ``Skip`` for a dirty one that preparation records and passes over; memory
holds one file, one line or one record batch at a time), describes everything that determines them (``fingerprint``,
content checksums included, so the prepared set can be named by its hash) and checks itself cheaply before any work
(``check``). Adding a kind is one class and one YAML in conf/data/. Cleaning (reproduce/data/corpus.py ``to_text``)
happens later, in worker processes.

No torch or transformers here; ``datasets`` and ``pyarrow`` are imported only by the kinds that need them.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from reproduce.core.checksums import sha256_of
from reproduce.core.errors import UserError
from reproduce.core.io import MAX_INPUT, open_input, read_input
from reproduce.core.paths import config_file
from reproduce.data.corpus import CLEANERS
from reproduce.data.manifest import Resolver, read_manifest
from reproduce.data.records import Record, Skip

if TYPE_CHECKING:
    from reproduce.config.schema import SourceConfig

_BATCH_ROWS = 256  # Parquet and Hugging Face rows read at a time
_GZIP = (".gz",)  # .jsonl.gz, .json.gz: read through gzip
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", int: "a number",
               float: "a number", type(None): "null"}
KINDS: dict[str, type[Source]] = {}  # kind -> its class, filled as the classes below are defined


class Source:
    """One configured source of documents; a subclass with a ``kind`` registers itself in ``KINDS``."""

    kind: ClassVar[str] = ""
    needs: ClassVar[str]  # the SourceConfig field a source of this kind cannot do without
    has_fields: ClassVar[bool] = False  # rows of named fields: text_field (and id_field) apply
    example: ClassVar[str] = "txt"  # the file suffix a hint shows

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            KINDS[cls.kind] = cls

    def __init__(self, name: str, config: SourceConfig):
        self.name, self.config = name, config

    def records(self, resolver: Resolver) -> Iterator[Record | Skip]:
        """Every record in a fixed order; the same inputs give the same records."""
        raise NotImplementedError

    def content(self, resolver: Resolver) -> dict[str, Any]:
        """What determines the records besides the settings: content checksums, or a pinned revision."""
        raise NotImplementedError

    def check(self, resolver: Resolver) -> None:
        """Cheap pre-flight check before any work; one-line UserErrors naming data.sources.<name>.<key>."""
        raise NotImplementedError

    def fingerprint(self, resolver: Resolver) -> dict[str, Any]:
        """JSON-serialisable description of everything that determines the source's records and their text."""
        out: dict[str, Any] = {"kind": self.kind, "clean": self.config.clean}
        if self.has_fields:
            out.update(text_field=self.config.text_field, id_field=self.config.id_field)
        return {**out, **self.content(resolver)}


def open_source(name: str, config: SourceConfig) -> Source:
    """The source of ``data.sources.<name>``, of its kind's class."""
    if config.kind not in KINDS:
        raise UserError(f"data.sources.{name}.kind={config.kind!r}: choose one of {', '.join(KINDS)}")
    if config.clean not in CLEANERS:
        raise UserError(f"data.sources.{name}.clean={config.clean!r}: choose one of {', '.join(CLEANERS)}")
    return KINDS[config.kind](name, config)


class ManifestSource(Source):
    """Files listed in a manifest TSV (path, sha256, url), resolved from the cache, the mirror or their URL."""

    kind, needs = "manifest", "manifest"

    def _manifest(self) -> Path:
        if not self.config.manifest:
            raise UserError(f"data.sources.{self.name}.manifest: a manifest source needs a TSV of (path, sha256, "
                            f"url); set data.sources.{self.name}.manifest")
        path = config_file(self.config.manifest)
        if not path.is_file():
            raise UserError(f"data.sources.{self.name}.manifest={self.config.manifest!r}: not found in the working "
                            "directory or conf/; fix the path")
        return path

    def records(self, resolver: Resolver) -> Iterator[Record | Skip]:
        for entry in read_manifest(self._manifest()):
            raw = read_input(resolver.resolve(entry), MAX_INPUT)
            yield Record(f"{self.name}:{entry.path}", self.name, raw, entry.path, None)

    def content(self, resolver: Resolver) -> dict[str, Any]:
        return {"files": [[e.path, e.sha256] for e in read_manifest(self._manifest())]}

    def check(self, resolver: Resolver) -> None:
        for entry in read_manifest(self._manifest()):
            resolver.resolve(entry)


class FileSource(Source):
    """Files or globs (``paths``): the matched files, each glob's matches sorted, a file matched twice read once."""

    needs = "paths"

    def files(self) -> list[tuple[str, Path]]:
        return _matched_files(self.name, self.config, self.example)

    def content(self, resolver: Resolver) -> dict[str, Any]:
        return {"files": [[shown, sha256_of(file)] for shown, file in self.files()]}

    def check(self, resolver: Resolver) -> None:
        self.files()


class TextSource(FileSource):
    """Text files, one document each."""

    kind = "text"

    def records(self, resolver: Resolver) -> Iterator[Record | Skip]:
        for shown, file in self.files():
            yield Record(f"{self.name}:{shown}", self.name, read_input(file, MAX_INPUT), shown, None)


class JsonlSource(FileSource):
    """JSON Lines (plain or gzip), one document a line in its ``text_field``."""

    kind, has_fields, example = "jsonl", True, "jsonl"

    def records(self, resolver: Resolver) -> Iterator[Record | Skip]:
        for shown, file in self.files():
            yield from _jsonl_records(self.name, self.config, shown, file)

    def check(self, resolver: Resolver) -> None:
        for shown, file in self.files():  # each file's first record has the fields
            for number, value, problem in _json_lines(self.name, shown, file):
                if problem is None and isinstance(value, dict):
                    _field_record(self.name, self.config, value, f"{shown} line {number}", "", shown, number)
                    break


class ParquetSource(FileSource):
    """Parquet files, one document a row in its ``text_field`` column."""

    kind, has_fields, example = "parquet", True, "parquet"

    def records(self, resolver: Resolver) -> Iterator[Record | Skip]:
        for shown, file in self.files():
            yield from _parquet_records(self.name, self.config, shown, file)

    def check(self, resolver: Resolver) -> None:
        for shown, file in self.files():
            _parquet_file(self.name, shown, file, _parquet_columns(self.config))


# ----------------------------------------------------------------------------------------------- helpers


def _matched_files(name: str, source: SourceConfig, suffix: str) -> list[tuple[str, Path]]:
    """(path as matched, file) for every path or glob, each glob's matches sorted, a file matched twice kept once."""
    if not source.paths:
        raise UserError(f"data.sources.{name}.paths: a {source.kind} source needs files or globs; set "
                        f"data.sources.{name}.paths=[corpus/*.{suffix}]")
    seen: set[Path] = set()
    files: list[tuple[str, Path]] = []
    for pattern in source.paths:
        expanded = os.path.expanduser(str(pattern))
        matches = sorted(p for p in glob.glob(expanded, recursive=True) if os.path.isfile(p))
        if not matches and os.path.isfile(expanded):  # a file whose name has glob characters, e.g. "a[1].txt"
            matches = [expanded]
        if not matches:
            hint = ("is a folder; give a glob of its files, e.g. " + repr(os.path.join(str(pattern), "*"))
                    if os.path.isdir(expanded) else f"matches no file (relative paths: from {os.getcwd()})")
            raise UserError(f"data.sources.{name}.paths: {str(pattern)!r} {hint}; fix the path or glob")
        for shown in matches:
            resolved = Path(shown).resolve()
            if resolved not in seen:
                seen.add(resolved)
                files.append((shown, Path(shown)))
    return files


def _open_lines(file: Path) -> IO[bytes]:
    if file.name.endswith(_GZIP):
        open_input(file).close()  # checked first: a regular file, not a FIFO that would hang
        return gzip.open(file, "rb")
    return open_input(file)


def _json_lines(name: str, shown: str, file: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(1-based line, parsed value, None) or (line, None, why the line is not JSON); blank lines are passed over."""
    try:
        with _open_lines(file) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield number, json.loads(line), None
                except UnicodeDecodeError:
                    yield number, None, "line is not UTF-8 text"
                except json.JSONDecodeError as exc:
                    yield number, None, f"line is not JSON ({exc.msg})"
                except RecursionError:
                    yield number, None, "line is not JSON (nested too deeply)"
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise UserError(f"data.sources.{name}.paths: {shown} is not a readable gzip file ({exc}); replace it or "
                        "remove it from the paths") from None


def _missing_field(name: str, key: str, field: str, where: str, present: list[str]) -> UserError:
    fields = ", ".join(repr(f) for f in present[:20]) + (", ..." if len(present) > 20 else "") or "none"
    return UserError(f"{where}: no field {field!r} (fields: {fields}); set data.sources.{name}.{key}")


def _jsonl_records(name: str, source: SourceConfig, shown: str, file: Path) -> Iterator[Record | Skip]:
    for number, value, problem in _json_lines(name, shown, file):
        where_id = f"{name}:{shown}:{number}"
        if problem is None and not isinstance(value, dict):
            problem = f"line is {_JSON_TYPES.get(type(value), type(value).__name__)}, not a JSON object"
        if problem is not None:
            yield Skip(where_id, name, shown, number, problem)
            continue
        yield _field_record(name, source, value, f"{shown} line {number}", where_id, shown, number)


def _field_record(name: str, source: SourceConfig, row: dict[str, Any], where: str, default_id: str, path: str,
                  line: int) -> Record | Skip:
    """A record (or Skip) from one row of fields: jsonl object, Parquet row, dataset row."""
    if source.text_field not in row:
        raise _missing_field(name, "text_field", source.text_field, where, list(row))
    record_id = default_id
    if source.id_field is not None:
        value = row.get(source.id_field)
        if value is None:
            if source.id_field not in row:
                raise _missing_field(name, "id_field", source.id_field, where, list(row))
            raise UserError(f"{where}: field {source.id_field!r} is null, so the record has no id; fill it or set "
                            f"data.sources.{name}.id_field=null (ids from file and line)")
        record_id = f"{name}:{value}"
    text = row[source.text_field]
    if not isinstance(text, str):
        kind = _JSON_TYPES.get(type(text), type(text).__name__)
        reason = (f"field {source.text_field!r} is null" if text is None
                  else f"field {source.text_field!r} is {kind}, not a string")
        return Skip(record_id, name, path, line, reason)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:  # a lone surrogate ("\\ud800" in JSON): no text, and no tokenizer takes it
            return Skip(record_id, name, path, line, f"field {source.text_field!r} holds a lone surrogate "
                        f"({text[exc.start]!r} at character {exc.start}), which is not text")
    return Record(record_id, name, text, path, line)


def _parquet_columns(source: SourceConfig) -> list[str]:
    return [source.text_field] + ([source.id_field] if source.id_field not in (None, source.text_field) else [])


def _parquet_file(name: str, shown: str, file: Path, columns: list[str]) -> Any:
    """The open ParquetFile, its columns checked."""
    import pyarrow
    import pyarrow.parquet as pq

    try:
        open_input(file).close()  # checked first: a regular file, not a FIFO that would hang
        pf = pq.ParquetFile(file)
    except (pyarrow.ArrowException, OSError) as exc:
        raise UserError(f"data.sources.{name}.paths: {shown} is not a readable Parquet file "
                        f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); replace it or remove it "
                        "from the paths") from None
    present = pf.schema_arrow.names
    for column, key in zip(columns, ("text_field", "id_field"), strict=False):
        if column not in present:
            raise _missing_field(name, key, column, f"{shown} (Parquet columns)", present)
    return pf


def _parquet_records(name: str, source: SourceConfig, shown: str, file: Path) -> Iterator[Record | Skip]:
    columns = _parquet_columns(source)
    pf = _parquet_file(name, shown, file, columns)
    row = 0
    for batch in pf.iter_batches(columns=columns, batch_size=_BATCH_ROWS):
        values = {c: batch.column(c).to_pylist() for c in columns}
        for i in range(batch.num_rows):
            fields = {c: values[c][i] for c in columns}
            yield _field_record(name, source, fields, f"{shown} row {row}", f"{name}:{shown}:{row}", shown, row)
            row += 1


# -------------------------------------------------------------------------------------------- Hugging Face

_LOCAL_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")


def _hf_folder(name: str, source: SourceConfig) -> Path | None:
    """The local folder the dataset names, or None for a hub id. A path that looks local (absolute, ./, ../, ~)
    or exists is a folder; it must exist."""
    if not source.dataset:
        raise UserError(f"data.sources.{name}.dataset: an hf source needs a hub id (e.g. 'org/name') or a local "
                        f"folder; set data.sources.{name}.dataset")
    path = Path(source.dataset).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise UserError(f"data.sources.{name}.dataset={source.dataset!r}: is a file, not a folder; give the folder "
                        "of a save_to_disk dataset or of data files")
    if str(source.dataset).startswith(_LOCAL_PREFIXES):
        raise UserError(f"data.sources.{name}.dataset={source.dataset!r}: no such folder (relative paths: from "
                        f"{os.getcwd()}); fix the path")
    return None


def _folder_files(folder: Path) -> list[str]:
    """Every file under the folder (relative, sorted), hidden files and folders excluded as ``datasets`` does."""
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [os.path.relpath(os.path.join(root, n), folder) for n in names if not n.startswith(".")]
    return sorted(Path(f).as_posix() for f in files)


def _open_hf(name: str, source: SourceConfig) -> Any:
    """A ``datasets.Dataset`` (a save_to_disk folder: memory-mapped) or a streaming ``IterableDataset``."""
    folder = _hf_folder(name, source)  # settings first: importing datasets takes a second
    import datasets

    key = f"data.sources.{name}.dataset={source.dataset!r}"
    if folder is not None and ((folder / "dataset_dict.json").is_file()
                               or ((folder / "dataset_info.json").is_file() and (folder / "state.json").is_file())):
        loaded = datasets.load_from_disk(str(folder))
        if isinstance(loaded, datasets.DatasetDict):
            if source.split not in loaded:
                raise UserError(f"data.sources.{name}.split={source.split!r}: {folder} has the splits "
                                f"{', '.join(loaded)}; choose one")
            loaded = loaded[source.split]
        return loaded
    try:  # datasets >= 4 runs no dataset scripts, so no remote code is ever trusted
        return datasets.load_dataset(str(folder) if folder is not None else source.dataset, name=source.config_name,
                                     split=source.split, revision=None if folder is not None else source.revision,
                                     streaming=True)
    except Exception as exc:  # any failure to open: a wrong setting, or the network is missing
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        offline = " (offline: HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set)" if _offline() else ""
        raise UserError(f"{key}: cannot be opened{offline}: {type(exc).__name__}: {message[:300]}; check the hub "
                        "id, config_name, split and revision, go online, or point it at a local folder") from None


def _offline() -> bool:
    return any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _hf_records(name: str, source: SourceConfig) -> Iterator[Record | Skip]:
    import datasets

    dataset = _open_hf(name, source)
    shown = str(source.dataset)
    columns = _parquet_columns(source)
    if isinstance(dataset, datasets.Dataset):  # memory-mapped Arrow: a batch of rows at a time
        _check_columns(name, source, dataset.column_names)
        row = 0
        for batch in dataset.select_columns(columns).iter(batch_size=_BATCH_ROWS):
            for i in range(len(batch[columns[0]])):
                fields = {c: batch[c][i] for c in columns}
                yield _field_record(name, source, fields, f"{shown} row {row}", f"{name}:{row}", shown, row)
                row += 1
        return
    if dataset.column_names is not None and all(c in dataset.column_names for c in columns):
        dataset = dataset.select_columns(columns)
    for row, fields in enumerate(dataset):  # streaming: one row at a time
        yield _field_record(name, source, fields, f"{shown} row {row}", f"{name}:{row}", shown, row)


def _check_columns(name: str, source: SourceConfig, present: list[str]) -> None:
    for column, key in zip(_parquet_columns(source), ("text_field", "id_field"), strict=False):
        if column not in present:
            raise _missing_field(name, key, column, f"{source.dataset} (dataset columns)", present)


def _check_hf(name: str, source: SourceConfig) -> None:
    if _hf_folder(name, source) is None and not source.revision:
        # the prepared set is named by the fingerprint, which names the hub data by its revision alone
        raise UserError(f"data.sources.{name}.revision: the hub dataset {source.dataset!r} needs a pinned revision, "
                        "or a later prepare would reuse data prepared from an older version; set "
                        f"data.sources.{name}.revision=<commit sha> (the dataset page's 'Files and versions')")
    dataset = _open_hf(name, source)
    import datasets

    if isinstance(dataset, datasets.Dataset):
        _check_columns(name, source, dataset.column_names)
        return
    for row, fields in enumerate(dataset):  # streaming: the first row, as for jsonl's first record
        _field_record(name, source, fields, f"{source.dataset} row {row}", "", str(source.dataset), row)
        return


class HfSource(Source):
    """A Hugging Face dataset: streamed from the hub at a pinned revision, or a local save_to_disk or data folder."""

    kind, needs, has_fields = "hf", "dataset", True

    def records(self, resolver: Resolver) -> Iterator[Record | Skip]:
        return _hf_records(self.name, self.config)

    def content(self, resolver: Resolver) -> dict[str, Any]:
        source = self.config
        out: dict[str, Any] = {"dataset": source.dataset, "config_name": source.config_name,
                               "split": source.split}
        folder = _hf_folder(self.name, source)
        if folder is None:
            return {**out, "revision": source.revision}
        return {**out, "files": [[rel, sha256_of(folder / rel)] for rel in _folder_files(folder)]}

    def check(self, resolver: Resolver) -> None:
        _check_hf(self.name, self.config)
