"""Decoded documents: RusLit works (one document per file, headers stripped, paragraphs kept one per line), and
``to_text``, which turns any source's raw record (reproduce/data/records.py) into cleaned text or a reason to skip it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from reproduce.core.io import MAX_INPUT, read_input
from reproduce.data.records import Record

_FOOTNOTE = re.compile(r"\[\d{1,3}\]|\{\d{1,3}\}")
_SPACES = re.compile(r"[ \t\u00a0]+")
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
_LETTER = re.compile(r"[^\W\d_]")
_LOWER_CYRILLIC = re.compile(r"[а-яё]")
_INDENT = re.compile(r"^[ \t]{3,}\S")
_HEADER_LINES = 6  # a header is at most this many leading non-empty lines
_SENTENCE_END = (".", "!", "?", "…")
_CLAUSE_END = (*_SENTENCE_END, ",", ";", ":", "»", '"')


@dataclass(frozen=True)
class Document:
    path: str  # manifest path, e.g. "ruslit/prose/Chekhov/Агафья.txt"
    genre: str  # prose | poems | publicism
    author: str  # folder name, e.g. "Chekhov"
    title: str  # file stem
    text: str  # paragraphs joined by "\n"
    encoding: str


BOM = "\ufeff"
STRAY_SHARE = 0.01  # a file whose invalid UTF-8 is at most this share of its non-ASCII characters is UTF-8 gone bad


def stray_utf8(raw: bytes) -> str | None:
    """For bytes that are not UTF-8: why they are UTF-8 with stray bytes rather than another encoding (a valid UTF-8
    character for each of nearly all non-ASCII runs: at most ``STRAY_SHARE`` of them invalid), or None. cp1251 Russian
    reads the other way: nearly every one of its letters is an invalid UTF-8 byte."""
    try:
        raw.decode("utf-8")
        return None
    except UnicodeDecodeError as exc:
        first = exc.start
    text = raw.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd") - raw.count("\ufffd".encode())
    valid = len(text) - len(text.encode("ascii", errors="ignore")) - text.count("\ufffd")
    if invalid <= 0 or invalid > STRAY_SHARE * (valid + invalid):
        return None
    return (f"UTF-8 with {invalid} invalid byte sequence(s) (the first at byte {first}), not decoded as another "
            "encoding; fix those bytes")


def decode(raw: bytes) -> tuple[str, str] | None:
    """Decode UTF-8 (a leading byte-order mark dropped), or cp1251 when the bytes are not UTF-8 and read as Russian;
    None if neither, or if they are UTF-8 with a few stray bytes (``stray_utf8``)."""
    try:
        return raw.decode("utf-8").removeprefix(BOM), "utf-8"
    except UnicodeDecodeError:
        if stray_utf8(raw):
            return None
    text = raw.decode("cp1251", errors="replace")
    letters = len(_LETTER.findall(text))
    if "\ufffd" not in text and letters and len(_CYRILLIC.findall(text)) / letters > 0.5:
        return text, "cp1251"
    return None


def _is_header_line(line: str, title: str) -> bool:
    """An author line, an upper-case title or section line, or the work's title."""
    words = line.split()
    if len(words) > 8 or line.rstrip().endswith(_SENTENCE_END) and not line.isupper():
        return False
    no_lower = not _LOWER_CYRILLIC.search(line)
    is_title = re.sub(r"\W+", "", line).lower() == re.sub(r"\W+", "", title).lower()
    looks_like_name = (len(words) <= 3 and all(w[:1].isupper() for w in words)
                       and not line.rstrip().endswith(_CLAUSE_END))
    return no_lower or is_title or looks_like_name


def _paragraphs(lines: list[str], genre: str) -> list[str]:
    """Join hard-wrapped prose (paragraphs start with an indent); otherwise one paragraph per line."""
    nonempty = [line for line in lines if line.strip()]
    indented = sum(1 for line in nonempty if _INDENT.match(line))
    hard_wrapped = genre != "poems" and nonempty and 0.05 < indented / len(nonempty) < 0.8
    paragraphs: list[list[str]] = []
    for line in lines:
        if not line.strip():
            if hard_wrapped:
                paragraphs.append([])
            continue
        if not hard_wrapped or _INDENT.match(line) or not paragraphs:
            paragraphs.append([line])
        else:
            paragraphs[-1].append(line)
    cleaned = (_SPACES.sub(" ", _FOOTNOTE.sub("", " ".join(p))).strip() for p in paragraphs)
    return [p for p in cleaned if p]


def clean(text: str, title: str, genre: str) -> str:
    """Strip the per-file header (author, title lines) and footnote markers; keep paragraphs."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x85", "\n").split("\n")
    start, seen = 0, 0
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if seen >= _HEADER_LINES or not _is_header_line(line.strip(), title):
            start = i
            break
        seen += 1
    else:
        start = len(lines)
    return "\n".join(_paragraphs(lines[start:], genre))


def load_document(path: str, file: Path) -> Document | None:
    """Read one manifest file; None if it cannot be decoded (the caller records a warning)."""
    decoded = decode(read_input(file, MAX_INPUT))
    if decoded is None:
        return None
    text, encoding = decoded
    parts = Path(path).parts  # ruslit/<genre>/<author>/<title>.txt
    genre, author, title = parts[-3], parts[-2], Path(path).stem
    return Document(path, genre, author, title, clean(text, title, genre), encoding)


# ------------------------------------------------------------------------------------ streaming text conversion

CLEANING_VERSION = 1  # bump whenever to_text's output changes (it is part of the prepared set's hash)
CLEANERS = ("ruslit", "plain")
_BINARY_PROBE = 1 << 16  # a NUL byte in the first 64 KiB marks a binary file
# decode()'s cp1251 test on bytes: cp1251 is one byte per character, so counting the bytes whose character is
# undefined, a letter, or Cyrillic gives decode()'s counts without building the text (fast on huge documents).
_CP1251 = bytes(range(256)).decode("cp1251", errors="replace")
_CP1251_UNDEFINED = bytes(b for b, c in enumerate(_CP1251) if c == "\ufffd")
# each byte to 0 (not a letter), 1 (a letter, not Cyrillic) or 2 (a Cyrillic letter)
_CP1251_CLASS = bytes(2 if _CYRILLIC.match(c) else 1 if _LETTER.match(c) else 0 for c in _CP1251)


@dataclass(frozen=True)
class Text:
    text: str | None  # the cleaned document, or None when skipped
    encoding: str | None  # "utf-8" | "cp1251" (bytes decoded) | None (raw was already str)
    skipped: str | None  # why it was skipped ("empty", "binary (NUL bytes)", ...); None when kept


def _long_line(text: str | bytes, limit: int) -> tuple[int, int] | None:
    """(1-based number, length) of the first line longer than ``limit``, or None. Lines end at \\n, \\r\\n or \\r.
    Linear: each step looks back from ``limit`` characters ahead for the last line break, so a document is scanned
    about once however long its lines are."""
    if len(text) <= limit:
        return None
    nl = "\n" if isinstance(text, str) else b"\n"
    cr = "\r" if isinstance(text, str) else b"\r"
    if cr in text:
        text = text.replace(cr + nl, nl).replace(cr, nl)
    start, size = 0, len(text)
    while size - start > limit:
        brk = text.rfind(nl, start, start + limit + 1)
        if brk == -1:  # no break within limit + 1 characters: the line from start is too long
            end = text.find(nl, start)
            return text.count(nl, 0, start) + 1, (size if end == -1 else end) - start
        start = brk + 1
    return None


def _clean_plain(text: str) -> str:
    """Newlines normalised, runs of spaces, tabs and no-break spaces made one space, lines stripped, empty ones
    dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ").replace("\u00a0", " ")
    while "  " in text:  # runs of spaces to one (as _SPACES.sub(" ", ...), in C: each pass halves every run)
        text = text.replace("  ", " ")
    return "\n".join(line for line in (raw.strip() for raw in text.split("\n")) if line)


def to_text(record: Record, clean_kind: str, max_line_chars: int) -> Text:
    """One raw record to its cleaned text, or the reason it is skipped. Bytes are checked for NUL bytes (binary),
    then decoded (UTF-8, else cp1251 Russian); any line longer than ``max_line_chars`` skips the document (checked
    before cleaning: BPE on one huge line is quadratic). ``ruslit`` gives exactly ``load_document``'s text for a
    manifest file (genre and title from the record's path); ``plain`` only normalises whitespace."""
    if clean_kind not in CLEANERS:
        raise ValueError(f"unknown cleaner {clean_kind!r}; choose one of {', '.join(CLEANERS)}")
    raw, encoding = record.raw, None
    if isinstance(raw, bytes):
        if b"\x00" in raw[:_BINARY_PROBE]:
            return Text(None, None, "binary (NUL bytes)")
        try:
            text, encoding = raw.decode("utf-8").removeprefix(BOM), "utf-8"
        except UnicodeDecodeError:
            if stray := stray_utf8(raw):
                return Text(None, None, stray)
            if not _cp1251_russian(raw):
                return Text(None, None, "neither UTF-8 nor cp1251 Russian text")
            too_long = _long_line(raw, max_line_chars)  # cp1251: a character per byte, checked before decoding
            if too_long:
                return Text(None, "cp1251", _too_long(*too_long, max_line_chars))
            text, encoding = raw.decode("cp1251"), "cp1251"
    else:
        text = raw.removeprefix(BOM)
    too_long = _long_line(text, max_line_chars)
    if too_long:
        return Text(None, encoding, _too_long(*too_long, max_line_chars))
    if clean_kind == "ruslit":
        parts = Path(record.path).parts  # ruslit/<genre>/<author>/<title>.txt
        cleaned = clean(text, Path(record.path).stem, parts[-3] if len(parts) >= 3 else "")
    else:
        cleaned = _clean_plain(text)
    if not cleaned:
        return Text(None, encoding, "empty")
    return Text(cleaned, encoding, None)


def _cp1251_russian(raw: bytes) -> bool:
    """decode()'s test for bytes that are not UTF-8, counted on the bytes: no undefined cp1251 byte, and more than
    half of the letters Cyrillic."""
    if any(b in raw for b in _CP1251_UNDEFINED):
        return False
    classes = raw.translate(_CP1251_CLASS)
    cyrillic = classes.count(2)
    letters = cyrillic + classes.count(1)
    return bool(letters) and cyrillic / letters > 0.5


def _too_long(line: int, length: int, limit: int) -> str:
    return f"line {line} has {length:,} characters, over data.max_line_chars={limit:,}; split it or raise the limit"
