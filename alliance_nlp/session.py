"""The one data model every stage reads and writes: Session -> Turn -> Utterance.

Ingest produces a Session whose turns are the input records (one per line, row, cue or segment);
diarize merges same-speaker records into turns and attributes roles; segment splits long utterances;
classify fills marker probabilities; aggregate fills the typed `Results` (estimates, episodes,
trajectory). Each component records what it did in `provenance[name]`. A Session round-trips through
versioned JSON (`to_dict`/`from_dict`, `save`/`load`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .files import write_json_atomic

SCHEMA = "alliance-nlp/session"
SCHEMA_VERSION = "1.2"
SUBSCALES: tuple[str, ...] = ("goal", "task", "bond")
ESTIMATES: tuple[str, ...] = (*SUBSCALES, "total")

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


# ---- results (filled by the aggregate stage) ------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """A point estimate on the WAI-SR metric (item mean 1-5) with its 95% prediction interval for a
    rating; None when undefined. `bound` says where the interval was cut at the scale's end ("low",
    "high" or "both"): no silent clipping."""

    estimate: float | None
    low: float | None
    high: float | None
    bound: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MarkerIndex:
    """A transparent marker index: expected markers per 100 utterances, its 95% interval over this
    session's utterances, and the value among the therapist's and the client's utterances."""

    value: float | None
    low: float | None
    high: float | None
    therapist: float | None
    client: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Episode:
    """A rupture-repair episode: a run of rupture markers, whether a repair followed, and whether the
    client's next utterances were collaborative again (None: the session ended first)."""

    index: int
    type: str  # "withdrawal", "confrontation" or "mixed"
    start_utterance: int
    end_utterance: int
    start: float | None
    end: float | None
    sources: tuple[int, ...]
    by: tuple[str, ...]
    peak_probability: float
    repaired: bool
    repair_utterance: int | None
    resolved: bool | None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sources"], d["by"] = list(self.sources), list(self.by)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Episode:
        return cls(**{**d, "sources": tuple(d.get("sources", ())), "by": tuple(d.get("by", ()))})


@dataclass(frozen=True)
class Window:
    """A stretch of a session: `minutes`-long on the clock, or a fixed number of turns without times.
    Index ranges are half-open: turns [turn_start, turn_end), utterances [utt_start, utt_end)."""

    index: int
    by: str  # "time" | "turns"
    start: float | None
    end: float | None
    turn_start: int
    turn_end: int
    utt_start: int
    utt_end: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WindowEstimate:
    """Estimates for one window of the within-session trajectory."""

    window: Window
    estimates: dict[str, Estimate]
    ruptures: int

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.window.to_dict(),
            **{k: v.to_dict() for k, v in self.estimates.items()},
            "ruptures": self.ruptures,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> WindowEstimate:
        w = Window(**{k: d[k] for k in Window.__dataclass_fields__})
        return cls(w, {k: Estimate(**d[k]) for k in ESTIMATES if k in d}, int(d.get("ruptures", 0)))


@dataclass
class Results:
    """Session-level results. `to_dict` keeps the flat summary.json shape researchers script against."""

    estimates: dict[str, Estimate] = field(default_factory=dict)  # goal, task, bond, total
    method: dict[str, Any] = field(default_factory=dict)  # scale, interval, mapping
    features: dict[str, float | None] = field(default_factory=dict)  # what the mapping read
    episodes: list[Episode] = field(default_factory=list)
    trajectory: list[WindowEstimate] = field(default_factory=list)
    trajectory_by: str | None = None
    indices: dict[str, MarkerIndex] = field(default_factory=dict)  # goal, task, bond, rupture, repair

    @property
    def ruptures(self) -> dict[str, int]:
        eps = self.episodes
        return {
            "episodes": len(eps),
            "repaired": sum(e.repaired for e in eps),
            "unrepaired": sum(not e.repaired for e in eps),
            "resolved": sum(bool(e.resolved) for e in eps),
        }

    def __bool__(self) -> bool:
        return bool(self.estimates)

    def to_dict(self) -> dict[str, Any]:
        if not self:
            return {}
        return {
            **{k: v.to_dict() for k, v in self.estimates.items()},
            "indices": {k: v.to_dict() for k, v in self.indices.items()},
            "estimate_method": self.method,
            "features": self.features,
            "episodes": [e.to_dict() for e in self.episodes],
            "ruptures": self.ruptures,
            "trajectory": {"by": self.trajectory_by, "windows": [w.to_dict() for w in self.trajectory]},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Results:
        if not d:
            return cls()
        traj = d.get("trajectory") or {}
        return cls(
            estimates={k: Estimate(**d[k]) for k in ESTIMATES if k in d},
            method=dict(d.get("estimate_method", {})),
            features=dict(d.get("features", {})),
            episodes=[Episode.from_dict(e) for e in d.get("episodes", [])],
            trajectory=[WindowEstimate.from_dict(w) for w in traj.get("windows", [])],
            trajectory_by=traj.get("by"),
            indices={k: MarkerIndex(**v) for k, v in (d.get("indices") or {}).items()},
        )


@dataclass
class Session:
    id: str
    turns: list[Turn] = field(default_factory=list)
    speakers: dict[str, Speaker] = field(default_factory=dict)
    source_path: str | None = None
    source_format: str | None = None
    unlabelled: bool = False  # no speaker labels in the input: diarize must find turns
    meta: dict[str, Any] = field(default_factory=dict)  # what the input file said
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)  # component -> what it did
    results: Results = field(default_factory=Results)

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

    @property
    def name(self) -> str:
        """The path or id to name this session by in messages."""
        return self.source_path or self.id

    # ---- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "version": SCHEMA_VERSION,
            "id": self.id,
            "source_path": self.source_path,
            "source_format": self.source_format,
            "unlabelled": self.unlabelled,
            "meta": self.meta,
            "provenance": self.provenance,
            "speakers": [asdict(s) for s in self.speakers.values()],
            "turns": [asdict(t) for t in self.turns],
            "results": self.results.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Session:
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
            turns.append(Turn(speaker=t["speaker"], utterances=utts, text=t.get("text", ""), meta=t.get("meta", {})))
        speakers = {s["id"]: Speaker(**s) for s in d.get("speakers", [])}
        return cls(
            id=d["id"],
            turns=turns,
            speakers=speakers,
            source_path=d.get("source_path"),
            source_format=d.get("source_format"),
            unlabelled=bool(d.get("unlabelled", False)),
            meta=d.get("meta", {}),
            provenance=d.get("provenance", {}),
            results=Results.from_dict(d.get("results", {})),
        )

    def save(self, path: str | os.PathLike) -> None:
        write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Session:
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))
