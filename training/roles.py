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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from alliance_nlp.diarize import Diarizer, merge_turns
from alliance_nlp.diarize.features import (
    BOUNDARY_FEATURES,
    SPEAKER_FEATURES,
    TEXT_FEATURES,
    add_line_gap,
    boundary_features,
    speaker_features,
)
from alliance_nlp.ingest._common import parse_time
from alliance_nlp.linear import LinearModel
from alliance_nlp.session import Session, Turn, Utterance

ROLE_C = 0.5
TURN_C = 1.0
PREFIXES = (12, 40)  # augmentation: the first N turns of each long session as extra examples


def _hms(ts: str | None) -> float | None:
    """A corpus timestamp in seconds (the readers' parser); None where it is missing or malformed."""
    try:
        return parse_time(ts)
    except ValueError:
        return None


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
    """Unlabelled Session (all speakers UNKNOWN) and the gold roles: one per record (turn) for the
    "turns" and "sentences" layouts; for "chunks" (records of 2-12 sentences) one list per record of
    (char offset, role) for the sentences in it."""
    from alliance_nlp.segment import sentence_spans

    s = Session(id=f"{cs.corpus}:{cs.session}", unlabelled=True)
    gold: list[str] = []
    texts = [" ".join(u.text.split()) for u in cs.utterances]
    if layout in ("sentences", "chunks"):
        spans = sentence_spans(texts)
        recs = [(u.speaker, t[a:b]) for u, t, sp in zip(cs.utterances, texts, spans) for a, b in sp]
        if layout == "chunks":  # blocks of 2-12 sentences cut regardless of speaker (pasted text, ASR)
            rng = random.Random(f"{cs.corpus}:{cs.session}")
            flat, i = [], 0
            while i < len(recs):
                n = rng.randint(2, 12)
                part = recs[i : i + n]
                # a chunk is one record; it has several gold roles, so keep (role, text) per sentence
                flat.append(part)
                i += n
            s.meta["chunks"] = True
            gold_spans = []
            for k, part in enumerate(flat):
                text, marks = "", []
                for r, t in part:
                    if text:
                        text += " "
                    marks.append((len(text), r))
                    text += t
                gold_spans.append(marks)
                s.turns.append(Turn("UNKNOWN", [Utterance(text, "UNKNOWN", 0, len(text), source=k)], text))
            s.ensure_speakers()
            return s, gold_spans
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
    if augment:  # each speaker alone (a one-speaker file, e.g. a monologue or one side of a recording)
        views += [[t for t in turns if t[0] == sid] for sid in gold]
    ex = RoleExamples()
    for v in views:
        if not v:
            continue
        for sid, f in speaker_features(v).items():
            ex.rows.append(f)
            ex.y.append(int(gold[sid] == "therapist"))
    return ex


@dataclass
class TurnExamples:
    rows: list[dict[str, float]] = field(default_factory=list)
    y: list[int] = field(default_factory=list)
    units: list[str] = field(default_factory=list)  # sentence texts (for the unit role model)
    unit_y: list[int] = field(default_factory=list)  # 1 = therapist


LAYOUTS = ("turns", "sentences", "chunks")


def unit_data(s: Session, gold: list[str]) -> tuple[list[str], list[int], list[str]]:
    """Sentence units of an unlabelled corpus session: texts, record index, gold role."""
    units = Diarizer.units(s)
    texts = [s.turns[ti].utterances[ui].text[a:b] for ti, ui, a, b in units]
    records = [ti for ti, _, _, _ in units]
    if s.meta.get("chunks"):  # role of the gold sentence in which the unit starts
        roles = [[r for at, r in gold[ti] if at <= a][-1] for ti, _, a, _ in units]
    else:
        roles = [gold[ti] for ti in records]
    return texts, records, roles


def turn_examples(cs, layouts: Sequence[str] = LAYOUTS) -> dict[str, TurnExamples]:
    out = {}
    for layout in layouts:
        s, gold = unlabelled_session(cs, layout)
        texts, records, roles = unit_data(s, gold)
        ex = TurnExamples(
            boundary_features(texts, records),
            [int(roles[k] != roles[k + 1]) for k in range(len(roles) - 1)],
            texts,
            [int(r == "therapist") for r in roles],
        )
        out[layout] = ex
    return out


# ---- fitting ---------------------------------------------------------------------------------------
def fit_linear(
    name: str,
    features: Sequence[str],
    rows: list[dict[str, float]],
    y: Sequence[int],
    groups: Sequence[str],
    C: float,
    meta: dict | None = None,
    calibrate: bool = True,
) -> LinearModel:
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
    return LinearModel(
        name=name,
        features=list(features),
        mean=sc.mean_.tolist(),
        scale=sc.scale_.tolist(),
        coef=lr.coef_[0].tolist(),
        intercept=float(lr.intercept_[0]),
        calibration=(a, b),
        threshold=0.5,
        meta=dict(meta or {}, n_train=int(len(y)), C=C),
    )


def fit_role_model(sessions: Iterable, role_ex: dict | None = None, meta: dict | None = None) -> LinearModel:
    rows, y, groups = [], [], []
    for cs in sessions:
        ex = role_ex[cs_key(cs)] if role_ex is not None else role_examples(cs)
        rows += ex.rows
        y += ex.y
        groups += [cs_group(cs)] * len(ex.y)
    return fit_linear(
        "role_model", SPEAKER_FEATURES, rows, y, groups, ROLE_C, meta=dict(meta or {}, target="P(speaker is therapist)")
    )


def fit_turn_model(sessions: Iterable, turn_ex: dict | None = None, meta: dict | None = None) -> LinearModel:
    """Two stages: a text-only boundary model, then the full model with the document-level line-gap
    features computed from the first stage's scores (stored inside the model as meta["stage1"])."""
    docs, rows, y, groups = [], [], [], []
    for cs in sessions:
        exs = turn_ex[cs_key(cs)] if turn_ex is not None else turn_examples(cs)
        for ex in exs.values():
            docs.append((len(rows), len(rows) + len(ex.rows)))
            rows += [dict(r) for r in ex.rows]
            y += ex.y
            groups += [cs_group(cs)] * len(ex.y)
    stage1 = fit_linear(
        "turn_text_model",
        TEXT_FEATURES,
        rows,
        y,
        groups,
        TURN_C,
        calibrate=False,
        meta={"target": "P(speaker change) from the two sentences' text only"},
    )
    p = stage1.predict_proba(stage1.vectorize(rows))
    for a, b in docs:
        add_line_gap(rows[a:b], p[a:b])
    return fit_linear(
        "turn_model",
        BOUNDARY_FEATURES,
        rows,
        y,
        groups,
        TURN_C,
        meta=dict(meta or {}, target="P(speaker changes between consecutive sentences)", stage1=stage1.to_dict()),
    )


def fit_unit_role_model(
    sessions: Iterable,
    turn_ex: dict | None = None,
    meta: dict | None = None,
    min_df: int = 5,
    max_features: int = 4000,
    C: float = 0.1,
) -> LinearModel:
    """Sentence-level P(therapist) over a sparse bag of words (emission of the joint decoder)."""
    from collections import Counter

    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    from alliance_nlp.diarize.features import unit_role_features

    rows, y, groups = [], [], []
    for cs in sessions:
        exs = turn_ex[cs_key(cs)] if turn_ex is not None else turn_examples(cs, ("sentences",))
        ex = next(iter(exs.values()))  # sentence units are the same in every layout
        rows += [unit_role_features(t) for t in ex.units]
        y += ex.unit_y
        groups += [cs_group(cs)] * len(ex.unit_y)
    df = Counter(f for r in rows for f in r)
    vocab = sorted((f for f, c in df.items() if c >= min_df), key=lambda f: (-df[f], f))[:max_features]
    vocab.sort()
    index = {f: i for i, f in enumerate(vocab)}
    ri, ci = [], []
    for i, r in enumerate(rows):
        for f in r:
            j = index.get(f)
            if j is not None:
                ri.append(i)
                ci.append(j)
    X = sparse.csr_matrix((np.ones(len(ri)), (ri, ci)), shape=(len(rows), len(vocab)))
    y = np.asarray(y)
    groups = np.asarray(groups)

    def fit(Xt, yt):
        return LogisticRegression(C=C, max_iter=3000).fit(Xt, yt)

    lr = fit(X, y)
    oof = np.zeros(len(y))
    for tr, te in GroupKFold(n_splits=5).split(X, y, groups):
        oof[te] = fit(X[tr], y[tr]).decision_function(X[te])
    cal = LogisticRegression(C=1e4, max_iter=1000).fit(oof[:, None], y)
    return LinearModel(
        name="unit_role_model",
        features=vocab,
        mean=[0.0] * len(vocab),
        scale=[1.0] * len(vocab),
        coef=lr.coef_[0].tolist(),
        intercept=float(lr.intercept_[0]),
        calibration=(float(cal.coef_[0, 0]), float(cal.intercept_[0])),
        meta=dict(
            meta or {}, n_train=int(len(y)), C=C, prior=float(y.mean()), target="P(sentence is spoken by the therapist)"
        ),
    )


def cs_key(cs) -> str:
    return f"{cs.corpus}:{cs.session}"


def cs_group(cs) -> str:
    return f"{cs.corpus}:{cs.group}"


def load_dev_sessions(corpus_dir=None) -> list:
    from training.corpora import read_annomi, read_esconv

    out = list(read_annomi(corpus_dir).values()) + list(read_esconv(corpus_dir).values())
    return [cs for cs in out if len({u.speaker for u in cs.utterances}) >= 1 and cs.utterances]
