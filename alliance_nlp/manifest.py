"""What makes a folder run resumable: the manifest, the run lock, and atomic session outputs.

Output folder of a batch:

    out/
      manifest.jsonl        one JSON record per line: a header, then one record per finished input
      batch_report.json     what the last run did
      .alliance-nlp.lock    held (fcntl) by the run that writes here
      <session>/            session.json, utterances.csv, summary.json, report.html, .complete.json

Manifest records: {"input", "output", "sha256" (of the input file), "fingerprint" (of the pipeline:
model, mapping, options, precision), "status" ("done" or "failed"), "error", "time", "seconds",
"utterances"}. The file is append-only (each record flushed and fsynced), so a run killed at any point
leaves every earlier record intact; a torn last line is ignored. The last record of an input wins, and
a finished run rewrites the file with those alone.

A session's outputs are written to a temporary folder beside the target, with `.complete.json` (its
input hash and fingerprint) last, fsynced, and renamed into place: the rename is the commit. A folder
that exists is therefore complete, and its `.complete.json` says what it was made from, which is what
lets a rerun skip it even when the run was killed between the rename and the manifest record.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from .errors import UsageError

MANIFEST = "manifest.jsonl"
LOCK = ".alliance-nlp.lock"
STAMP = ".complete.json"
FORMAT = "alliance-nlp/batch-manifest"
VERSION = 1
TMP_PREFIX, OLD_PREFIX = ".tmp-", ".old-"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ---- the lock -----------------------------------------------------------------------------------
class RunLock:
    """An exclusive lock on an output folder, held for the whole run.

    POSIX: fcntl.flock on `.alliance-nlp.lock`. The kernel releases it when the holding process ends, by
    any means (SIGKILL and power loss included), so a lock left by a dead run never blocks: the file may
    remain, the lock does not. The holder writes its pid, host and start time into the file, which is
    what a refused run prints."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / LOCK
        self.fh: IO[str] | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+", encoding="utf-8")
        if not _try_lock(fh):
            fh.seek(0)
            holder = fh.read().strip()
            fh.close()
            try:
                info = json.loads(holder)
                who = f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}"
            except ValueError:
                who = "another process"
            raise UsageError(
                f"{self.path.parent}: another analyze run ({who}) is writing to this folder; "
                "wait for it to finish or choose another output folder"
            )
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": now()}))
        fh.flush()
        self.fh = fh
        return self

    def release(self) -> None:
        if self.fh is not None:
            with contextlib.suppress(OSError):
                self.fh.seek(0)
                self.fh.truncate()
            self.fh.close()  # closing the descriptor releases the lock
            self.fh = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _try_lock(fh: IO[str]) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


# ---- the manifest -------------------------------------------------------------------------------
class Manifest:
    """Append-only record of finished inputs; `latest` holds the last record of each input."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / MANIFEST
        self.latest: dict[str, dict[str, Any]] = {}
        self.fh: IO[str] | None = None

    def load(self) -> Manifest:
        if not self.path.is_file():
            return self
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a line torn by a kill: that input is simply not recorded
                if isinstance(rec, dict) and "input" in rec and "status" in rec:
                    self.latest[rec["input"]] = rec
        return self

    def open(self) -> None:
        new = not self.path.is_file() or self.path.stat().st_size == 0
        self.fh = open(self.path, "a", encoding="utf-8")
        if not new:
            # a torn last line must not swallow the next record
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    self.fh.write("\n")
        else:
            self.fh.write(json.dumps({"format": FORMAT, "version": VERSION, "created": now()}) + "\n")
        self.fh.flush()

    def append(self, rec: dict[str, Any]) -> None:
        self.latest[rec["input"]] = rec
        if self.fh is None:
            self.open()
        assert self.fh is not None
        self.fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def close(self, compact: bool = True) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None
        if compact and self.latest:
            from .files import atomic_write

            with atomic_write(self.path) as fh:
                fh.write(json.dumps({"format": FORMAT, "version": VERSION, "compacted": now()}) + "\n")
                for rec in self.latest.values():
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")

    def is_done(self, input_key: str, sha256: str, fingerprint: str, folder: Path) -> bool:
        """Done with this content and fingerprint, and its output folder is there."""
        rec = self.latest.get(input_key)
        return bool(
            rec
            and rec.get("status") == "done"
            and rec.get("sha256") == sha256
            and rec.get("fingerprint") == fingerprint
            and (folder / STAMP).is_file()
        )


def read_stamp(folder: Path) -> dict[str, Any] | None:
    try:
        d = json.loads((folder / STAMP).read_text(encoding="utf-8"))
        return d if isinstance(d, dict) else None
    except (OSError, ValueError):
        return None


def clean_leftovers(folder: Path, min_age: float = 0.0) -> int:
    """Remove what killed runs left: temporary session folders, and the hidden `.<name>.<random>.tmp`
    files of interrupted atomic writes (in `folder` and its session folders), which may hold transcript
    rows. Batch runs call it holding the lock; a single-file run, which takes no lock, only removes
    files older than `min_age` seconds (never a concurrent writer's). Returns how many were removed."""
    n = 0
    if not folder.is_dir():
        return 0
    cutoff = time.time() - min_age
    for p in folder.iterdir():
        if p.name.startswith((TMP_PREFIX, OLD_PREFIX)) and p.is_dir() and min_age == 0:
            shutil.rmtree(p, ignore_errors=True)
            n += 1
            continue
        for f in [p] if p.is_file() else (p.iterdir() if p.is_dir() and not p.is_symlink() else []):
            if f.name.startswith(".") and f.name.endswith(".tmp") and f.is_file():
                with contextlib.suppress(OSError):
                    if f.stat().st_mtime <= cutoff:
                        f.unlink()
                        n += 1
    return n


# ---- atomic session outputs ---------------------------------------------------------------------
def _fsync_tree(folder: Path) -> None:
    for p in folder.iterdir():
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not possible on every platform or filesystem
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def session_folder(root: Path, name: str, stamp: dict[str, Any]) -> Iterator[Path]:
    """Yield a temporary folder to write a session's outputs into; on success it gets `.complete.json`,
    is fsynced and renamed to root/name (replacing an older one); on failure it is removed."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{TMP_PREFIX}{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        (tmp / STAMP).write_text(json.dumps({**stamp, "finished": now()}, ensure_ascii=False) + "\n", encoding="utf-8")
        _fsync_tree(tmp)
        _replace_folder(tmp, root / name)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace_folder(src: Path, dst: Path) -> None:
    for _ in range(5):
        old = None
        if dst.exists():
            old = dst.with_name(f"{OLD_PREFIX}{dst.name}-{uuid.uuid4().hex[:8]}")
            try:
                os.rename(dst, old)
            except FileNotFoundError:  # someone else moved it first
                old = None
        try:
            os.rename(src, dst)
        except OSError:
            if dst.exists():  # a concurrent writer committed first: try again
                continue
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return
    raise OSError(f"{dst}: could not replace the folder (written concurrently)")
