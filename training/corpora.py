"""Readers for the development corpora, keyed by the corpora's own ids.

Our annotations are standoff labels (corpus, session, utterance); these readers join them back to the
text, which never enters the project. Standard library only, so coders' tools run anywhere.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

CORPUS_ENV = "ALLIANCE_NLP_CORPORA"


class CorpusNotFoundError(FileNotFoundError):
    """The corpus folder (../shared/data or $ALLIANCE_NLP_CORPORA) is missing."""


@dataclass
class CorpusUtterance:
    utterance: int
    speaker: str  # "therapist" | "client"
    text: str
    timestamp: str | None = None


@dataclass
class CorpusSession:
    corpus: str
    session: str
    group: str  # unit for grouped splits: AnnoMI video_url, ESConv the conversation itself
    utterances: list[CorpusUtterance] = field(default_factory=list)
    meta: dict = field(default_factory=dict)


def default_corpus_dir() -> Path | None:
    """$ALLIANCE_NLP_CORPORA, else ../shared/data next to the project or the working directory."""
    env = os.environ.get(CORPUS_ENV)
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[1]
    for cand in (here.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if cand.is_dir():
            return cand
    return None


def resolve_corpus_dir(path: str | os.PathLike | None = None) -> Path:
    d = Path(path) if path else default_corpus_dir()
    if d is None or not d.is_dir():
        raise CorpusNotFoundError(
            f"corpus folder not found ({d or '../shared/data'}); set ${CORPUS_ENV} or pass --corpus-dir"
        )
    return d


def read_annomi(corpus_dir: str | os.PathLike | None = None) -> dict[str, CorpusSession]:
    path = resolve_corpus_dir(corpus_dir) / "annomi" / "AnnoMI-simple.csv"
    if not path.is_file():
        raise CorpusNotFoundError(f"{path}: AnnoMI file missing")
    sessions: dict[str, CorpusSession] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            sid = row["transcript_id"]
            s = sessions.get(sid)
            if s is None:
                s = sessions[sid] = CorpusSession(
                    "annomi",
                    sid,
                    row["video_url"],
                    meta={"mi_quality": row["mi_quality"], "topic": row["topic"]},
                )
            s.utterances.append(
                CorpusUtterance(int(row["utterance_id"]), row["interlocutor"], row["utterance_text"], row["timestamp"])
            )
    for s in sessions.values():
        s.utterances.sort(key=lambda u: u.utterance)
    return sessions


ESCONV_SPLITS = ("train", "valid")
_ESCONV_ROLE = {"usr": "client", "sys": "therapist"}


def read_esconv(
    corpus_dir: str | os.PathLike | None = None, splits: tuple[str, ...] = ESCONV_SPLITS
) -> dict[str, CorpusSession]:
    root = resolve_corpus_dir(corpus_dir) / "esconv"
    sessions: dict[str, CorpusSession] = {}
    for split in splits:
        path = root / f"{split}.json"
        if not path.is_file():
            raise CorpusNotFoundError(f"{path}: ESConv split missing")
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if not line.strip():
                    continue
                conv = json.loads(line)
                sid = f"{split}:{i}"
                seeker = (conv.get("survey_score") or {}).get("seeker") or {}
                s = CorpusSession(
                    "esconv",
                    sid,
                    sid,
                    meta={
                        "emotion_type": conv.get("emotion_type"),
                        "problem_type": conv.get("problem_type"),
                        "seeker": seeker,
                    },
                )
                for j, turn in enumerate(conv["dialog"]):
                    s.utterances.append(CorpusUtterance(j, _ESCONV_ROLE[turn["speaker"]], turn["text"].strip()))
                sessions[sid] = s
    return sessions


def read_corpus(name: str, corpus_dir: str | os.PathLike | None = None) -> dict[str, CorpusSession]:
    if name == "annomi":
        return read_annomi(corpus_dir)
    if name == "esconv":
        return read_esconv(corpus_dir)
    raise ValueError(f"unknown corpus {name!r} (annomi, esconv)")


def to_session(cs: CorpusSession):
    """A corpus session as an alliance-nlp Session, roles as labelled by the corpus."""
    from alliance_nlp.session import Session, Speaker, Turn, Utterance

    s = Session(id=f"{cs.corpus}:{cs.session}", source_format=cs.corpus, meta={"group": cs.group})
    for role in ("therapist", "client"):
        s.speakers[role] = Speaker(role, name=role, role=role, role_confidence=1.0, role_method="label")
    for u in cs.utterances:
        s.turns.append(Turn(u.speaker, [Utterance(u.text, u.speaker, source=u.utterance)]))
    return s
