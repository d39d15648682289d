"""The analysed sessions a review server shows, and what the API says about each: the model's markers
and probabilities beside every reviewer's latest labels, review progress, and the "informative first"
order (reviewers disagree; then unreviewed utterances whose probability is nearest a threshold)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..labels import LABELS
from ..resources import DEFAULT_MODEL_NAME, shipped_model_dir
from ..session import Session
from .store import Key, model_fingerprint

# a session id is used as one URL path segment and as a key in corrections.jsonl: no path characters
_UNSAFE_ID = re.compile(r"[/\\\x00-\x1f\x7f]")
MAX_ID = 200
ENV_MODEL_PATH = "ALLIANCE_NLP_CLASSIFIER"  # as alliance_nlp.classify (not imported: it pulls in torch)


def safe_id(sid: str) -> bool:
    """True for a session id that can be one URL path segment (no slashes, control characters, . or ..)."""
    return 0 < len(sid) <= MAX_ID and not _UNSAFE_ID.search(sid) and sid not in (".", "..")


@dataclass
class Entry:
    """One analysed session: its data, its summary, where it lives, and the model that tagged it."""

    id: str
    session: Session
    summary: dict[str, Any]
    session_file: str  # session.json, relative to the results folder
    thresholds: dict[str, float] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.session.utterances)


def _model_candidates(name: str | None, model_path: str | os.PathLike | None) -> list[Path]:
    out = [Path(model_path)] if model_path else []
    if os.environ.get(ENV_MODEL_PATH):
        out.append(Path(os.environ[ENV_MODEL_PATH]))
    if name and re.fullmatch(r"[\w.+-]+", name):
        out.append(shipped_model_dir(name))
    out.append(shipped_model_dir(DEFAULT_MODEL_NAME))
    return out


def model_info(
    name: str | None, model_path: str | os.PathLike | None = None, cache: dict[str | None, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """{"name", "fingerprint"} of the model a session was tagged with: the fingerprint of the first model
    folder (`model_path`, $ALLIANCE_NLP_CLASSIFIER, the shipped models) whose config names that model;
    None when no such folder is here."""
    if cache is not None and name in cache:
        return cache[name]
    fp = None
    for folder in _model_candidates(name, model_path):
        try:
            cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(cfg, dict) and cfg.get("name") == name:
            fp = model_fingerprint(folder)
            break
    info = {"name": name, "fingerprint": fp}
    if cache is not None:
        cache[name] = info
    return info


def load_entries(
    results: str | os.PathLike, model_path: str | os.PathLike | None = None, redactor: Any = None
) -> tuple[dict[str, Entry], list[str]]:
    """The analysed sessions under `results` (every session.json, searched recursively), keyed by session
    id, and warnings about the ones left out. An InputError when there are none.

    With a `redactor` (alliance_nlp.redact.Redactor) every session is shown redacted, under an opaque id
    (`session-<hash of its id>`), since ids are often file names that hold a client's name."""
    from ..outputs import summarize

    root = Path(results)
    if not root.is_dir():
        raise InputError(root, "not a folder (pass the output folder of `alliance-nlp analyze`)")
    entries: dict[str, Entry] = {}
    warnings: list[str] = []
    cache: dict[str | None, dict[str, Any]] = {}
    for f in sorted(root.rglob("session.json")):
        rel = f.relative_to(root).as_posix()
        try:
            s = Session.load(f)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            warnings.append(f"{f}: skipped, not an analysed session ({str(exc)[:200]})")
            continue
        if redactor is not None:
            opaque = "session-" + hashlib.sha256(s.id.encode("utf-8")).hexdigest()[:12]
            s = redactor.redact_session(s)
            s.id = opaque
        if not safe_id(s.id):
            warnings.append(f"{f}: skipped, its session id {s.id[:80]!r} cannot be used in a URL")
            continue
        if s.id in entries:
            warnings.append(f"{f}: skipped, session id {s.id!r} is also {entries[s.id].session_file}")
            continue
        summary: dict[str, Any] | None = None
        sf = f.parent / "summary.json"
        if f.name == "session.json" and sf.is_file() and redactor is None:
            try:
                loaded = json.loads(sf.read_text(encoding="utf-8"))
                summary = loaded if isinstance(loaded, dict) and loaded.get("session") == s.id else None
            except (OSError, ValueError):
                summary = None
        if summary is None:
            summary = summarize(s)
        got = s.provenance.get("classify")
        clf: Mapping[str, Any] = got if isinstance(got, Mapping) else {}
        raw: Mapping[str, Any] = clf["thresholds"] if isinstance(clf.get("thresholds"), Mapping) else {}
        thresholds = {lab: float(raw[lab]) for lab in LABELS if isinstance(raw.get(lab), (int, float))}
        entries[s.id] = Entry(s.id, s, summary, rel, thresholds, model_info(clf.get("model"), model_path, cache))
    if not entries:
        raise InputError(
            root,
            "no analysed session (session.json) found here (run `alliance-nlp analyze` first)"
            + (f"; {len(warnings)} skipped: {warnings[0]}" if warnings else ""),
        )
    return entries, warnings


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def margin(probabilities: Mapping[str, float], thresholds: Mapping[str, float]) -> tuple[float | None, str | None]:
    """How close the utterance's closest call is: the smallest |logit(p) - logit(threshold)| over the
    labels, and that label (None, None without probabilities)."""
    best: tuple[float | None, str | None] = (None, None)
    for lab in LABELS:
        p = probabilities.get(lab)
        if not isinstance(p, (int, float)) or not math.isfinite(p):
            continue
        m = abs(_logit(float(p)) - _logit(thresholds.get(lab, 0.5)))
        if best[0] is None or m < best[0]:
            best = (m, lab)
    return best


def _estimates(summary: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k in ("goal", "task", "bond", "total"):
        v = summary.get(k)
        out[k] = (
            {x: v.get(x) for x in ("estimate", "low", "high")}
            if isinstance(v, Mapping)
            else {"estimate": None, "low": None, "high": None}
        )
    return out


def overview(e: Entry, corrections: Mapping[Key, Mapping[str, Any]], reviewer: str) -> dict[str, Any]:
    """A session's line in GET /api/sessions."""
    per_rev: dict[str, dict[int, tuple[str, ...]]] = {}
    for (rev, sid, utt), rec in corrections.items():
        if sid == e.id and utt < e.n:
            per_rev.setdefault(rev, {})[utt] = tuple(rec["labels"])
    disagree = sum(1 for i in range(e.n) if len({d[i] for d in per_rev.values() if i in d}) > 1)
    ruptures = e.summary.get("ruptures") if isinstance(e.summary.get("ruptures"), Mapping) else None
    return {
        "id": e.id,
        "source_path": e.session.source_path,
        "utterances": e.n,
        "estimates": _estimates(e.summary),
        "ruptures": dict(ruptures) if ruptures else None,
        "markers": {lab: sum(lab in u.markers for u in e.session.utterances) for lab in LABELS},
        "reviewed": len(per_rev.get(reviewer, {})),
        "reviewers": {r: len(d) for r, d in sorted(per_rev.items())},
        "disagreements": disagree,
        "model": e.model,
    }


def detail(e: Entry, corrections: Mapping[Key, Mapping[str, Any]], reviewer: str) -> dict[str, Any]:
    """GET /api/sessions/{id}: every utterance with its text, speaker, role, the model's probabilities and
    markers, this reviewer's current labels (the model's markers until they review it) and note, the
    other reviewers' labels, and its rank in the informative-first order."""
    s = e.session
    mine: dict[int, Mapping[str, Any]] = {}
    others: dict[int, dict[str, list[str]]] = {}
    for (rev, sid, utt), rec in corrections.items():
        if sid != e.id or utt >= e.n:
            continue
        if rev == reviewer:
            mine[utt] = rec
        else:
            others.setdefault(utt, {})[rev] = list(rec["labels"])
    utts = []
    for i, (ti, _turn, u) in enumerate(s.iter_utterances()):
        sp = s.speakers.get(u.speaker)
        mine_i = mine.get(i)
        sets = {tuple(v) for v in others.get(i, {}).values()} | ({tuple(mine_i["labels"])} if mine_i else set())
        m, closest = margin(u.probabilities, e.thresholds)
        utts.append(
            {
                "index": i,
                "turn": ti,
                "source": u.source,
                "speaker": u.speaker,
                "speaker_name": (sp.name or sp.id) if sp else u.speaker,
                "role": sp.role if sp else "unknown",
                "start": u.start,
                "end": u.end,
                "text": u.text,
                "probabilities": {lab: u.probabilities[lab] for lab in LABELS if lab in u.probabilities},
                "markers": [lab for lab in LABELS if lab in u.markers],
                "labels": list(mine_i["labels"]) if mine_i else [lab for lab in LABELS if lab in u.markers],
                "reviewed": mine_i is not None,
                "note": (mine_i.get("note") or "") if mine_i else "",
                "time": mine_i.get("time") if mine_i else None,
                "others": others.get(i, {}),
                "disagreement": len(sets) > 1,
                "margin": None if m is None else round(m, 4),
                "closest": closest,
            }
        )
    order = sorted(
        utts,
        key=lambda x: (
            not x["disagreement"],
            x["reviewed"],
            math.inf if x["margin"] is None else x["margin"],
            x["index"],
        ),
    )
    for rank, x in enumerate(order):
        x["rank"] = rank
    return {
        "id": e.id,
        "source_path": s.source_path,
        "source_format": s.source_format,
        "session_file": e.session_file,
        "reviewer": reviewer,
        "labels": list(LABELS),
        "thresholds": {lab: e.thresholds.get(lab) for lab in LABELS},
        "model": e.model,
        "estimates": _estimates(e.summary),
        "episodes": [x for x in (e.summary.get("episodes") or []) if isinstance(x, Mapping)],
        "progress": {"reviewed": len(mine), "total": e.n},
        "order": "informative first: utterances where reviewers disagree, then unreviewed ones by how close their "
        "closest call is to its threshold (|logit p - logit threshold|), then reviewed ones",
        "utterances": utts,
    }
