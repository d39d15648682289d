"""Shared pieces of the readers: the reader registry, text decoding, records -> Session."""
from __future__ import annotations

import codecs
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from ..errors import InputError, UnknownFormatError
from ..session import Session, Turn, Utterance, Word


@dataclass
class Record:
    """One input record (line, row, cue, segment) before turns are built."""
    speaker: str | None
    text: str
    source: int
    start: float | None = None
    end: float | None = None
    words: list[Word] = field(default_factory=list)
    role: str | None = None  # a role the file states outright (e.g. a "role" column)


class Reader(Protocol):
    def __call__(self, path: Path, **options) -> Session: ...


@dataclass
class ReaderSpec:
    name: str
    read: Callable[..., Session]
    extensions: tuple[str, ...]
    sniff: Callable[[Path, str | None], bool] | None = None  # (path, decoded head or None) -> bool
    description: str = ""


READERS: dict[str, ReaderSpec] = {}


def register_reader(name: str, extensions: tuple[str, ...] = (), sniff=None, description: str = ""):
    """Decorator: register a reader under a format name (what --format takes)."""
    def deco(fn):
        READERS[name] = ReaderSpec(name, fn, tuple(e.lower() for e in extensions), sniff, description)
        return fn
    return deco


def decode_bytes(data: bytes, path: str | os.PathLike | None = None) -> tuple[str, str]:
    """Decode UTF-8 (with or without BOM), UTF-16 (BOM or heuristic) or cp1252; return (text, encoding)."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8):].decode("utf-8"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16"), "utf-16"
    if len(data) >= 4 and data[1:2] == b"\x00" and data[3:4] == b"\x00" and data[0:1] != b"\x00":
        return data.decode("utf-16-le"), "utf-16-le"
    if len(data) >= 4 and data[0:1] == b"\x00" and data[2:3] == b"\x00":
        return data.decode("utf-16-be"), "utf-16-be"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise InputError(path, f"cannot decode text (tried UTF-8, UTF-16, cp1252): byte {exc.start}") from None


def read_text(path: str | os.PathLike) -> str:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(p, "file not found") from None
    except IsADirectoryError:
        raise InputError(p, "is a directory, not a transcript file") from None
    if b"\x00" in data[:4096] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # NULs without a UTF-16 pattern: binary
        text, enc = decode_bytes(data, p)
        if enc == "utf-8" and "\x00" in text:
            raise InputError(p, "looks like a binary file, not a text transcript")
        return text
    return decode_bytes(data, p)[0]


def session_from_records(records: list[Record], path: str | os.PathLike, fmt: str,
                         session_id: str | None = None, meta: dict | None = None) -> Session:
    """One turn per record (diarize merges them); speakers registered in order of appearance."""
    p = Path(path)
    records = [r for r in records if r.text and r.text.strip()]
    if not records:
        raise InputError(p, "no utterances found (empty or unrecognised transcript)")
    s = Session(id=session_id or p.stem, source_path=str(p), source_format=fmt, meta=dict(meta or {}))
    inferred = _infer_end_times(records)
    if inferred:
        s.meta["end_times"] = f"{inferred} record end times taken from the next record's start"
    for r in records:
        spk = (r.speaker or "").strip() or "UNKNOWN"
        text = " ".join(r.text.split())
        s.turns.append(Turn(speaker=spk, text=text, utterances=[Utterance(
            text=text, speaker=spk, char_start=0, char_end=len(text), start=r.start, end=r.end,
            source=r.source, words=list(r.words))]))
        if r.role:
            s.ensure_speakers()
            sp = s.speakers[spk]
            sp.role, sp.role_confidence, sp.role_method = r.role, 1.0, "label"
    s.ensure_speakers()
    if all(t.speaker == "UNKNOWN" for t in s.turns):
        s.meta["unlabelled"] = True
    return s


def _infer_end_times(records: list[Record]) -> int:
    """Transcripts that stamp only start times: a record ends where the next one starts."""
    n = 0
    for r, nxt in zip(records, records[1:]):
        if r.start is not None and r.end is None and nxt.start is not None and nxt.start >= r.start:
            r.end = nxt.start
            n += 1
    return n


def detect_format(path: Path) -> str:
    """Pick a reader by extension, then by content sniffing where extensions are ambiguous."""
    ext = "".join(path.suffixes[-2:]).lower() if len(path.suffixes) > 1 else path.suffix.lower()
    head: str | None = None
    try:
        raw = path.read_bytes()[:65536]
        head = decode_bytes(raw, path)[0] if raw and path.suffix.lower() != ".docx" else None
    except (OSError, InputError):
        head = None
    candidates = [spec for spec in READERS.values()
                  if path.suffix.lower() in spec.extensions or ext in spec.extensions]
    sniffed = [spec for spec in candidates if spec.sniff and spec.sniff(path, head)]
    if sniffed:
        return sniffed[0].name
    plain = [spec for spec in candidates if spec.sniff is None]
    if plain:
        return plain[0].name
    if candidates:
        return candidates[-1].name
    # unknown extension: sniff everything
    for spec in READERS.values():
        if spec.sniff and spec.sniff(path, head):
            return spec.name
    raise UnknownFormatError(path, f"unknown transcript format {path.suffix or '(no extension)'!r}; "
                                   f"use --format with one of: {', '.join(sorted(READERS))}")
