"""Shared pieces of the readers: the reader registry, input limits, text decoding, records -> Session."""

from __future__ import annotations

import codecs
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ..errors import InputError, LimitError, UnknownFormatError
from ..session import Session, Turn, Utterance, Word

# ---- limits --------------------------------------------------------------------------------------
# Defaults for the reader options of the same name (lower case). They are far above real sessions (a
# one-hour transcript is ~100 KB and ~1,000 records) and stop hostile or corrupt files from hanging or
# exhausting memory. Every reader takes them as keyword options; None switches a limit off.
MAX_BYTES = 64 * 2**20  # file size (each file: transcript, words file)
MAX_LINE_CHARS = 1_000_000  # characters in one line (text formats) or one .docx paragraph
MAX_DEPTH = 100  # JSON nesting depth (arrays and objects)
MAX_RECORDS = 500_000  # records (lines, rows, cues, segments, words, utterances) in one file
MAX_UNZIPPED_BYTES = 128 * 2**20  # .docx: total uncompressed size of the zip members
MAX_ZIP_RATIO = 100  # .docx: uncompressed size / file size (zip bombs are 1,000:1 and more)
MAX_GRID_SPAN = 64  # .docx: columns one table cell may span (Word allows 63)


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
    extra: list[str] | None = field(default=None, repr=False)  # continuation text, see add_text

    def add_text(self, text: str) -> None:
        """Append continuation text (a wrapped line, a later word); joined once in `full_text`, because
        `r.text += ...` per line copies the whole record each time (quadratic in a long record)."""
        if self.extra is None:
            self.extra = []
        self.extra.append(text)

    def full_text(self) -> str:
        return " ".join([self.text, *self.extra]) if self.extra else self.text


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
    """Decode UTF-8 (with or without BOM), UTF-16 (BOM or heuristic) or cp1252; return (text, encoding).

    A byte-order mark is trusted: invalid data after it is an InputError, not a guess at another encoding.
    """
    if data.startswith(codecs.BOM_UTF8):
        return _decode(data[len(codecs.BOM_UTF8) :], "utf-8", path, len(codecs.BOM_UTF8)), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode(data, "utf-16", path), "utf-16"
    for enc, looks in (
        ("utf-16-le", data[1:2] == b"\x00" and data[3:4] == b"\x00" and data[0:1] != b"\x00"),
        ("utf-16-be", data[0:1] == b"\x00" and data[2:3] == b"\x00"),
    ):
        if len(data) >= 4 and looks:
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError:
                break  # NULs in a pattern that is not UTF-16 after all: try the byte encodings
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise InputError(path, f"cannot decode text (tried UTF-8, UTF-16, cp1252): byte {exc.start}") from None


def _decode(data: bytes, enc: str, path: str | os.PathLike | None, offset: int = 0) -> str:
    try:
        return data.decode(enc)
    except UnicodeDecodeError as exc:
        what = "odd number of bytes" if enc == "utf-16" and exc.reason == "truncated data" else "invalid data"
        raise InputError(
            path,
            f"cannot decode text as {enc.upper()} (its byte-order mark says so): {what} at byte {exc.start + offset}",
        ) from None


def read_bytes(path: str | os.PathLike, max_bytes: int | None = MAX_BYTES) -> bytes:
    """The file's bytes, reading at most `max_bytes` (a LimitError beyond), so a huge file or a device such
    as /dev/zero is never read whole."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            if max_bytes is None:
                return fh.read()
            size = os.fstat(fh.fileno()).st_size
            chunks: list[bytes] = []
            got = 0
            while size <= max_bytes and got <= max_bytes:
                # read(n) allocates n bytes up front: ask for what the file holds (+1 to see its end), not
                # for max_bytes; devices and pipes report size 0 and are read in 64 KiB pieces
                chunk = fh.read(min(max_bytes + 1 - got, max(size + 1 - got, 1 << 16)))
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
            data = b"".join(chunks)
    except FileNotFoundError:
        raise InputError(p, "file not found") from None
    except IsADirectoryError:
        raise InputError(p, "is a directory, not a transcript file") from None
    except PermissionError:
        raise InputError(p, "permission denied") from None
    except OSError as exc:
        raise InputError(p, f"cannot read file: {exc.strerror or type(exc).__name__}") from None
    if size > max_bytes or len(data) > max_bytes:
        raise LimitError(
            p, f"file is larger than {max_bytes:,} bytes (max_bytes={max_bytes}); pass a larger max_bytes= to read it"
        )
    return data


def read_text(path: str | os.PathLike, max_bytes: int | None = MAX_BYTES) -> str:
    p = Path(path)
    data = read_bytes(p, max_bytes)
    if b"\x00" in data[:4096] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # NULs without a UTF-16 pattern: binary
        text, enc = decode_bytes(data, p)
        if enc in ("utf-8", "cp1252") and "\x00" in text:
            raise InputError(p, "looks like a binary file, not a text transcript")
        return text
    return decode_bytes(data, p)[0]


def too_many_records(path: str | os.PathLike, max_records: int, what: str = "records") -> LimitError:
    return LimitError(
        path, f"more than {max_records:,} {what} (max_records={max_records}); pass a larger max_records= to read it"
    )


def session_from_records(
    records: list[Record],
    path: str | os.PathLike,
    fmt: str,
    session_id: str | None = None,
    meta: dict | None = None,
    max_records: int | None = None,
) -> Session:
    """One turn per record (diarize merges them); speakers registered in order of appearance.

    Linear in the number of records: each speaker is registered when first seen (calling
    `Session.ensure_speakers` per record rescans every turn, which made long transcripts quadratic).
    """
    p = Path(path)
    if max_records is not None and len(records) > max_records:
        raise too_many_records(p, max_records)
    texts = [r.full_text() for r in records]
    kept = [(r, t) for r, t in zip(records, texts) if t and t.strip()]
    if not kept:
        raise InputError(p, "no utterances found (empty or unrecognised transcript)")
    s = Session(id=session_id or p.stem, source_path=str(p), source_format=fmt, meta=dict(meta or {}))
    inferred = _infer_end_times([r for r, _ in kept])
    if inferred:
        s.meta["end_times"] = f"{inferred} record end times taken from the next record's start"
    roles: list[tuple[str, str]] = []
    for r, raw in kept:
        spk = (r.speaker or "").strip() or "UNKNOWN"
        text = " ".join(raw.split())
        s.turns.append(
            Turn(
                speaker=spk,
                text=text,
                utterances=[
                    Utterance(
                        text=text,
                        speaker=spk,
                        char_start=0,
                        char_end=len(text),
                        start=r.start,
                        end=r.end,
                        source=r.source,
                        words=list(r.words),
                    )
                ],
            )
        )
        if r.role:
            roles.append((spk, r.role))
    s.ensure_speakers()  # once, in order of first appearance
    for spk, role in roles:  # a later stated role wins, as when they were set record by record
        sp = s.speakers[spk]
        sp.role, sp.role_confidence, sp.role_method = role, 1.0, "label"  # type: ignore[assignment]
    s.unlabelled = all(t.speaker == "UNKNOWN" for t in s.turns)
    return s


def _infer_end_times(records: list[Record]) -> int:
    """Transcripts that stamp only start times: a record ends where the next one starts."""
    n = 0
    for r, nxt in zip(records, records[1:]):
        if r.start is not None and r.end is None and nxt.start is not None and nxt.start >= r.start:
            r.end = nxt.start
            n += 1
    return n


HEAD_BYTES = 65536


def _decode_head(raw: bytes, path: Path) -> str:
    """Decode a file's head for sniffing; a multi-byte character cut at the end is dropped."""
    try:
        return decode_bytes(raw, path)[0]
    except InputError:
        if len(raw) < HEAD_BYTES:
            raise
    for cut in (1, 2, 3):
        try:
            return decode_bytes(raw[:-cut], path)[0]
        except InputError:
            pass
    raise InputError(path, "cannot decode the start of the file")


def detect_format(path: Path) -> str:
    """Pick a reader by extension, then by content sniffing where extensions are ambiguous."""
    ext = "".join(path.suffixes[-2:]).lower() if len(path.suffixes) > 1 else path.suffix.lower()
    head: str | None = None
    try:
        with open(path, "rb") as fh:  # only the head: the file may be huge (limits apply when it is read)
            raw = fh.read(HEAD_BYTES)
        head = _decode_head(raw, path) if raw and path.suffix.lower() != ".docx" else None
    except (OSError, InputError):
        head = None
    candidates = [spec for spec in READERS.values() if path.suffix.lower() in spec.extensions or ext in spec.extensions]
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
    raise UnknownFormatError(
        path,
        f"unknown transcript format {path.suffix or '(no extension)'!r}; "
        f"use --format with one of: {', '.join(sorted(READERS))}",
    )
