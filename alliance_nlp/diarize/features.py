"""Hand-built language features for the two diarization models.

* Speaker-level features (`speaker_features`): what distinguishes a therapist from a client across a
  whole session: question rate, reflective stems, second- vs first-person pronouns, talk share, turn
  length, who speaks first, hedges, advice, affirmation, emotion words. Each rate also enters
  relative to the other speakers' mean (`rel_*`), so the model compares speakers within a session.
* Boundary features (`boundary_features`): whether the speaker changes between two consecutive text
  units (sentences): question then answer, turn-initial discourse markers, pronoun shift you -> I,
  lengths, lexical overlap, record (line) boundaries.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

TOKEN = re.compile(r"[a-z]+(?:['\u2019][a-z]+)*(?:-[a-z]+)*")

SECOND = {"you", "your", "yours", "yourself", "yourselves", "you're", "you've", "you'll", "you'd", "ya"}
FIRST = {"i", "me", "my", "mine", "myself", "i'm", "i've", "i'll", "i'd", "im", "ive"}
WE = {"we", "us", "our", "ours", "we're", "we've", "let's"}
HEDGES = {"maybe", "perhaps", "might", "probably", "guess", "kinda", "sorta", "possibly", "somewhat"}
EMOTION = {
    "anxious",
    "anxiety",
    "depressed",
    "depression",
    "sad",
    "stress",
    "stressed",
    "stressful",
    "worried",
    "worry",
    "lonely",
    "alone",
    "upset",
    "angry",
    "mad",
    "scared",
    "afraid",
    "hurt",
    "cry",
    "crying",
    "tired",
    "hate",
    "struggle",
    "struggling",
    "hard",
    "difficult",
    "frustrated",
    "frustrating",
    "overwhelmed",
    "panic",
    "hopeless",
    "lost",
    "miss",
    "pain",
    "fear",
    "awful",
    "terrible",
    "bad",
}
BACKCHANNEL = {
    "mm-hmm",
    "mhm",
    "mm",
    "hmm",
    "uh-huh",
    "yeah",
    "yes",
    "yep",
    "okay",
    "ok",
    "right",
    "sure",
    "um",
    "uh",
    "oh",
    "alright",
    "no",
    "nope",
    "ah",
    "huh",
    "mm-hm",
    "hm",
    "uh-hum",
    "true",
}
REFLECT = re.compile(
    r"\b(it sounds like|sounds like|it seems like|it seems|seems like|so you|so, you|you feel|you're feeling|"
    r"you are feeling|you felt|you've been|what i'm hearing|i'm hearing|i hear you|i hear that|you mentioned|"
    r"you said|you're saying|you are saying|you want|you're worried|you're not sure|you'd like|"
    r"on one hand|on the other hand|part of you)\b"
)
QSTART = re.compile(
    r"^(what|how|why|when|where|which|who|do you|did you|are you|have you|would you|could you|can you|"
    r"is it|is that|is there|does|will you|were you|tell me)\b"
)
ADVICE = re.compile(
    r"\b(you could|you should|have you tried|have you thought|have you considered|maybe you|try to|try and|"
    r"i suggest|i would suggest|i recommend|would you consider|it might help|it may help|it would help|"
    r"what if you|you might want|you may want|i think you)\b"
)
AFFIRM = re.compile(
    r"\b(that's great|that is great|good for you|that's good|i understand|i'm sorry|i am sorry|that must|"
    r"i can understand|i can imagine|glad|well done|proud of you|that's okay|it's okay|you're welcome|"
    r"thank you for sharing|i appreciate)\b"
)
THANKS = re.compile(r"\b(thank you|thanks|thank)\b")

SPEAKER_RATES = (
    "q_turn",
    "reflect_turn",
    "qstart_turn",
    "advice_turn",
    "affirm_turn",
    "thanks_turn",
    "backchannel_turn",
    "you_word",
    "i_word",
    "we_word",
    "you_share",
    "hedge_word",
    "emotion_word",
    "log_mean_words",
    "first_person_emotion_turn",
)
SPEAKER_FEATURES = (
    SPEAKER_RATES
    + tuple(f"rel_{f}" for f in SPEAKER_RATES)
    + ("talk_share", "turn_share", "speaks_first", "n_speakers_gt2", "single_speaker")
)


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower().replace("\u2019", "'"))


def _speaker_stats(texts: Sequence[str]) -> dict[str, float]:
    n = max(len(texts), 1)
    c: Counter[str] = Counter()
    words = 0
    for t in texts:
        low = t.lower().replace("\u2019", "'")
        toks = tokens(low)
        words += len(toks)
        c["q_turn"] += "?" in t
        c["reflect_turn"] += bool(REFLECT.search(low))
        c["qstart_turn"] += bool(QSTART.match(low.lstrip(" -\"'")))
        c["advice_turn"] += bool(ADVICE.search(low))
        c["affirm_turn"] += bool(AFFIRM.search(low))
        c["thanks_turn"] += bool(THANKS.search(low))
        c["backchannel_turn"] += bool(toks) and len(toks) <= 3 and all(x in BACKCHANNEL for x in toks)
        fp = sum(x in FIRST for x in toks)
        emo = sum(x in EMOTION for x in toks)
        c["first_person_emotion_turn"] += fp > 0 and emo > 0
        c["you"] += sum(x in SECOND for x in toks)
        c["i"] += fp
        c["we"] += sum(x in WE for x in toks)
        c["hedge"] += sum(x in HEDGES for x in toks)
        c["emotion"] += emo
    w = max(words, 1)
    out = {
        k: c[k] / n
        for k in (
            "q_turn",
            "reflect_turn",
            "qstart_turn",
            "advice_turn",
            "affirm_turn",
            "thanks_turn",
            "backchannel_turn",
            "first_person_emotion_turn",
        )
    }
    out.update(
        you_word=c["you"] / w,
        i_word=c["i"] / w,
        we_word=c["we"] / w,
        hedge_word=c["hedge"] / w,
        emotion_word=c["emotion"] / w,
        you_share=(c["you"] + 1) / (c["you"] + c["i"] + 2),
        log_mean_words=math.log1p(words / n),
    )
    out["_words"], out["_turns"] = words, len(texts)
    return out


def speaker_features(turns: Sequence[tuple[str, str]]) -> dict[str, dict[str, float]]:
    """Feature dict per speaker id, from a session's (speaker, text) turns in order."""
    by: dict[str, list[str]] = {}
    for spk, text in turns:
        by.setdefault(spk, []).append(text)
    stats = {s: _speaker_stats(t) for s, t in by.items()}
    total_words = sum(v["_words"] for v in stats.values()) or 1
    total_turns = sum(v["_turns"] for v in stats.values()) or 1
    first = turns[0][0] if turns else None
    out: dict[str, dict[str, float]] = {}
    for s, v in stats.items():
        others = [stats[o] for o in stats if o != s]
        f = {k: v[k] for k in SPEAKER_RATES}
        for k in SPEAKER_RATES:
            f[f"rel_{k}"] = (v[k] - sum(o[k] for o in others) / len(others)) if others else 0.0
        f["talk_share"] = v["_words"] / total_words
        f["turn_share"] = v["_turns"] / total_turns
        f["speaks_first"] = float(s == first)
        f["n_speakers_gt2"] = float(len(stats) > 2)
        f["single_speaker"] = float(len(stats) == 1)
        out[s] = f
    return out


# ---- speaker-change boundaries --------------------------------------------------------------------
MARKERS = (
    "yeah",
    "yes",
    "no",
    "okay",
    "so",
    "well",
    "mm-hmm",
    "mm",
    "um",
    "uh",
    "right",
    "sure",
    "oh",
    "thank",
    "thanks",
    "i",
    "you",
    "and",
    "but",
    "because",
    "that",
    "it",
    "what",
    "how",
    "hi",
    "hello",
    "sounds",
    "do",
    "are",
    "have",
    "can",
    "is",
    "not",
    "exactly",
    "hmm",
    "ok",
    "good",
)
_MARKER_ALIASES = {
    "mhm": "mm-hmm",
    "mm-hm": "mm-hmm",
    "uh-huh": "mm-hmm",
    "hmm": "hmm",
    "yep": "yeah",
    "yup": "yeah",
    "alright": "okay",
    "nope": "no",
    "hey": "hi",
}
STOP = {
    "the",
    "a",
    "an",
    "and",
    "or",
    "but",
    "to",
    "of",
    "in",
    "on",
    "for",
    "is",
    "it",
    "that",
    "this",
    "i",
    "you",
    "my",
    "your",
    "me",
    "we",
    "so",
    "be",
    "was",
    "are",
    "with",
    "just",
    "like",
    "have",
    "do",
    "not",
    "what",
    "about",
    "at",
    "as",
    "if",
    "know",
    "can",
    "it's",
    "i'm",
    "that's",
    "yeah",
}

BOUNDARY_FEATURES = (
    "p_q",
    "n_q",
    "p_terminal",
    "p_dash_end",
    "n_dash_start",
    "n_lower_start",
    "p_you",
    "p_i",
    "n_you",
    "n_i",
    "p_you_n_i",
    "p_i_n_you",
    "p_log_len",
    "n_log_len",
    "p_short",
    "n_short",
    "p_backchannel",
    "n_backchannel",
    "overlap",
    "p_q_n_answer",
    "record_boundary",
    "rb_x_log_sents_per_record",
    "log_sents_per_record",
    "n_reflect",
    "n_qstart",
    "p_emotion_i",
    "n_emotion_i",
) + tuple(f"start_{m}" for m in MARKERS)
RECORD_FEATURES = ("record_boundary", "rb_x_log_sents_per_record", "log_sents_per_record")
TEXT_FEATURES = tuple(f for f in BOUNDARY_FEATURES if f not in RECORD_FEATURES)
# Document-level: do line breaks in this file line up with speaker changes? A text-only first stage
# scores every boundary; `line_gap` = its mean P(change) at line breaks minus within lines. Large in a
# file with one turn per line, near zero for sentence-per-line text or blocks cut regardless of speaker.
DOC_FEATURES = ("line_gap", "rb_x_line_gap", "within_x_line_gap")
BOUNDARY_FEATURES = BOUNDARY_FEATURES + DOC_FEATURES


def add_line_gap(rows: list[dict[str, float]], p_text: Sequence[float]) -> list[dict[str, float]]:
    """Add the document-level line-break features to boundary rows (in place), given stage-1 scores."""
    at = [p for r, p in zip(rows, p_text) if r["record_boundary"]]
    within = [p for r, p in zip(rows, p_text) if not r["record_boundary"]]
    gap = (sum(at) / len(at) - sum(within) / len(within)) if at and within else 0.0
    for r in rows:
        r["line_gap"] = gap
        r["rb_x_line_gap"] = gap * r["record_boundary"]
        r["within_x_line_gap"] = gap * (1 - r["record_boundary"])
    return rows


def _unit_info(text: str) -> dict:
    low = text.lower().replace("\u2019", "'")
    toks = tokens(low)
    first = toks[0] if toks else ""
    first = _MARKER_ALIASES.get(first, first)
    stripped = text.strip()
    return {
        "toks": toks,
        "first": first,
        "q": "?" in text,
        "terminal": stripped[-1:] in (".", "!", "?") and not stripped.endswith("..."),
        "dash_end": stripped.endswith(("-", "\u2014", "\u2013", "...", "\u2026")),
        "dash_start": stripped[:1] in ("-", "\u2014", "\u2013", "\u2026") or stripped.startswith("..."),
        "lower_start": stripped[:1].islower(),
        "you": any(x in SECOND for x in toks),
        "i": any(x in FIRST for x in toks),
        "backchannel": bool(toks) and len(toks) <= 3 and all(x in BACKCHANNEL for x in toks),
        "content": {x for x in toks if x not in STOP and len(x) > 2},
        "reflect": bool(REFLECT.search(low)),
        "qstart": bool(QSTART.match(low.lstrip(" -\"'"))),
        "emotion_i": any(x in EMOTION for x in toks) and any(x in FIRST for x in toks),
    }


def boundary_features(texts: Sequence[str], records: Sequence[int]) -> list[dict[str, float]]:
    """One feature dict per boundary between consecutive units (len(texts) - 1 of them).

    `records[k]` is the input record unit k came from (a boundary between records is a line break).
    """
    infos = [_unit_info(t) for t in texts]
    n_rec = len(set(records)) or 1
    lspr = math.log(len(texts) / n_rec) if texts else 0.0
    out = []
    for k in range(len(texts) - 1):
        p, n = infos[k], infos[k + 1]
        rb = float(records[k] != records[k + 1])
        union = p["content"] | n["content"]
        f = {
            "p_q": float(p["q"]),
            "n_q": float(n["q"]),
            "p_terminal": float(p["terminal"]),
            "p_dash_end": float(p["dash_end"]),
            "n_dash_start": float(n["dash_start"]),
            "n_lower_start": float(n["lower_start"]),
            "p_you": float(p["you"]),
            "p_i": float(p["i"]),
            "n_you": float(n["you"]),
            "n_i": float(n["i"]),
            "p_you_n_i": float(p["you"] and n["i"]),
            "p_i_n_you": float(p["i"] and n["you"]),
            "p_log_len": math.log1p(len(p["toks"])),
            "n_log_len": math.log1p(len(n["toks"])),
            "p_short": float(len(p["toks"]) <= 3),
            "n_short": float(len(n["toks"]) <= 3),
            "p_backchannel": float(p["backchannel"]),
            "n_backchannel": float(n["backchannel"]),
            "overlap": len(p["content"] & n["content"]) / len(union) if union else 0.0,
            "p_q_n_answer": float(
                p["q"]
                and n["first"] in ("yeah", "yes", "no", "i", "well", "um", "uh", "mm-hmm", "not", "oh", "sure", "okay")
            ),
            "record_boundary": rb,
            "rb_x_log_sents_per_record": rb * lspr,
            "log_sents_per_record": lspr,
            "n_reflect": float(n["reflect"]),
            "n_qstart": float(n["qstart"]),
            "p_emotion_i": float(p["emotion_i"]),
            "n_emotion_i": float(n["emotion_i"]),
        }
        for m in MARKERS:
            f[f"start_{m}"] = float(n["first"] == m)
        out.append(f)
    return out


# ---- sentence-level role (emission for joint decoding) ---------------------------------------------
def unit_role_features(text: str) -> dict[str, float]:
    """Sparse bag of words plus a few shape flags for one sentence (therapist vs client)."""
    toks = tokens(text)
    f = {f"w={t}": 1.0 for t in toks}
    for a, b in zip(toks, toks[1:]):
        if a in SECOND or a in FIRST or b in SECOND or b in FIRST:
            f[f"b={a}_{b}"] = 1.0
    if toks:
        f[f"first={toks[0]}"] = 1.0
    if "?" in text:
        f["shape=q"] = 1.0
    n = len(toks)
    f["shape=len<=3" if n <= 3 else ("shape=len>20" if n > 20 else "shape=len4-20")] = 1.0
    return f
