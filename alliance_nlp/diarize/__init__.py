"""DIARIZE stage: who speaks when, and who is the therapist.

`Diarizer` (a pipeline component, Session -> Session) does three things, in order:

1. Unlabelled text (every record's speaker is "UNKNOWN", `session.unlabelled`): records are
   cut into sentences (spaCy sentencizer), a trained speaker-change model (logistic regression over
   features of adjacent sentences, `resources/turn_model.json`) scores each boundary, and speakers
   alternate SPEAKER_A / SPEAKER_B across the changes. The changes are decoded jointly (Viterbi over
   two parties) with a sentence-level therapist/client model (`resources/unit_role_model.json`,
   logistic regression over words), which keeps A and B from swapping after one missed or spurious
   change; `unit_model=False` gives plain alternation at P(change) > 0.5. This is a TWO-PARTY ASSUMPTION:
   a third voice in an unlabelled transcript is folded into A or B. A record cut by a change is split
   into pieces that keep its `source` (times split by ASR words or by characters). In a labelled
   session, a stray unlabelled record ("UNKNOWN") is taken as a continuation of the speaker before it.
2. Consecutive turns by the same speaker merge into one turn (text joined with a space; utterances keep
   their own source and times; char offsets point into the merged text).
3. Role attribution: a calibrated logistic regression over speaker-level language features
   (`resources/role_model.json`; question rate, reflections, you/I pronouns, talk share, ...) gives
   each speaker P(therapist). Two speakers are resolved jointly: the assignment (A=therapist,
   B=client or the reverse) with the larger product of probabilities, confidence = its posterior.
   One speaker: its likelier role. Three or more: the most therapist-like is the therapist (confidence
   = posterior that exactly that one is the therapist, treating speakers as independent), the most
   client-like of the rest the client, and each remaining speaker a second "client" when
   P(client) >= `second_client_min` (0.9; e.g. a couple or family session), else "other" (confidence
   = P(not therapist)). Roles the file states (role_method "label") are kept; user overrides
   (`therapist=` / `client=`, matched to speaker id or name, case-insensitive) win over everything and
   get role_method "user". With two speakers and one role fixed (by label or user), the other speaker
   gets the complementary role with the same method and confidence 1.0. Model confidences are capped
   at 0.999, so 1.0 always means "stated". Measured accuracy: evaluation/results/diarize.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import AllianceError
from ..linear import LinearModel
from ..resources import resource_path
from ..sentences import sentence_spans, split_utterance
from ..session import Session, Speaker, Turn, Utterance
from .features import add_line_gap, boundary_features, speaker_features, unit_role_features

DEFAULT_ROLE_MODEL = resource_path("role_model.json")
DEFAULT_TURN_MODEL = resource_path("turn_model.json")
DEFAULT_UNIT_MODEL = resource_path("unit_role_model.json")
UNKNOWN = "UNKNOWN"
MAX_MODEL_CONFIDENCE = 0.999
SPEAKER_IDS = ("SPEAKER_A", "SPEAKER_B")

__all__ = ["Diarizer", "SpeakerNotFoundError", "merge_turns", "LinearModel", "is_unlabelled"]


class SpeakerNotFoundError(AllianceError, ValueError):
    """A --therapist/--client name matches no speaker in the session."""


def _load(model: str | os.PathLike | LinearModel | None, default: Path) -> LinearModel:
    if isinstance(model, LinearModel):
        return model
    return LinearModel.load(Path(model) if model else default)


def is_unlabelled(session: Session) -> bool:
    return session.unlabelled or (bool(session.turns) and all(t.speaker == UNKNOWN for t in session.turns))


def merge_turns(session: Session) -> Session:
    """Merge consecutive turns by the same speaker (in place; returns the session)."""
    merged: list[Turn] = []
    for t in session.turns:
        if merged and merged[-1].speaker == t.speaker:
            prev = merged[-1]
            shift = len(prev.text) + 1
            for u in t.utterances:
                u.char_start += shift
                u.char_end += shift
            prev.text = prev.text + " " + t.text
            prev.utterances.extend(t.utterances)
            if t.meta:
                prev.meta.setdefault("merged_meta", []).append(t.meta)
        else:
            merged.append(t)
    for t in merged:
        for u in t.utterances:
            u.speaker = t.speaker
    session.turns = merged
    return session


class Diarizer:
    """Pipeline component: split unlabelled text into speakers, merge turns, attribute roles.

    therapist / client: speaker id or name to force into that role (case-insensitive).
    role_model / turn_model: paths to JSON linear models (or LinearModel objects); default: shipped.
    threshold: speaker-change probability above which a change is placed (default: the model's own).
    second_client_min: with 3+ speakers, P(client) needed for an extra speaker to count as a client.
    """

    def __init__(
        self,
        therapist: str | None = None,
        client: str | None = None,
        role_model: str | os.PathLike | LinearModel | None = None,
        turn_model: str | os.PathLike | LinearModel | None = None,
        unit_model: str | os.PathLike | LinearModel | None | bool = None,
        threshold: float | None = None,
        second_client_min: float = 0.9,
        merge: bool = True,
        emission_weight: float = 1.0,
    ):
        self.therapist, self.client = therapist, client
        self.role_model = _load(role_model, DEFAULT_ROLE_MODEL)
        self._turn_model_arg = turn_model
        self._turn_model: LinearModel | None = None
        self._stage1: LinearModel | None = None  # first-stage model nested in the turn model
        self._unit_model_arg = unit_model
        self._unit_model: LinearModel | None | Literal[False] = None
        self.emission_weight = emission_weight
        self.threshold = threshold
        self.second_client_min = second_client_min
        self.merge = merge

    @property
    def turn_model(self) -> LinearModel:
        if self._turn_model is None:  # only unlabelled input needs it
            self._turn_model = _load(self._turn_model_arg, DEFAULT_TURN_MODEL)
        return self._turn_model

    @property
    def unit_model(self) -> LinearModel | None:
        """Sentence-level P(therapist) model; None (plain alternation) when switched off with False."""
        if self._unit_model is None:
            arg = self._unit_model_arg
            self._unit_model = False if arg is False else _load(None if arg is True else arg, DEFAULT_UNIT_MODEL)
        return self._unit_model or None

    def decode(self, texts: list[str], records: list[int]) -> tuple[list[int], np.ndarray]:
        """Party label (0 = the first sentence's party, 1 = the other) per sentence unit.

        With the sentence role model: Viterbi over two parties {therapist-like, client-like}, with
        transition probabilities from the speaker-change model and emissions P(party | sentence) /
        P(party) (weighted by `emission_weight`); a change is where the decoded party flips. Without
        it: alternate at every boundary whose change probability exceeds the threshold.
        """
        probs = self.change_probabilities(texts, records)
        um = self.unit_model
        if um is None or not texts:
            thr = self.threshold if self.threshold is not None else self.turn_model.threshold
            labels, cur = [0], 0
            for p in probs:
                cur = 1 - cur if p > thr else cur
                labels.append(cur)
            return labels[: len(texts)], probs
        pt = np.clip(um.predict_proba_sparse([unit_role_features(t) for t in texts]), 1e-4, 1 - 1e-4)
        prior = float(um.meta.get("prior", 0.5))
        lam = self.emission_weight
        emit = np.stack([lam * (np.log(pt) - np.log(prior)), lam * (np.log(1 - pt) - np.log(1 - prior))], 1)
        pc = np.clip(probs, 1e-4, 1 - 1e-4)
        n = len(texts)
        score = emit[0].copy()
        back = np.zeros((n, 2), dtype=int)
        for k in range(1, n):
            stay, move = np.log(1 - pc[k - 1]), np.log(pc[k - 1])
            new = np.empty(2)
            for st in (0, 1):
                a, b = score[st] + stay, score[1 - st] + move
                back[k, st] = st if a >= b else 1 - st
                new[st] = max(a, b) + emit[k, st]
            score = new
        states = [int(np.argmax(score))]
        for k in range(n - 1, 0, -1):
            states.append(back[k, states[-1]])
        states.reverse()
        return [int(x != states[0]) for x in states], probs

    # ---- 1. unlabelled text ------------------------------------------------------------------------
    def change_probabilities(self, texts: list[str], records: list[int]) -> np.ndarray:
        if len(texts) < 2:
            return np.zeros(0)
        m = self.turn_model
        rows = boundary_features(texts, records)
        if "stage1" in m.meta:
            if self._stage1 is None:
                self._stage1 = LinearModel.from_dict(m.meta["stage1"])
            s1 = self._stage1
            add_line_gap(rows, s1.predict_proba(s1.vectorize(rows)).tolist())
        return m.predict_proba(m.vectorize(rows))

    @staticmethod
    def units(session: Session) -> list[tuple[int, int, int, int]]:
        """Sentence units of a session: (turn index, utterance index, char start, char end in utt.text)."""
        utts = [(ti, ui, u) for ti, t in enumerate(session.turns) for ui, u in enumerate(t.utterances)]
        spans = sentence_spans(u.text for _, _, u in utts)
        return [(ti, ui, a, b) for (ti, ui, _), sp in zip(utts, spans) for a, b in sp]

    def split_unlabelled(self, session: Session) -> Session:
        units = self.units(session)
        if not units:
            return session
        texts = [session.turns[ti].utterances[ui].text[a:b] for ti, ui, a, b in units]
        records = [ti * 100000 + ui for ti, ui, _, _ in units]
        labels, probs = self.decode(texts, records)
        # runs of units with one speaker inside one utterance become pieces of it
        new_turns: list[Turn] = []
        k = 0
        for ti, t in enumerate(session.turns):
            for ui, u in enumerate(t.utterances):
                runs: list[tuple[int, int, int]] = []  # (label, start, end)
                while k < len(units) and units[k][0] == ti and units[k][1] == ui:
                    lab, a, b = labels[k], units[k][2], units[k][3]
                    if runs and runs[-1][0] == lab:
                        runs[-1] = (lab, runs[-1][1], b)
                    else:
                        runs.append((lab, a, b))
                    k += 1
                if not runs:
                    continue
                base = Utterance(
                    text=u.text,
                    speaker=u.speaker,
                    char_start=0,
                    char_end=len(u.text),
                    start=u.start,
                    end=u.end,
                    source=u.source,
                    words=u.words,
                    meta=u.meta,
                )
                pieces = split_utterance(base, [(a, b) for _, a, b in runs])
                for (lab, _, _), piece in zip(runs, pieces):
                    piece.meta.pop("sentence", None)
                    if len(pieces) > 1:
                        piece.meta["split_by_diarize"] = True
                    spk = SPEAKER_IDS[lab]
                    piece.speaker, piece.char_start, piece.char_end = spk, 0, len(piece.text)
                    new_turns.append(Turn(speaker=spk, utterances=[piece], text=piece.text, meta=dict(t.meta)))
        session.turns = new_turns
        session.speakers.pop(UNKNOWN, None)
        for sid in SPEAKER_IDS:
            if any(t.speaker == sid for t in new_turns):
                session.speakers.setdefault(sid, Speaker(sid, name=sid))
        session.unlabelled = False
        session.provenance.setdefault("diarize", {}).update(
            {
                "speaker_changes": "model",
                "two_party_assumption": True,
                "units": len(units),
                "decoder": "viterbi" if self.unit_model is not None else "alternation",
                "changes": int(sum(a != b for a, b in zip(labels, labels[1:]))),
            }
        )
        return session

    @staticmethod
    def attach_continuations(session: Session) -> int:
        """In a labelled session, give UNKNOWN records the speaker before them (or after, at the start)."""
        n = 0
        known = [t.speaker for t in session.turns if t.speaker != UNKNOWN]
        if not known:
            return 0
        last = known[0]
        for t in session.turns:
            if t.speaker == UNKNOWN:
                t.speaker = last
                for u in t.utterances:
                    u.speaker = last
                t.meta["continuation"] = True
                n += 1
            else:
                last = t.speaker
        if n:
            session.speakers.pop(UNKNOWN, None)
        return n

    # ---- 3. roles ----------------------------------------------------------------------------------
    def therapist_probabilities(self, session: Session) -> dict[str, float]:
        feats = speaker_features([(t.speaker, t.text) for t in session.turns])
        ids = list(feats)
        if not ids:
            return {}
        m = self.role_model
        p = m.predict_proba(m.vectorize([feats[s] for s in ids]))
        return {s: float(x) for s, x in zip(ids, p)}

    @staticmethod
    def _match(session: Session, name: str) -> str:
        key = name.strip().casefold()
        for sid, sp in session.speakers.items():
            if sid.casefold() == key or (sp.name or "").casefold() == key:
                return sid
        # the speakers' names are not listed: they are transcript text (often a client's name)
        raise SpeakerNotFoundError(
            f"{session.source_path or session.id}: no speaker named {name!r} among its {len(session.speakers)} "
            "speakers (`alliance-nlp ingest FILE` shows their ids)"
        )

    def attribute_roles(self, session: Session) -> Session:
        session.ensure_speakers()
        present = list(dict.fromkeys(t.speaker for t in session.turns))
        fixed: dict[str, tuple[str, float, str]] = {}
        for sid in present:
            sp = session.speakers[sid]
            if sp.role_method == "label" and sp.role in ("therapist", "client", "other"):
                fixed[sid] = (sp.role, 1.0, "label")
        given = session.provenance.get("redact", {}).get("roles", {})  # names redacted before diarize
        for role, name in (
            ("therapist", given.get("therapist", self.therapist)),
            ("client", given.get("client", self.client)),
        ):
            if name:
                sid = self._match(session, name)
                fixed[sid] = (role, 1.0, "user")
                for other, (r, _, meth) in list(fixed.items()):  # a user role displaces a clashing label
                    if other != sid and r == role and meth == "label" and len(present) <= 2:
                        del fixed[other]
        free = [s for s in present if s not in fixed]
        probs = self.therapist_probabilities(session) if free else {}
        assigned: dict[str, tuple[str, float, str]] = dict(fixed)
        if free:
            if len(present) == 2 and len(free) == 1:
                ((f_sid, (f_role, _, f_meth)),) = [(s, fixed[s]) for s in present if s in fixed]
                s = free[0]
                if f_role in ("therapist", "client"):
                    assigned[s] = ("client" if f_role == "therapist" else "therapist", 1.0, f_meth)
                else:
                    p = probs[s]
                    assigned[s] = ("therapist", p, "model") if p >= 0.5 else ("client", 1 - p, "model")
            elif len(present) == 2:
                a, b = free
                pa, pb = probs[a], probs[b]
                ab, ba = pa * (1 - pb), (1 - pa) * pb
                z = (ab + ba) or 1.0
                if ab >= ba:
                    assigned[a], assigned[b] = ("therapist", ab / z, "model"), ("client", ab / z, "model")
                else:
                    assigned[a], assigned[b] = ("client", ba / z, "model"), ("therapist", ba / z, "model")
            elif len(present) == 1:
                s = free[0]
                p = probs[s]
                assigned[s] = ("therapist", p, "model") if p >= 0.5 else ("client", 1 - p, "model")
            else:
                rest = list(free)
                roles_taken = {r for r, _, _ in fixed.values()}
                if "therapist" not in roles_taken and rest:
                    post = {}
                    for s in rest:
                        v = probs[s]
                        for o in rest:
                            if o != s:
                                v *= 1 - probs[o]
                        post[s] = v
                    z = sum(post.values()) or 1.0
                    t = max(rest, key=lambda s: probs[s])
                    assigned[t] = ("therapist", post[t] / z, "model")
                    rest.remove(t)
                if "client" not in roles_taken and rest:
                    c = min(rest, key=lambda s: probs[s])
                    assigned[c] = ("client", 1 - probs[c], "model")
                    rest.remove(c)
                for s in rest:
                    pc = 1 - probs[s]
                    assigned[s] = ("client", pc, "model") if pc >= self.second_client_min else ("other", pc, "model")
        for sid, (role, conf, meth) in assigned.items():
            sp = session.speakers[sid]
            if meth == "model":  # a model is never certain: keep 1.0 for roles stated by file or user
                conf = min(float(conf), MAX_MODEL_CONFIDENCE)
            sp.role, sp.role_confidence, sp.role_method = role, round(float(conf), 4), meth  # type: ignore[assignment]
        if probs:
            session.provenance.setdefault("diarize", {})["p_therapist"] = {s: round(p, 4) for s, p in probs.items()}
        return session

    # ---- component ---------------------------------------------------------------------------------
    def __call__(self, session: Session) -> Session:
        if not session.turns:
            return session
        info = session.provenance.setdefault("diarize", {})
        if is_unlabelled(session):
            self.split_unlabelled(session)
        else:
            n = self.attach_continuations(session)
            if n:
                info["continuations"] = n
        if self.merge:
            merge_turns(session)
        self.attribute_roles(session)
        info["role_model"] = self.role_model.meta.get("version", self.role_model.name)
        return session
