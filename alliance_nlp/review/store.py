"""Reviewers' corrections: an append-only JSON Lines file beside the analysed sessions.

`RESULTS/corrections.jsonl` holds one JSON object per line, in the label spec's standoff format (keyed by
session id and utterance index, with the full `labels` list the reviewer settled on) plus who, when, and
against which model:

    {"session": "session_cbt", "utterance": 12, "speaker": "client", "labels": ["task"],
     "coder": "alice", "reviewer": "alice", "note": "", "time": "2025-03-01T10:22:31.402Z",
     "model": {"name": "alliance-markers-v2", "fingerprint": "0c1d9e4f6a2b7c3d"},
     "model_labels": ["task", "bond"], "source": 12, "source_file": "data/examples/session_cbt.txt",
     "session_file": "session_cbt/session.json", "format": "alliance-nlp/correction", "version": 1}

`speaker` is the speaker's role and `coder` repeats `reviewer`, as the spec's standoff files have them;
`source` is the input record the utterance came from, `source_file` the transcript and `session_file`
the analysed session (relative to RESULTS); `model_labels` are the markers the reviewer was shown. The
file is never rewritten: each correction is one appended line, written with a single `write` under an
exclusive lock and flushed to disk (`fsync`) before the request is answered, so a crash loses at most
the correction in flight. A later line for the same reviewer, session and utterance replaces an
earlier one when read back ("latest wins"); different reviewers' lines never replace each other. A
torn last line (a crash mid-write) is skipped when read and cut off from the next append by a newline.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..labels import LABELS

try:  # POSIX: an exclusive lock keeps two review servers over one folder from interleaving lines
    import fcntl
except ImportError:  # pragma: no cover - Windows: a single write() with O_APPEND is what we have
    fcntl = None  # type: ignore[assignment]

CORRECTIONS_FILE = "corrections.jsonl"
FORMAT = "alliance-nlp/correction"
FORMAT_VERSION = 1
MAX_NOTE = 2000
MAX_REVIEWER = 64
REVIEWER_RE = re.compile(r"^[\w][\w .@+-]{0,63}$")
Key = tuple[str, str, int]  # (reviewer, session, utterance)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def check_reviewer(name: str) -> str:
    """A reviewer name: 1-64 letters, digits, spaces or `.@+-_`, starting with a letter or digit."""
    if not isinstance(name, str) or not REVIEWER_RE.match(name) or name != name.strip():
        raise ValueError("reviewer: 1-64 letters, digits, spaces or . @ + - _ (starting with a letter or digit)")
    return name


def check_labels(labels: Any) -> list[str]:
    """A label list: known labels only, each once; returned in the spec's label order."""
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ValueError("labels: a list of label names")
    unknown = sorted(set(labels) - set(LABELS))
    if unknown:
        raise ValueError(f"labels: unknown label(s) {', '.join(unknown)[:200]} (known: {', '.join(LABELS)})")
    if len(set(labels)) != len(labels):
        raise ValueError("labels: a label is listed twice")
    return [lab for lab in LABELS if lab in labels]


def model_fingerprint(folder: str | os.PathLike) -> str | None:
    """A short SHA-256 over a model folder's weights and config (config.json, context.safetensors,
    adapter/*): what a correction was made against, and what a fine-tuned model started from."""
    root = Path(folder)
    files = [root / "config.json", root / "context.safetensors"]
    files += sorted(p for p in (root / "adapter").glob("*") if p.is_file() and p.name != "README.md")
    if not all(f.is_file() for f in files[:2]):
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(root).as_posix().encode() + b"\0")
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def make_record(
    *,
    session: str,
    utterance: int,
    labels: Sequence[str],
    reviewer: str,
    note: str = "",
    speaker: str | None = None,
    model: Mapping[str, Any] | None = None,
    model_labels: Sequence[str] | None = None,
    source: int | None = None,
    source_file: str | None = None,
    session_file: str | None = None,
    time: str | None = None,
) -> dict[str, Any]:
    """One corrections.jsonl line (checked): the format the review app writes and `finetune` reads."""
    check_reviewer(reviewer)
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise ValueError(f"note: text of at most {MAX_NOTE} characters")
    return {
        "session": session,
        "utterance": int(utterance),
        "speaker": speaker,
        "labels": check_labels(list(labels)),
        "coder": reviewer,
        "reviewer": reviewer,
        "note": note,
        "time": time or now_iso(),
        "model": dict(model or {"name": None, "fingerprint": None}),
        "model_labels": None if model_labels is None else check_labels(list(model_labels)),
        "source": source,
        "source_file": source_file,
        "session_file": session_file,
        "format": FORMAT,
        "version": FORMAT_VERSION,
    }


def parse_line(line: str) -> dict[str, Any] | None:
    """A corrections line as a dict, or None when it is not one (damaged, or another kind of record)."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    if not isinstance(rec, dict):
        return None
    try:
        ok = (
            isinstance(rec.get("session"), str)
            and isinstance(rec.get("utterance"), int)
            and not isinstance(rec.get("utterance"), bool)
            and rec["utterance"] >= 0
            and isinstance(rec.get("reviewer", rec.get("coder")), str)
        )
        if ok:
            rec["labels"] = check_labels(rec.get("labels"))
            rec.setdefault("reviewer", rec.get("coder"))
    except ValueError:
        return None
    return rec if ok else None


def key_of(rec: Mapping[str, Any]) -> Key:
    return (str(rec["reviewer"]), str(rec["session"]), int(rec["utterance"]))


def latest(records: Iterable[Mapping[str, Any]]) -> dict[Key, dict[str, Any]]:
    """The latest correction per reviewer, session and utterance. Records are taken in order (a file's
    append order); across files pass them sorted by `time` (see `read_corrections`)."""
    out: dict[Key, dict[str, Any]] = {}
    for rec in records:
        out[key_of(rec)] = dict(rec)
    return out


def read_corrections(
    paths: Sequence[str | os.PathLike], reviewers: Iterable[str] | None = None
) -> tuple[dict[Key, dict[str, Any]], dict[str, Any]]:
    """Latest corrections from one or more files (several files: ordered by `time`, then file order),
    and what was read: {"files": [{"path", "sha256", "lines", "damaged"}], "records": n}. Each record
    gains `_file` (the index of its file in `paths`). An unreadable file is an InputError."""
    want = set(reviewers) if reviewers else None
    recs: list[tuple[str, int, int, dict[str, Any]]] = []
    info: dict[str, Any] = {"files": [], "records": 0}
    for fi, p in enumerate(paths):
        path = Path(p)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(path, f"cannot read corrections ({exc.strerror or exc})") from None
        damaged, n = 0, 0
        for ln, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            rec = parse_line(line)
            if rec is None:
                damaged += 1
                continue
            n += 1
            if want is None or rec["reviewer"] in want:
                rec["_file"] = fi
                recs.append((str(rec.get("time") or ""), fi, ln, rec))
        info["files"].append(
            {"path": str(path), "sha256": hashlib.sha256(data).hexdigest(), "lines": n, "damaged": damaged}
        )
        info["records"] += n
    if len(paths) > 1:
        recs.sort(key=lambda t: (t[0], t[1], t[2]))
    return latest(r for *_, r in recs), info


class CorrectionStore:
    """The corrections file of one results folder, shared by every request of a review server (and by
    other servers over the same folder: it re-reads lines other processes appended)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._offset = 0
        self._ident: tuple[int, int] | None = None
        self._latest: dict[Key, dict[str, Any]] = {}
        self.damaged = 0
        self.refresh()

    # ---- reading ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Read complete lines appended since the last read (all of them if the file was replaced)."""
        with self._lock:
            self._refresh()

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._offset, self._ident, self._latest, self.damaged = 0, None, {}, 0
            return
        ident = (st.st_dev, st.st_ino)
        if ident != self._ident or st.st_size < self._offset:
            self._offset, self._ident, self._latest, self.damaged = 0, ident, {}, 0
        if st.st_size == self._offset:
            return
        with open(self.path, "rb") as fh:
            fh.seek(self._offset)
            chunk = fh.read(st.st_size - self._offset)
        end = chunk.rfind(b"\n") + 1  # only complete lines; a torn tail waits (or stays damaged)
        for line in chunk[:end].splitlines():
            if not line.strip():
                continue
            rec = parse_line(line.decode("utf-8", errors="replace"))
            if rec is None:
                self.damaged += 1
            else:
                self._latest[key_of(rec)] = rec
        self._offset += end

    def latest(self) -> dict[Key, dict[str, Any]]:
        """The latest correction per (reviewer, session, utterance), current as of this call."""
        with self._lock:
            self._refresh()
            return dict(self._latest)

    def for_session(self, session: str) -> dict[tuple[str, int], dict[str, Any]]:
        """(reviewer, utterance) -> latest correction, for one session."""
        return {(r, u): rec for (r, s, u), rec in self.latest().items() if s == session}

    # ---- writing ----------------------------------------------------------------------------
    def append(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """Append one correction as one line and fsync it before returning."""
        data = (json.dumps(record, ensure_ascii=False, separators=(", ", ": ")) + "\n").encode("utf-8")
        with self._lock:
            new = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_size and _last_byte(self.path) != b"\n":
                    data = b"\n" + data  # a torn last line (a crash mid-write) stays apart
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)  # closing releases the lock
            if new:
                _fsync_dir(self.path.parent)
            self._refresh()
        return dict(record)


def _last_byte(path: Path) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1)


def _fsync_dir(folder: Path) -> None:
    """Make a new file's directory entry durable too (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
