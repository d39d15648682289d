"""Readers for the transcript formats researchers actually have; `read()` picks one.

Each reader module registers itself with `register_reader`; all return a Session with one turn
per input record (see `alliance_nlp.session`).
"""
from __future__ import annotations

import gc
import inspect
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from ..session import Session
from .base import READERS, Record, decode_bytes, detect_format, read_text, register_reader, session_from_records

# reader modules register themselves on import
from . import formats  # noqa: F401,E402


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
        raise InputError(p, f"format {name!r} takes no option {', '.join(map(repr, unknown))}; "
                            f"it takes: {', '.join(accepted) or 'none'}")
    with _gc_paused():
        return fn(p, **options)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a reader builds its objects (they form no cycles): its
    passes over the growing heap otherwise about double the time of reading a long transcript."""
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


__all__ = ["READERS", "Record", "decode_bytes", "detect_format", "read", "read_text", "reader_options",
           "register_reader", "session_from_records"]
