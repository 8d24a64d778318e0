"""Decoded RusLit works: one document per file, headers stripped, paragraphs kept one per line."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

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


def decode(raw: bytes) -> tuple[str, str] | None:
    """Decode UTF-8, or cp1251 when the bytes are not UTF-8 and read as Russian; None if neither."""
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
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
    decoded = decode(file.read_bytes())
    if decoded is None:
        return None
    text, encoding = decoded
    parts = Path(path).parts  # ruslit/<genre>/<author>/<title>.txt
    genre, author, title = parts[-3], parts[-2], Path(path).stem
    return Document(path, genre, author, title, clean(text, title, genre), encoding)
