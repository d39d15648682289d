"""The one data model every stage reads and writes: Session -> Turn -> Utterance.

Ingest produces a Session whose turns are the input records (one per line, row, cue or segment);
diarize merges same-speaker records into turns and attributes roles; segment splits utterances into
sentences; classify fills marker probabilities; aggregate fills session-level results. A Session
round-trips through versioned JSON (`to_dict`/`from_dict`, `save`/`load`).
"""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Literal

SCHEMA = "alliance-nlp/session"
SCHEMA_VERSION = "1.0"

Role = Literal["therapist", "client", "other", "unknown"]
ROLES: tuple[str, ...] = ("therapist", "client", "other", "unknown")


@dataclass
class Word:
    """A time-stamped ASR word (kept so utterance times can follow word boundaries)."""
    text: str
    start: float | None = None
    end: float | None = None
    speaker: str | None = None
    score: float | None = None


@dataclass
class Utterance:
    """One coding unit: a whole short turn or one sentence of a long one.

    `char_start`/`char_end` index into the parent turn's text; `source` is the index of the input
    record (line, row, cue, segment) the utterance came from, so results trace back to the file.
    """
    text: str
    speaker: str
    char_start: int = 0
    char_end: int = 0
    start: float | None = None
    end: float | None = None
    source: int | None = None
    words: list[Word] = field(default_factory=list)
    probabilities: dict[str, float] = field(default_factory=dict)
    markers: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.char_end and self.text:
            self.char_end = self.char_start + len(self.text)


@dataclass
class Turn:
    """Consecutive speech by one speaker."""
    speaker: str
    utterances: list[Utterance] = field(default_factory=list)
    text: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.text and self.utterances:
            self.text = " ".join(u.text for u in self.utterances)
            self._reindex()

    def _reindex(self) -> None:
        pos = 0
        for u in self.utterances:
            at = self.text.find(u.text, pos)
            u.char_start = at if at >= 0 else pos
            u.char_end = u.char_start + len(u.text)
            pos = u.char_end

    @property
    def start(self) -> float | None:
        times = [u.start for u in self.utterances if u.start is not None]
        return min(times) if times else None

    @property
    def end(self) -> float | None:
        times = [u.end for u in self.utterances if u.end is not None]
        return max(times) if times else None

    @property
    def sources(self) -> list[int]:
        return sorted({u.source for u in self.utterances if u.source is not None})


@dataclass
class Speaker:
    id: str
    name: str | None = None
    role: Role = "unknown"
    role_confidence: float | None = None
    role_method: str | None = None  # "label", "model", "user", "default"


@dataclass
class Session:
    id: str
    turns: list[Turn] = field(default_factory=list)
    speakers: dict[str, Speaker] = field(default_factory=dict)
    source_path: str | None = None
    source_format: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    # ---- navigation -------------------------------------------------------------------------
    @property
    def utterances(self) -> list[Utterance]:
        return [u for t in self.turns for u in t.utterances]

    def iter_utterances(self) -> Iterator[tuple[int, Turn, Utterance]]:
        for i, t in enumerate(self.turns):
            for u in t.utterances:
                yield i, t, u

    def role_of(self, speaker: str) -> str:
        sp = self.speakers.get(speaker)
        return sp.role if sp else "unknown"

    def ensure_speakers(self) -> None:
        """Every speaker id used by a turn gets a Speaker record."""
        for t in self.turns:
            if t.speaker not in self.speakers:
                self.speakers[t.speaker] = Speaker(t.speaker, name=t.speaker)

    @property
    def has_times(self) -> bool:
        return any(u.start is not None for u in self.utterances)

    # ---- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "id": self.id,
            "source_path": self.source_path,
            "source_format": self.source_format,
            "meta": self.meta,
            "speakers": [asdict(s) for s in self.speakers.values()],
            "turns": [asdict(t) for t in self.turns],
            "results": self.results,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Session":
        if d.get("schema") != SCHEMA:
            raise ValueError(f"not an alliance-nlp session (schema={d.get('schema')!r})")
        major = str(d.get("version", "")).split(".")[0]
        if major != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(f"unsupported session version {d.get('version')!r} (this is {SCHEMA_VERSION})")
        turns = []
        for t in d.get("turns", []):
            utts = []
            for u in t.get("utterances", []):
                u = dict(u)
                u["words"] = [Word(**w) for w in u.get("words", [])]
                utts.append(Utterance(**u))
            turns.append(Turn(speaker=t["speaker"], utterances=utts, text=t.get("text", ""),
                              meta=t.get("meta", {})))
        speakers = {s["id"]: Speaker(**s) for s in d.get("speakers", [])}
        return cls(id=d["id"], turns=turns, speakers=speakers, source_path=d.get("source_path"),
                   source_format=d.get("source_format"), meta=d.get("meta", {}),
                   results=d.get("results", {}))

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Session":
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON via a temporary file and rename, so a failure never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1, ensure_ascii=False)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
