"""What `analyze` writes for a session (session.json, utterances.csv, summary.json) and how the other
commands read it back (`load_results`)."""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from .errors import InputError
from .files import atomic_write, write_json_atomic
from .labels import LABELS
from .session import Session

BASE_COLUMNS = ["source", "turn", "utterance", "speaker", "role", "role_confidence", "start", "end", "text"]


def utterance_rows(session: Session) -> list[dict[str, Any]]:
    rows = []
    classified = any(u.probabilities for u in session.utterances)
    n = 0
    for ti, _turn, u in session.iter_utterances():
        sp = session.speakers.get(u.speaker)
        row = {
            "source": u.source,
            "turn": ti,
            "utterance": n,
            "speaker": u.speaker,
            "role": sp.role if sp else "unknown",
            "role_confidence": None if not sp or sp.role_confidence is None else round(sp.role_confidence, 4),
            "start": u.start,
            "end": u.end,
            "text": u.text,
        }
        if classified:
            for lab in LABELS:
                p = u.probabilities.get(lab)
                row[f"p_{lab}"] = None if p is None else round(p, 4)
                row[lab] = int(lab in u.markers)
        rows.append(row)
        n += 1
    return rows


def write_utterances_csv(session: Session, path: str | os.PathLike) -> None:
    rows = utterance_rows(session)
    cols = list(BASE_COLUMNS)
    if rows and "p_goal" in rows[0]:
        cols += [c for lab in LABELS for c in (f"p_{lab}", lab)]
    with atomic_write(path, newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})


def summarize(session: Session) -> dict[str, Any]:
    """Speakers with roles and confidence, talk share, counts, and any stage results."""
    words: Counter[str] = Counter()
    utts: Counter[str] = Counter()
    for u in session.utterances:
        words[u.speaker] += len(u.text.split())
        utts[u.speaker] += 1
    total_words = sum(words.values()) or 1
    turns = Counter(t.speaker for t in session.turns)
    speakers = []
    for sp in session.speakers.values():
        speakers.append(
            {
                "id": sp.id,
                "name": sp.name,
                "role": sp.role,
                "role_confidence": None if sp.role_confidence is None else round(sp.role_confidence, 4),
                "role_method": sp.role_method,
                "turns": turns[sp.id],
                "utterances": utts[sp.id],
                "words": words[sp.id],
                "talk_share": round(words[sp.id] / total_words, 4),
            }
        )
    out: dict[str, Any] = {
        "session": session.id,
        "source_path": session.source_path,
        "source_format": session.source_format,
        "counts": {
            "speakers": len(session.speakers),
            "turns": len(session.turns),
            "utterances": len(session.utterances),
            "words": sum(words.values()),
        },
        "duration_seconds": _duration(session),
        "speakers": speakers,
        "roles": {
            sp.role: {"speaker": sp.id, "confidence": sp.role_confidence}
            for sp in session.speakers.values()
            if sp.role in ("therapist", "client")
        },
    }
    if any(u.probabilities for u in session.utterances):
        out["markers"] = {lab: {"count": sum(lab in u.markers for u in session.utterances)} for lab in LABELS}
    out["pipeline"] = session.provenance
    out.update(session.results.to_dict())
    return out


def _duration(session: Session) -> float | None:
    starts = [u.start for u in session.utterances if u.start is not None]
    ends = [u.end if u.end is not None else u.start for u in session.utterances if u.start is not None]
    return round(max(ends) - min(starts), 3) if starts else None


def write_outputs(session: Session, outdir: str | os.PathLike) -> dict[str, Path]:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"session": out / "session.json", "utterances": out / "utterances.csv", "summary": out / "summary.json"}
    session.save(paths["session"])
    write_utterances_csv(session, paths["utterances"])
    write_json_atomic(paths["summary"], summarize(session))
    from .report import write_report  # here, not at the top: report imports this module

    paths["report"] = write_report(session, out / "report.html")
    return paths


def load_results(paths: list[str]) -> dict[str, Session]:
    """Analysed sessions from `analyze` output folders (searched recursively) or session.json files,
    keyed by session id and by output folder name."""
    found: dict[str, Session] = {}
    for p in map(Path, paths):
        files = sorted(p.rglob("session.json")) if p.is_dir() else [p]
        if not files or not all(f.is_file() for f in files):
            raise InputError(p, "no session.json found (run `alliance-nlp analyze` first)")
        for f in files:
            try:
                s = Session.load(f)
            except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
                raise InputError(f, f"not an analysed session: {exc}") from None
            if not any(u.probabilities for u in s.utterances):
                raise InputError(f, "session has no marker probabilities (analyze with the classify step)")
            keys = {s.id} | ({f.parent.name} if f.name == "session.json" else set())
            for k in keys:
                found.setdefault(k, s)
    return found
