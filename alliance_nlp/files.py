"""Atomic file writing: a reader never sees half a file, and a failure leaves no partial output."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def current_umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def private_umask() -> int:
    """Make files and folders this process creates readable by the owner only (clinical data): add
    0o077 to the umask. Returns the previous umask."""
    mask = os.umask(0o077)
    os.umask(mask | 0o077)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kw: Any) -> Iterator[IO[Any]]:
    """Open a temporary file beside `path`; on success rename it over `path`, on any failure remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    if "b" not in mode:
        open_kw.setdefault("encoding", "utf-8")
    try:
        with os.fdopen(fd, mode, **open_kw) as fh:
            yield fh
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600: give the file what the umask allows
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """JSON (indented, UTF-8, trailing newline) written atomically."""
    with atomic_write(path) as fh:
        json.dump(obj, fh, indent=1, ensure_ascii=False)
        fh.write("\n")
