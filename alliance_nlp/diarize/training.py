"""Training helpers for the two diarization models (used by training/train_roles.py and
evaluation/eval_diarize.py). Needs scikit-learn; inference does not.

Corpus sessions are turned into project Sessions with labels hidden, in three layouts:
* "labelled": one record per corpus utterance, speakers anonymised as S1/S2 in order of appearance
  (roles hidden) -> speaker-level role features, target = therapist or not.
* "turns": unlabelled, one record per corpus utterance (a transcript with one paragraph per line).
* "sentences": unlabelled, one record per sentence (sentence-per-line text or ASR segments).
The unlabelled layouts give sentence units; the target is whether the speaker changes between two
consecutive units.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..session import Session, Turn, Utterance
from . import Diarizer, merge_turns
from .features import BOUNDARY_FEATURES, SPEAKER_FEATURES, boundary_features, speaker_features
from .linear import LinearModel

ROLE_C = 0.5
TURN_C = 1.0
PREFIXES = (12, 40)  # augmentation: the first N turns of each long session as extra examples


def _hms(ts: str | None) -> float | None:
    if not ts:
        return None
    try:
        parts = [float(x) for x in ts.split(":")]
    except ValueError:
        return None
    v = 0.0
    for x in parts:
        v = v * 60 + x
    return v


def labelled_session(cs) -> tuple[Session, dict[str, str]]:
    """Session with anonymised speaker ids (S1, S2 by first appearance) and the gold role per id."""
    ids: dict[str, str] = {}
    s = Session(id=f"{cs.corpus}:{cs.session}")
    for k, u in enumerate(cs.utterances):
        sid = ids.setdefault(u.speaker, f"S{len(ids) + 1}")
        text = " ".join(u.text.split())
        if not text:
            continue
        s.turns.append(Turn(sid, [Utterance(text, sid, 0, len(text), start=_hms(u.timestamp), source=k)], text))
    s.ensure_speakers()
    return s, {sid: role for role, sid in ids.items()}


def unlabelled_session(cs, layout: str = "turns") -> tuple[Session, list[str]]:
    """Unlabelled Session (all speakers UNKNOWN) and the gold role of each record (turn)."""
    from ..segment import sentence_spans
    s = Session(id=f"{cs.corpus}:{cs.session}", meta={"unlabelled": True})
    gold: list[str] = []
    texts = [" ".join(u.text.split()) for u in cs.utterances]
    if layout == "sentences":
        spans = sentence_spans(texts)
        recs = [(u.speaker, t[a:b]) for u, t, sp in zip(cs.utterances, texts, spans) for a, b in sp]
    elif layout == "turns":
        recs = [(u.speaker, t) for u, t in zip(cs.utterances, texts) if t]
    else:
        raise ValueError(f"unknown layout {layout!r}")
    for k, (role, text) in enumerate(recs):
        s.turns.append(Turn("UNKNOWN", [Utterance(text, "UNKNOWN", 0, len(text), source=k)], text))
        gold.append(role)
    s.ensure_speakers()
    return s, gold


# ---- datasets ------------------------------------------------------------------------------------
@dataclass
class RoleExamples:
    rows: list[dict[str, float]] = field(default_factory=list)
    y: list[int] = field(default_factory=list)


def role_examples(cs, augment: bool = True) -> RoleExamples:
    s, gold = labelled_session(cs)
    merge_turns(s)
    turns = [(t.speaker, t.text) for t in s.turns]
    views = [turns]
    if augment:
        views += [turns[:n] for n in PREFIXES if len(turns) > n * 1.5]
    ex = RoleExamples()
    for v in views:
        for sid, f in speaker_features(v).items():
            ex.rows.append(f)
            ex.y.append(int(gold[sid] == "therapist"))
    return ex


@dataclass
class TurnExamples:
    rows: list[dict[str, float]] = field(default_factory=list)
    y: list[int] = field(default_factory=list)


def turn_examples(cs, layouts: Sequence[str] = ("turns", "sentences")) -> dict[str, TurnExamples]:
    out = {}
    for layout in layouts:
        s, gold = unlabelled_session(cs, layout)
        units = Diarizer.units(s)
        texts = [s.turns[ti].utterances[ui].text[a:b] for ti, ui, a, b in units]
        records = [ti for ti, _, _, _ in units]
        roles = [gold[ti] for ti in records]
        ex = TurnExamples(boundary_features(texts, records),
                          [int(roles[k] != roles[k + 1]) for k in range(len(roles) - 1)])
        out[layout] = ex
    return out


# ---- fitting ---------------------------------------------------------------------------------------
def fit_linear(name: str, features: Sequence[str], rows: list[dict[str, float]], y: Sequence[int],
               groups: Sequence[str], C: float, meta: dict | None = None, calibrate: bool = True) -> LinearModel:
    """Standardised logistic regression + Platt calibration on grouped out-of-fold scores."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold
    from sklearn.preprocessing import StandardScaler

    X = np.array([[r.get(f, 0.0) for f in features] for r in rows], dtype=float)
    y = np.asarray(y, dtype=int)
    groups = np.asarray(groups)

    def fit(Xt, yt):
        sc = StandardScaler().fit(Xt)
        sc.scale_[sc.scale_ == 0] = 1.0
        lr = LogisticRegression(C=C, max_iter=3000).fit(sc.transform(Xt), yt)
        return sc, lr

    sc, lr = fit(X, y)
    a, b = 1.0, 0.0
    if calibrate and len(set(groups)) >= 5:
        oof = np.zeros(len(y))
        for tr, te in GroupKFold(n_splits=5).split(X, y, groups):
            s2, l2 = fit(X[tr], y[tr])
            oof[te] = l2.decision_function(s2.transform(X[te]))
        cal = LogisticRegression(C=1e4, max_iter=1000).fit(oof[:, None], y)
        a, b = float(cal.coef_[0, 0]), float(cal.intercept_[0])
    return LinearModel(name=name, features=list(features), mean=sc.mean_.tolist(), scale=sc.scale_.tolist(),
                       coef=lr.coef_[0].tolist(), intercept=float(lr.intercept_[0]), calibration=(a, b),
                       threshold=0.5, meta=dict(meta or {}, n_train=int(len(y)), C=C))


def fit_role_model(sessions: Iterable, role_ex: dict | None = None, meta: dict | None = None) -> LinearModel:
    rows, y, groups = [], [], []
    for cs in sessions:
        ex = role_ex[cs_key(cs)] if role_ex is not None else role_examples(cs)
        rows += ex.rows
        y += ex.y
        groups += [cs_group(cs)] * len(ex.y)
    return fit_linear("role_model", SPEAKER_FEATURES, rows, y, groups, ROLE_C,
                      meta=dict(meta or {}, target="P(speaker is therapist)"))


def fit_turn_model(sessions: Iterable, turn_ex: dict | None = None, meta: dict | None = None) -> LinearModel:
    rows, y, groups = [], [], []
    for cs in sessions:
        exs = turn_ex[cs_key(cs)] if turn_ex is not None else turn_examples(cs)
        for ex in exs.values():
            rows += ex.rows
            y += ex.y
            groups += [cs_group(cs)] * len(ex.y)
    return fit_linear("turn_model", BOUNDARY_FEATURES, rows, y, groups, TURN_C,
                      meta=dict(meta or {}, target="P(speaker changes between consecutive sentences)"))


def cs_key(cs) -> str:
    return f"{cs.corpus}:{cs.session}"


def cs_group(cs) -> str:
    return f"{cs.corpus}:{cs.group}"


def load_dev_sessions(corpus_dir=None) -> list:
    from ..data.corpora import read_annomi, read_esconv
    out = list(read_annomi(corpus_dir).values()) + list(read_esconv(corpus_dir).values())
    return [cs for cs in out if len({u.speaker for u in cs.utterances}) >= 1 and cs.utterances]


def shuffled(seq: list, seed: int = 0) -> list:
    seq = list(seq)
    random.Random(seed).shuffle(seq)
    return seq
