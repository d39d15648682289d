"""Readers for the transcript formats researchers actually have; `read()` picks one.

Each reader module registers itself with `register_reader`; all return a Session with one turn
per input record (see `alliance_nlp.session`).
"""

from __future__ import annotations

import gc
import inspect
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError
from ..session import Session

# reader modules register themselves on import
from . import formats  # noqa: F401,E402
from .base import READERS, Record, decode_bytes, detect_format, read_text, register_reader, session_from_records


def read(path: str | os.PathLike, format: str | None = None, **options) -> Session:
    """Read a transcript file into a Session; `format` overrides detection (see `READERS`)."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "file not found")
    name = format or detect_format(p)
    if name not in READERS:
        raise InputError(p, f"unknown format {name!r}; choose one of: {', '.join(sorted(READERS))}")
    fn = READERS[name].read
    accepted = reader_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InputError(
            p,
            f"format {name!r} takes no option {', '.join(map(repr, unknown))}; "
            f"it takes: {', '.join(accepted) or 'none'}",
        )
    params = inspect.signature(fn).parameters
    for key in options:  # the CLI passes `--option KEY=VALUE` values as text
        if key.startswith("max_"):
            options[key] = _limit_value(p, key, options[key])
        elif isinstance(options[key], str) and "bool" in str(params[key].annotation):
            options[key] = _bool_value(p, key, options[key])
    with _gc_paused():
        return fn(p, **options)


def _bool_value(p: Path, key: str, value: str) -> bool | None:
    v = value.strip().lower()
    if v in {"true", "yes", "1", "on"}:
        return True
    if v in {"false", "no", "0", "off"}:
        return False
    if v in {"none", "auto", ""}:
        return None
    raise InputError(p, f"option {key}= takes true, false or none")


def _limit_value(p: Path, key: str, value: object) -> int | float | None:
    """A limit option as a number, or None (no limit); text such as "200000000", "1e8" or "none" is accepted."""
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        v = value.strip().lower().replace("_", "").replace(",", "")
        if v in {"none", "off", "no", "inf", "unlimited"}:
            return None
        try:
            return int(v)
        except ValueError:
            try:
                f = float(v)
                return int(f) if f.is_integer() else f
            except (ValueError, OverflowError):
                pass
    raise InputError(p, f"option {key}= takes a number or 'none' (no limit)")


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a reader builds its objects: its passes over the growing
    heap otherwise about double the time of reading a long transcript. Readers make few reference cycles
    (python-docx's package and parts); those are collected once it resumes."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def reader_options(name: str) -> list[str]:
    """The keyword options a reader accepts (e.g. `columns`, `delimiter` for csv; `words` for rttm), including
    the limits every reader documents (`max_bytes`, `max_records`, ...; see `base.MAX_BYTES` and the rest)."""
    params = inspect.signature(READERS[name].read).parameters.values()
    return [q.name for q in params if q.kind is inspect.Parameter.KEYWORD_ONLY]


__all__ = [
    "READERS",
    "Record",
    "decode_bytes",
    "detect_format",
    "read",
    "read_text",
    "reader_options",
    "register_reader",
    "session_from_records",
]
