"""De-identification: typed, session-consistent placeholders for the HIPAA Safe Harbor identifiers in a session.

`Redactor().redact_session(session)` returns a redacted COPY of a session: every identifier it finds in
turn and utterance text, ASR words, speaker ids and names, the session id and source path, `meta` (the
file's header block) and the speaker ids inside provenance and results becomes a typed placeholder
(`[NAME_1]`, `[PLACE_2]`, `[DATE_1]`, `[PHONE_1]`, `[EMAIL_1]`, `[ID_1]`, `[ORG_1]`, `[URL_1]`). The same
identifier gets the same placeholder throughout the session (a person named in full and later by first
name or surname alone keeps one number), and character offsets stay consistent: each utterance's
`char_start`/`char_end` index its redacted text in the redacted turn text.

How identifiers are found (all offline, nothing is downloaded):

1. Pattern recognizers for the structured types: emails (written and spoken "x at y dot com"), URLs,
   bare domains and IP addresses, phone numbers (national and international layouts, extensions,
   helpline short codes after "call/text/line"), dates more specific than a year (numeric, month-name
   and ordinal forms), identifying numbers (SSN, NHS/NI numbers, record, member, policy, case, claim and
   licence numbers, letter-digit codes, vehicle registrations, social-media handles), street addresses,
   flat numbers, ZIP codes and UK postcodes. A number's left context ("NHS number", "call me on")
   decides between phone and ID.
2. For names, places and organisations, a token classifier (multinomial logistic regression over
   hand-made features: the word, its shape and affixes, neighbouring words, sentence position, and
   gazetteer membership) trained by `training/train_redactor.py` on synthetic conversational text.
   Its weights and gazetteers ship in `alliance_nlp/resources/redaction/`.
3. A titles rule ("Dr.", "Mrs.", "Father", "PC" … before a capitalised word), speaker labels that are
   names, and session-wide propagation: once a name, place or organisation is found anywhere in the
   session, every other occurrence of it (and of each part of a name) is redacted too; digit groups of
   found numbers ("the last four, 0938") likewise.

Years alone, weekdays, holidays, countries and states are kept (Safe Harbor allows them). Nothing here
guarantees that every identifier is found: see evaluation/results/redaction.md for measured recall.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError
from .integrity import verify_file
from .resources import resource_path
from .session import Session, Turn, Utterance

TYPES: tuple[str, ...] = ("NAME", "PLACE", "DATE", "PHONE", "EMAIL", "ID", "ORG", "URL")
MODEL_TYPES: tuple[str, ...] = ("NAME", "PLACE", "ORG")
MODEL_FORMAT = "alliance-nlp/redaction-tagger"
PLACEHOLDER_RE = re.compile(r"\[(?:NAME|PLACE|DATE|PHONE|EMAIL|ID|ORG|URL)(?:_\d+)?\]")


def redaction_dir() -> Path:
    return resource_path("redaction")


# ---- spans ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Span:
    """An identifier found in a text: [start, end) character offsets, its type, and what found it."""

    start: int
    end: int
    type: str
    text: str
    source: str = "pattern"  # pattern | model | title | speaker | propagated
    score: float = 1.0


_PRIORITY = {"EMAIL": 0, "URL": 1, "DATE": 2, "PHONE": 3, "ID": 4, "PLACE": 5, "ORG": 6, "NAME": 7}
_SOURCE_RANK = {"pattern": 0, "speaker": 1, "title": 2, "propagated": 3, "model": 4}


def merge_spans(spans: Iterable[Span], text: str) -> list[Span]:
    """Overlapping spans become one; its type is the one of the most trusted source (patterns first)."""
    out: list[Span] = []
    for s in sorted(spans, key=lambda s: (s.start, -s.end)):
        if s.end <= s.start:
            continue
        if out and s.start < out[-1].end:
            prev = out[-1]
            end = max(prev.end, s.end)
            best = min((prev, s), key=lambda x: (_SOURCE_RANK.get(x.source, 9), _PRIORITY[x.type], -(x.end - x.start)))
            out[-1] = Span(prev.start, end, best.type, text[prev.start : end], best.source, max(prev.score, s.score))
        else:
            out.append(s)
    return out


# ---- tokens and features -------------------------------------------------------------------------
_LETTERS = r"[^\W\d_]"
TOKEN_RE = re.compile(rf"{_LETTERS}+(?:[-'’.]{_LETTERS}+)*|\d+(?:[.,:/-]\d+)*|[^\w\s]", re.UNICODE)
_POSSESSIVE_RE = re.compile(r"['’]s$", re.IGNORECASE)


@dataclass(frozen=True)
class Token:
    start: int
    end: int
    text: str


def tokenize(text: str) -> list[Token]:
    """Words (with inner hyphens and apostrophes: Nakamura-Bell, O'Brien), numbers and punctuation;
    a possessive 's is its own token."""
    out: list[Token] = []
    for m in TOKEN_RE.finditer(text):
        s, e, t = m.start(), m.end(), m.group()
        pm = _POSSESSIVE_RE.search(t) if len(t) > 3 else None
        if pm:
            out.append(Token(s, s + pm.start(), t[: pm.start()]))
            out.append(Token(s + pm.start(), e, t[pm.start() :]))
        else:
            out.append(Token(s, e, t))
    return out


def _strip_accents(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c))


def shape(word: str) -> str:
    """Compressed character shape: Maya -> Xx, O'Brien -> X'Xx, 07700 -> d, RC-55 -> X-d."""
    out: list[str] = []
    for ch in word:
        c = "X" if ch.isupper() else "x" if ch.isalpha() else "d" if ch.isdigit() else ch
        if not out or out[-1] != c:
            out.append(c)
    return "".join(out)[:8]


TITLES = frozenset(
    """dr doctor mr mrs ms miss mx prof professor father fr rev reverend pc dc sgt sergeant officer
nurse coach aunt auntie uncle tía tia tío tio sister brother saint st sr""".split()
)
NAME_TITLES = (
    "Dr",
    "Doctor",
    "Mr",
    "Mrs",
    "Ms",
    "Miss",
    "Mx",
    "Prof",
    "Professor",
    "Father",
    "Fr",
    "Rev",
    "Reverend",
    "PC",
    "DC",
    "Sgt",
    "Sergeant",
    "Officer",
    "Aunt",
    "Auntie",
    "Uncle",
    "Tía",
    "Tia",
    "Tío",
    "Tio",
    "Nana",
    "Grandma",
    "Grandpa",
    "Coach",
    "Pastor",
    "Rabbi",
    "Imam",
    "Judge",
    "Detective",
)
KIN = frozenset(
    """sister brother mum mom mother dad father son daughter husband wife partner boyfriend girlfriend
friend mate cousin aunt uncle niece nephew gran granny grandma grandpa grandad grandmother grandfather nan nana
boss manager colleague coworker teacher therapist counsellor counselor doctor gp psychiatrist neighbour neighbor
fiancé fiance fiancée fiancee ex stepdad stepmum stepmom kid kids child baby wife's husband's flatmate roommate
supervisor dean principal nurse coach sponsor pastor priest vicar lawyer solicitor worker officer named called
called""".split()
)
AMBIGUOUS_STARTERS = frozenset(
    """will may can hope mark bill sue pat guy don frank rich chase drew gene art ray sunny
joy faith grace dawn summer april june august honey sky""".split()
)
SENT_END = frozenset({".", "?", "!", ":", ";", "…", '"', "“", "”", "(", "-", "–", "—"})


@dataclass
class Gazetteers:
    """Lower-cased word lists the tagger's features look up (see resources/redaction/README.md)."""

    first: frozenset[str] = frozenset()
    last: frozenset[str] = frozenset()
    place: frozenset[str] = frozenset()  # single words of towns and cities (and full names)
    big_place: frozenset[str] = frozenset()  # countries, states, continents: not identifiers
    common: frozenset[str] = frozenset()  # common lower-case English words
    proper_common: frozenset[str] = frozenset()  # capitalised common words: weekdays, nationalities, holidays
    org_words: frozenset[str] = frozenset()  # Clinic, Hospital, School, Ltd ...
    place_words: frozenset[str] = frozenset()  # Street, Road, Park, Cemetery ...

    @classmethod
    def from_dict(cls, d: dict[str, Iterable[str]]) -> Gazetteers:
        return cls(**{k: frozenset(v) for k, v in d.items() if k in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, list[str]]:
        return {k: sorted(getattr(self, k)) for k in self.__dataclass_fields__}


_CONTRACTION_RE = re.compile(r"^([a-z]+)['’](?:d|ll|re|ve|s|m|t)$")


def _contraction_common(w: str, gaz: Gazetteers) -> bool:
    """he'd, she'll, you're, don't: contractions of common words."""
    m = _CONTRACTION_RE.match(w)
    if m is None:
        return False
    return m.group(1) in gaz.common or m.group(1) in ("don", "won", "can", "didn", "isn", "wasn")


FILLERS = frozenset(
    {
        "mm",
        "mmm",
        "hm",
        "hmm",
        "mhm",
        "mm-hmm",
        "mm-hm",
        "uh-huh",
        "um-hum",
        "uh-uh",
        "hmm-mm",
        "mm-mm",
        "um",
        "umm",
        "uh",
        "er",
        "erm",
        "ah",
        "oh",
        "ooh",
        "aw",
        "eh",
        "yeah-yeah",
    }
)


def is_common(word: str, gaz: Gazetteers) -> bool:
    """An ordinary word (or a filler, contraction, or stutter like "I-I") rather than a name."""
    w = word.lower()
    if w in gaz.common or w in gaz.proper_common or w in gaz.big_place or w in FILLERS:
        return True
    if _contraction_common(w, gaz):
        return True
    parts = [x for x in re.split(r"[-'’]", w) if x]
    return len(parts) > 1 and (len(set(parts)) == 1 or all(x in gaz.common or x in FILLERS for x in parts))


def token_features(tokens: Sequence[str], gaz: Gazetteers) -> list[list[str]]:
    """Feature strings per token for the NAME/PLACE/ORG tagger (shared by training and runtime)."""
    n = len(tokens)
    low = [t.lower() for t in tokens]
    plain = [_strip_accents(t) for t in low]
    title = [t[:1].isupper() for t in tokens]
    sent_start = [i == 0 or tokens[i - 1] in SENT_END for i in range(n)]

    def gz(i: int) -> list[str]:
        if i < 0 or i >= n:
            return ["BOS" if i < 0 else "EOS"]
        w, p = low[i], plain[i]
        f = []
        if w in gaz.first or p in gaz.first:
            f.append("first")
        if w in gaz.last or p in gaz.last:
            f.append("last")
        if w in gaz.place or p in gaz.place:
            f.append("place")
        if w in gaz.big_place:
            f.append("big")
        if w in gaz.common or _contraction_common(w, gaz):
            f.append("common")
        if w in gaz.proper_common:
            f.append("pcommon")
        if w in gaz.org_words:
            f.append("orgw")
        if w in gaz.place_words:
            f.append("placew")
        if w in TITLES or w.rstrip(".") in TITLES:
            f.append("title")
        if w in KIN:
            f.append("kin")
        if not f:
            f.append("none")
        return f

    gzs = [gz(i) for i in range(n)]
    feats: list[list[str]] = []
    for i, tok in enumerate(tokens):
        w = low[i]
        sh = shape(tok)
        cap = "T" if title[i] else "l"
        pos = "S" if sent_start[i] else "M"
        f = [
            "b",
            f"w={w}",
            f"sh={sh}",
            f"cap={cap}{pos}",
            f"s3={w[-3:]}",
            f"s2={w[-2:]}",
            f"p2={w[:2]}",
            f"len={min(len(tok), 10)}",
        ]
        f += [f"g={g}" for g in gzs[i]]
        f += [f"g={g}|{cap}{pos}" for g in gzs[i]]
        for d in (-2, -1, 1, 2):
            j = i + d
            if 0 <= j < n:
                f.append(f"w{d}={low[j]}")
                f.append(f"c{d}={'T' if title[j] else 'l'}{shape(tokens[j])[:2]}")
                f += [f"g{d}={g}" for g in gzs[j]]
            else:
                f.append(f"w{d}=<>")
        if i > 0:
            f.append(f"w-1|cap={low[i - 1]}|{cap}")
            f.append(f"g-1|g={'+'.join(gzs[i - 1])}|{'+'.join(gzs[i])}")
        if i + 1 < n:
            f.append(f"cap|w+1={cap}|{low[i + 1]}")
            f.append(f"g|g+1={'+'.join(gzs[i])}|{'+'.join(gzs[i + 1])}")
        if i > 1:
            f.append(f"w-2w-1={low[i - 2]}|{low[i - 1]}")
        if i + 2 < n:
            f.append(f"w+1w+2={low[i + 1]}|{low[i + 2]}")
        feats.append(f)
    return feats


UNKNOWN_CAP_MIN = 0.1  # entity probability enough for a capitalised word no word list knows, mid-sentence
_EDGE_WORDS = frozenset({"of", "the", "and", "&", "for", "a", "an", "in", "at", "on", "to"})


# ---- the tagger ----------------------------------------------------------------------------------
class Tagger:
    """Logistic-regression token tagger (labels O, NAME, PLACE, ORG) with weights from JSON."""

    def __init__(
        self,
        labels: Sequence[str],
        vocab: dict[str, int],
        weights: np.ndarray,
        bias: np.ndarray,
        gaz: Gazetteers,
        threshold: float = 0.5,
        meta: dict[str, Any] | None = None,
    ):
        self.labels = list(labels)
        self.vocab = vocab
        self.weights = weights.astype(np.float32)
        self.bias = bias.astype(np.float32)
        self.gaz = gaz
        self.threshold = threshold
        self.meta = meta or {}

    @classmethod
    def load(cls, folder: str | Path | None = None) -> Tagger:
        d = Path(folder) if folder else redaction_dir()
        mpath, gpath = d / "tagger.json.gz", d / "gazetteers.json.gz"
        for p in (mpath, gpath):
            if not p.is_file():
                raise ModelError(f"{p}: redaction resource missing (run `python -m training.train_redactor`)")
            verify_file(p)
        try:
            with gzip.open(mpath, "rt", encoding="utf-8") as fh:
                m = json.load(fh)
            with gzip.open(gpath, "rt", encoding="utf-8") as fh:
                g = json.load(fh)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{d}: unreadable redaction resource: {exc}") from None
        if m.get("format") != MODEL_FORMAT:
            raise ModelError(f"{mpath}: not a redaction tagger (format={m.get('format')!r})")
        feats: list[str] = m["features"]
        w = np.asarray(m["weights"], dtype=np.float32) / float(m.get("scale", 1.0))
        return cls(
            m["labels"],
            {f: i for i, f in enumerate(feats)},
            w.reshape(len(feats), len(m["labels"])),
            np.asarray(m["bias"], dtype=np.float32),
            Gazetteers.from_dict(g),
            float(m.get("threshold", 0.5)),
            {k: v for k, v in m.items() if k not in ("features", "weights", "bias")},
        )

    def proba(self, tokens: Sequence[str]) -> np.ndarray:
        if not tokens:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        feats = token_features(tokens, self.gaz)
        z = np.tile(self.bias, (len(tokens), 1))
        for i, fs in enumerate(feats):
            idx = [self.vocab[f] for f in fs if f in self.vocab]
            if idx:
                z[i] += self.weights[idx].sum(axis=0)
        z -= z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def _unknown_capital(self, toks: list[Token], i: int) -> bool:
        """A capitalised word inside a sentence that no word list knows as an ordinary word."""
        w = toks[i].text
        if i == 0 or toks[i - 1].text in SENT_END or not w[:1].isupper() or w.isupper() or not w[:1].isalpha():
            return False
        lw = w.lower()
        return not is_common(w, self.gaz) and lw not in TITLES and lw not in KIN and lw not in ROLE_WORDS

    def spans(self, text: str, tokens: list[Token] | None = None) -> list[Span]:
        toks = tokens if tokens is not None else tokenize(text)
        if not toks:
            return []
        p = self.proba([t.text for t in toks])
        o = self.labels.index("O")
        ent = [i for i, lab in enumerate(self.labels) if lab != "O"]
        tags: list[str | None] = []
        scores: list[float] = []
        for i, row in enumerate(p):
            pe = 1.0 - float(row[o])
            if pe >= self.threshold or (pe >= UNKNOWN_CAP_MIN and self._unknown_capital(toks, i)):
                k = max(ent, key=lambda j: row[j])
                tags.append(self.labels[k])
            else:
                tags.append(None)
            scores.append(pe)
        out: list[Span] = []
        i = 0
        while i < len(toks):
            lab = tags[i]
            if lab is None or not any(c.isalnum() for c in toks[i].text):
                i += 1
                continue
            j = i
            while (
                j + 1 < len(toks) and tags[j + 1] is not None and (tags[j + 1] == lab or not toks[j + 1].text.isalnum())
            ):
                if text[toks[j].end : toks[j + 1].start].strip():
                    break
                j += 1
            while j > i and (not any(c.isalnum() for c in toks[j].text) or toks[j].text.lower() in _EDGE_WORDS):
                j -= 1  # no trailing punctuation or function word
            while i < j and toks[i].text.lower() in _EDGE_WORDS:
                i += 1
            if toks[i].text.lower() in _EDGE_WORDS:
                i = j + 1
                continue
            s, e = toks[i].start, toks[j].end
            out.append(Span(s, e, lab, text[s:e], "model", float(np.mean(scores[i : j + 1]))))
            i = j + 1
        return out


# ---- pattern recognizers -------------------------------------------------------------------------
_MONTHS_FULL = "January|February|March|April|May|June|July|August|September|October|November|December"
_MONTHS_ABBR = r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec"
_MONTH = rf"(?:{_MONTHS_FULL}|(?:{_MONTHS_ABBR})\.?)"
_ORD = r"\d{1,2}(?:st|nd|rd|th)?"
_YEAR = r"(?:1[89]\d\d|20\d\d)"
_TLD = (
    r"com|org|net|edu|gov|io|co|uk|ie|nz|au|ca|us|info|app|health|me|ly|dev|ai|biz|tv|eu|de|fr|es|it|nl"
    r"|school|clinic|online|site"
)
_STREET = (
    r"Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl|Terrace|Close"
    r"|Crescent|Grove|Parade|Square|Highway|Hwy|Row|Walk|Gardens|Mews|Hill|Park|Circle|Parkway|Pkwy"
)

_P = re.compile
PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("EMAIL", _P(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")),
    (
        "EMAIL",
        _P(
            r"\b[a-z0-9][a-z0-9._-]*(?: dot [a-z0-9_-]+)* at [a-z0-9-]+(?: dot [a-z0-9-]+)*"
            rf" dot (?:{_TLD})\b",
            re.IGNORECASE,
        ),
    ),
    ("URL", _P(r"\b(?:https?://|www\.)[^\s<>\"'()\[\]{}]+", re.IGNORECASE)),
    (
        "URL",
        _P(
            rf"(?<![@\w.-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:{_TLD})\b(?:/[^\s<>\"'()\[\]{{}}]*)?", re.IGNORECASE
        ),
    ),
    ("URL", _P(r"\b(?:25[0-5]|2[0-4]\d|1?\d?\d)(?:\.(?:25[0-5]|2[0-4]\d|1?\d?\d)){3}\b")),
    ("ID", _P(r"(?<![\w@.])@[A-Za-z0-9_](?:[A-Za-z0-9_.]*[A-Za-z0-9_])?")),
    # dates
    ("DATE", _P(r"\b\d{4}-\d{1,2}-\d{1,2}\b")),
    ("DATE", _P(r"\b\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})\b")),
    ("DATE", _P(rf"\b{_MONTH}\s+(?:the\s+)?{_ORD}\b(?:,?\s+{_YEAR}\b)?")),
    ("DATE", _P(rf"\b{_ORD}\s+(?:of\s+)?{_MONTH}(?:,?\s+{_YEAR}\b)?")),
    ("DATE", _P(rf"\b{_MONTH}\s+{_YEAR}\b")),
    ("DATE", _P(rf"\b(?:{_MONTHS_FULL.replace('May|', '')})\b")),
    (
        "DATE",
        _P(
            r"(?i:\b(?:in|since|until|till|by|from|last|next|early|late|mid|of|this|before|after|during|"
            r"through|end of|start of|around)\s+)(May)\b"
        ),
    ),
    (
        "DATE",
        _P(
            r"(?i:\bthe\s+)(\d{1,2}(?:st|nd|rd|th))\b(?!\s+(?:time|times|floor|century|centuries|grade|place|"
            r"row|round|step|session|sessions|week|weeks|year|years|month|months|percentile|attempt|person|"
            r"one|day|days|hour|minute|birthday|anniversary|street|avenue|amendment)\b)"
        ),
    ),
    ("NUMBERS", re.compile(r"(?!)")),  # phone numbers and identifying digit runs are found here
    # addresses and postal codes
    (
        "PLACE",
        _P(rf"\b\d{{1,5}}[A-Za-z]?\s+(?:(?:N|S|E|W|NE|NW|SE|SW)\.?\s+)?(?:[A-Z][\w'’-]*\s+){{1,3}}(?:{_STREET})\b\.?"),
    ),
    ("PLACE", _P(r"\b(?:Flat|Apt\.?|Apartment|Unit|Suite)\s+\d+[A-Za-z]?\b")),
    ("PLACE", _P(r"\b(?:[A-Z]{1,2}\d[A-Z\d]?\s*\d[ABD-HJLNP-UW-Z]{2})\b")),
    ("PLACE", _P(r"(?<=,\s)\d{5}(?:-\d{4})?\b(?![\s-]?\d)")),
    ("PLACE", _P(r"(?<=\b[A-Z]{2}\s)\d{5}(?:-\d{4})?\b")),
    (
        "PLACE",
        _P(
            r"(?i:\b(?:zip|zip code|postcode|post code|postal code)\s*(?:is\s*)?:?\s*)([A-Z0-9][A-Z0-9 -]{2,8}[A-Z0-9])\b"
        ),
    ),
    # identifying numbers
    ("ID", _P(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("ID", _P(r"\b[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b")),  # UK NI number
    ("ID", _P(r"\b[A-Z]{2}\d{2}\s?[A-Z]{3}\b")),  # UK vehicle registration
    (
        "ID",
        _P(r"\b(?=[A-Z0-9/-]*\d)(?=[A-Z0-9/-]*[A-Z])[A-Z0-9]+(?:[/-][A-Z0-9]+)+\b(?:[ -]\d+\b)*"),
    ),  # RC-558213, GCC/HS/77120
    ("ID", _P(r"\b(?=[A-Za-z]*\d)(?=(?:[A-Za-z]*\d){3})(?=\d*[A-Za-z])[A-Za-z0-9]{5,}\b")),  # XJH447021983
]
_PHONE_RE = _P(
    r"(?<![\w/.-])(?:\+\d{1,3}[\s.-]?|1[\s.-](?=\d{3}))?(?:\(\d{2,5}\)[\s.-]?)?\d{2,15}(?:[\s.-]\d{2,6}){0,4}"
    r"(?:\s*(?:ext\.?|extension|x)\s*\d{1,5})?(?![\w/]|[.-]\d)"
)
_EXT_RE = _P(r"(?i:\b(?:ext\.?|extension)\s*)(\d{1,6})\b")
_ID_CONTEXT = _P(
    r"(?i)\b(?:nhs|mrn|record|records|account|policy|member|group|licen[cs]e|reg|registration|case|claim|"
    r"reference|ref|id|identifier|social|ssn|insurance|employee|student|passport|serial|login|"
    r"username|patient|chart|file|ni|national insurance|medicaid|medicare|plate|badge|pin)\b[^.?!]{0,25}$"
)
_PHONE_CONTEXT = _P(
    r"(?i)\b(?:phone|call|calls|ring|text|texts|mobile|cell|landline|line|fax|whatsapp|reach|dial|"
    r"helpline|hotline|extension|ext|number|contact|tel|telephone|on)\b[^.?!]{0,30}$"
)
_NOT_PHONE_AFTER = _P(
    r"(?i)^\s*(?:%|percent|am\b|pm\b|a\.m|p\.m|minutes|mins|hours|days|weeks|months|years|dollars|"
    r"pounds|euros|quid|bucks|times|people|mg|kg|lbs|pounds|steps|miles|km|calories|words|pages)"
)
_MONEY_BEFORE = _P(r"[$£€]\s*$")


def _phone_or_id(text: str, s: int, e: int) -> str | None:
    """Type of a run of digit groups: PHONE, ID, or None (a count, an amount, a year)."""
    cand = text[s:e]
    if re.fullmatch(r"\d{5}(?:-\d{4})?", cand) and re.search(
        r"(?:[A-Z][\w'’-]+,|\b[A-Z]{2})\s$", text[max(0, s - 30) : s]
    ):
        return "PLACE"  # "Portland, 97214", "IL 60201"
    digits = re.sub(r"\D", "", re.split(r"(?i)ext|extension|x", cand)[0])
    if _MONEY_BEFORE.search(text[max(0, s - 3) : s]) or _NOT_PHONE_AFTER.match(text[e : e + 12]):
        return None
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", cand):
        return None
    left = text[max(0, s - 45) : s]
    idm, phm = _ID_CONTEXT.search(left), _PHONE_CONTEXT.search(left)
    grouped = bool(re.search(r"[\s.()+-]", cand.strip()))
    if 7 <= len(digits) <= 15 and (grouped or cand.startswith("0") or cand.startswith("+")):
        if idm and (not phm or idm.start() > phm.start() or phm.group(0).lower().startswith(("number", "on"))):
            return "ID"
        return "PHONE"
    if len(digits) >= 5 and not grouped:
        if phm and not idm and not phm.group(0).lower().startswith(("number", "on")) and len(digits) >= 7:
            return "PHONE"
        return "ID"
    if 3 <= len(digits) <= 6 and not grouped:
        if re.fullmatch(_YEAR, digits) or (
            len(digits) == 4 and digits[:2] in ("19", "20") and not digits.startswith("0")
        ):
            return "ID" if idm and re.search(r"(?i)last four|ends? in", left) else None
        if phm and not phm.group(0).lower().startswith(("number", "on", "contact")) and len(left) - phm.start() < 25:
            return "PHONE"
        if idm and (len(digits) >= 4 or re.search(r"(?i)\bid\b|number", left)):
            return "ID"
        if len(digits) == 4 and digits.startswith("0") and re.search(r"(?i)last four|ends? in|digits", left):
            return "ID"
    return None


def _numbers(text: str, add: Callable[[str, int, int], None], free: Callable[[int, int], bool]) -> None:
    for m in _PHONE_RE.finditer(text):
        if not free(m.start(), m.end()):
            continue
        typ = _phone_or_id(text, m.start(), m.end())
        if typ:
            s = m.start()
            pre = re.search(r"\b[A-Z]{2,4}\s$", text[max(0, s - 5) : s])  # "CLM 0093 4471 82"
            if typ == "ID" and pre and text[s - len(pre.group(0)) : s].strip() not in ("I", "OK", "TV"):
                s -= len(pre.group(0))
            add(typ, s, m.end())
    for m in _EXT_RE.finditer(text):
        add("PHONE", m.start(1), m.end(1))


def pattern_spans(text: str) -> list[Span]:
    spans: list[Span] = []
    taken: list[tuple[int, int]] = []

    def free(s: int, e: int) -> bool:
        return all(e <= a or s >= b for a, b in taken)

    def add(t: str, s: int, e: int) -> None:
        while e > s and text[e - 1] in ".,;:!?)]}'\"’”":
            e -= 1
        if e > s and free(s, e):
            spans.append(Span(s, e, t, text[s:e]))
            taken.append((s, e))

    for typ, rx in PATTERNS:
        if typ == "NUMBERS":
            _numbers(text, add, free)
            continue
        for m in rx.finditer(text):
            g = 1 if rx.groups else 0
            add(typ, m.start(g), m.end(g))
    return spans


_TITLE_RE = _P(r"\b(?:" + "|".join(NAME_TITLES) + r")\.?\s+((?:[A-Z][\w'’-]+)(?:\s+[A-Z][\w'’-]+){0,2})")


ORG_HEADS = (
    "Clinic|Hospital|Infirmary|Centre|Center|School|Academy|College|University|Institute|Church|Chapel|"
    "Surgery|Practice|Pharmacy|Hospice|Program|Programme|Project|Trust|Foundation|Association|Society|"
    "Network|Partners|Associates|Ltd|Inc|LLC|PLC|Group|Services|Service|Library|Bank|Council|Agency|"
    "Ministries|Fellowship|Clinics|Hospitals|Health|Psychology|Counselling|Counseling|Nursery|Elementary|"
    "Primary|Cycles|Logistics|Analytics|Capital|Consulting|Solutions|Systems|Industries|Holdings"
)
_ORG_RE = _P(rf"\b(?:[A-Z][\w'’&-]*\.?\s+(?:(?:of|the|and|&|for)\s+)?){{1,4}}(?:{ORG_HEADS})\b")
_SAINT_RE = _P(r"\bSt\.?\s+[A-Z][a-z]+(?:['’]s\b|s['’])(?:\s+(?:[A-Z][a-z]+))?")


def org_spans(text: str) -> list[Span]:
    """Capitalised runs ending in an organisation word (Redland Green Surgery), and St Anne's."""
    out = []
    for m in _ORG_RE.finditer(text):
        words = list(re.finditer(r"\S+", m.group()))
        while words and (
            words[0].group() in ("The", "A", "My", "Our", "At", "In", "I", "And", "Then", "So")
            or words[0].group().lower() in KIN
        ):
            words.pop(0)
        if len(words) >= 2:
            s = m.start() + words[0].start()
            out.append(Span(s, m.end(), "ORG", text[s : m.end()], "title"))
    for m in _SAINT_RE.finditer(text):
        out.append(Span(m.start(), m.end(), "ORG", m.group(), "title"))
    for m in _ACRONYM_ORG_RE.finditer(text):  # "the HSE addiction service", "the VA clinic"
        if m.group(1) not in NOT_ORG_ACRONYMS:
            out.append(Span(m.start(1), m.end(1), "ORG", m.group(1), "title"))
    return out


# Clinical, technical and everyday acronyms that name no organisation ("the CBT group", "the GP surgery").
NOT_ORG_ACRONYMS = frozenset(
    "CBT DBT ACT EMDR MI IPT GP GPS ADHD ADD PTSD OCD ASD BPD TV OK ID UK US USA EU ER ED ICU MRI CT IT HR PE "
    "AI PC ATM DNA HIV AIDS STD STI COVID IQ UN AM PM BMI ECG EEG OT PT SLT IEP SEN SENCO".split()
)
_ACRONYM_ORG_RE = re.compile(
    r"\b([A-Z]{2,6})\b(?=\s+(?:[a-z][\w-]*\s+){0,2}(?:service|services|clinic|team|unit|trust|centre|center|"
    r"hospital|programme|program|helpline|charity|foundation|council|department|agency|office)\b)"
)


def title_spans(text: str) -> list[Span]:
    out = []
    for m in _TITLE_RE.finditer(text):
        words = m.group(1).split()
        while words and words[-1].lower() in ("and", "said", "says"):
            words.pop()
        if words:
            s = m.start(1)
            e = s + len(" ".join(words))
            if text[s:e] == " ".join(words):
                out.append(Span(s, e, "NAME", text[s:e], "title"))
    return out


_HEADER_RE = _P(r"^\s*(?P<key>[A-Za-z][\w #./-]{0,30}?)\s*:\s*(?P<value>.+?)\s*$")
_PERSON_KEYS = frozenset(
    {
        "therapist",
        "client",
        "counsellor",
        "counselor",
        "clinician",
        "patient",
        "interviewer",
        "interviewee",
        "participant",
        "name",
        "client name",
        "patient name",
        "therapist name",
        "clinician name",
        "referred by",
        "referrer",
        "gp",
        "doctor",
        "psychiatrist",
        "supervisor",
        "transcriber",
        "transcribed by",
    }
)
_PLACE_KEYS = frozenset({"location", "address", "place", "site", "clinic address", "home address"})
_ID_KEYS = frozenset(
    {
        "client id",
        "patient id",
        "id",
        "mrn",
        "record",
        "record number",
        "nhs number",
        "case",
        "case number",
        "file",
        "filename",
        "reference",
    }
)


def header_spans(text: str) -> list[Span]:
    """`Key: value` header lines: a person key's value is a name, a location key's a place, an id key's an ID."""
    m = _HEADER_RE.match(text)
    if not m:
        return []
    key, vs = m.group("key").strip().lower(), m.start("value")
    value = m.group("value")
    if key in _PERSON_KEYS:
        out = []
        for w in re.finditer(
            rf"{_LETTERS}+(?:[-'’]{_LETTERS}+)*", re.sub(r"\([^)]*\)", lambda x: " " * len(x.group()), value)
        ):
            word = w.group()
            if word[:1].isupper() and word.lower() not in ROLE_WORDS and word.lower() not in TITLES and len(word) > 1:
                out.append(Span(vs + w.start(), vs + w.end(), "NAME", word, "speaker"))
        return out
    if key in _PLACE_KEYS:
        return [Span(vs, vs + len(value), "PLACE", value, "speaker")]
    if key in _ID_KEYS and re.search(r"\d", value):
        return [Span(vs, vs + len(value), "ID", value, "speaker")]
    return []


# ---- speaker labels ------------------------------------------------------------------------------
ROLE_WORDS = frozenset(
    """t c th cl p i ip s a b therapist client counsellor counselor clinician patient interviewer
interviewee participant speaker unknown doctor moderator facilitator coach supporter seeker usr sys user system
host guest narrator mother father parent caregiver partner child teen adolescent observer note transcriber other
group member family spouse student teacher trainee supervisor psychologist psychiatrist nurse social worker
dr mr mrs ms miss mx prof unidentified inaudible crosstalk both all everyone""".split()
)


def speaker_name_parts(label: str | None, gaz: Gazetteers | None = None) -> list[str]:
    """The name words in a speaker label ("Dr. Maya Okafor" -> [Maya, Okafor]); [] for role labels
    ("T", "Therapist", "SPEAKER_00", "Speaker 2", "Client (C1)")."""
    if not label or PLACEHOLDER_RE.fullmatch(label.strip()):
        return []
    words = re.findall(rf"{_LETTERS}+(?:[-'’]{_LETTERS}+)*", label)
    if re.search(r"\d", label) and all(w.lower() in ROLE_WORDS or len(w) <= 2 for w in words):
        return []
    out = []
    for w in words:
        lw = w.lower()
        if lw in ROLE_WORDS or lw in TITLES or len(w) < 2:
            continue
        if w.isupper() and len(w) <= 3:  # initials and codes: "TH", "CL"
            continue
        out.append(w)
    return out


# ---- session-wide placeholder registry ------------------------------------------------------------
def _norm(t: str, typ: str) -> str:
    if typ in ("PHONE",):
        return re.sub(r"\D", "", t)
    if typ in ("ID", "URL", "EMAIL"):
        return re.sub(r"[^0-9a-z]", "", t.lower())
    return " ".join(re.findall(r"\w+", _strip_accents(t).casefold()))


@dataclass
class Registry:
    """Placeholders for one session: the same identifier gets the same numbered placeholder."""

    numbered: bool = True
    keys: dict[tuple[str, str], int] = field(default_factory=dict)
    parts: dict[str, int] = field(default_factory=dict)  # name word -> NAME number
    counts: dict[str, int] = field(default_factory=dict)

    def _new(self, typ: str) -> int:
        self.counts[typ] = self.counts.get(typ, 0) + 1
        return self.counts[typ]

    def placeholder(self, typ: str, text: str, distinct: bool = False) -> str:
        key = (typ, _norm(text, typ))
        n = self.keys.get(key)
        if n is None and typ == "NAME" and not distinct:
            words = [w for w in key[1].split() if w not in TITLES]
            for w in words:
                if w in self.parts:
                    n = self.parts[w]
                    break
        if n is None:
            n = self._new(typ)
        self.keys[key] = n
        if typ == "NAME":
            for w in key[1].split():
                if w not in TITLES and len(w) > 1:
                    self.parts.setdefault(w, n)
        return f"[{typ}_{n}]" if self.numbered else f"[{typ}]"


def apply_spans(text: str, spans: Sequence[Span], registry: Registry) -> tuple[str, list[tuple[int, int, int, int]]]:
    """Text with spans replaced, and the (old start, old end, new start, new end) of each replacement."""
    out: list[str] = []
    moves: list[tuple[int, int, int, int]] = []
    pos = 0
    new_len = 0
    for s in merge_spans(spans, text):
        out.append(text[pos : s.start])
        new_len += s.start - pos
        ph = registry.placeholder(s.type, s.text)
        moves.append((s.start, s.end, new_len, new_len + len(ph)))
        out.append(ph)
        new_len += len(ph)
        pos = s.end
    out.append(text[pos:])
    return "".join(out), moves


def map_offset(p: int, moves: Sequence[tuple[int, int, int, int]], is_end: bool) -> int:
    """Where old offset `p` lands in the redacted text (an offset inside a replaced span goes to the
    placeholder's start, or its end for an end offset)."""
    delta = 0
    for os_, oe, ns, ne in moves:
        if p <= os_:
            break
        if p < oe:
            return ne if is_end else ns
        delta = ne - oe
    return p + delta


# ---- the redactor --------------------------------------------------------------------------------
_WORD_SURFACE = re.compile(rf"{_LETTERS}+(?:[-'’]{_LETTERS}+)*")


@lru_cache(maxsize=2)
def _default_tagger(folder: str | None) -> Tagger:
    return Tagger.load(folder)


class Redactor:
    """Finds identifiers and replaces them by typed placeholders, consistently within a session.

    `types` limits what is redacted (default: all eight); `numbered=False` gives bare `[NAME]`
    placeholders; `model=None` loads the shipped tagger; `use_model=False` keeps only patterns, titles,
    speaker names and propagation.
    """

    def __init__(
        self,
        types: Iterable[str] = TYPES,
        *,
        numbered: bool = True,
        model: str | Path | Tagger | None = None,
        use_model: bool = True,
        threshold: float | None = None,
        propagate: bool = True,
    ):
        self.types = frozenset(types)
        unknown = self.types - set(TYPES)
        if unknown:
            raise ValueError(f"unknown identifier types: {', '.join(sorted(unknown))} (known: {', '.join(TYPES)})")
        self.numbered = numbered
        self.propagate = propagate
        self.tagger: Tagger | None = None
        if use_model:
            self.tagger = model if isinstance(model, Tagger) else _default_tagger(str(model) if model else None)
            if threshold is not None:
                self.tagger = copy.copy(self.tagger)
                self.tagger.threshold = threshold
        self.gaz = self.tagger.gaz if self.tagger else Gazetteers()

    # -- single texts -------------------------------------------------------------------------
    def find(self, text: str) -> list[Span]:
        """Identifiers in one text, without session context (patterns, titles, the tagger)."""
        if not text or not text.strip():
            return []
        spans = pattern_spans(text) + title_spans(text) + org_spans(text)
        if self.tagger is not None:
            covered = [(s.start, s.end) for s in spans]
            lower_text = not any(c.isupper() for c in text)
            for s in self.tagger.spans(text):
                words = _WORD_SURFACE.findall(s.text)
                if not words or (not lower_text and not any(w[:1].isupper() for w in words)):
                    continue  # lower-case words in cased text, digits alone
                if all(w.lower() in TITLES or w.lower() in KIN or w.lower() in self.gaz.big_place for w in words):
                    continue
                if len(words) == 1 and is_common(words[0], self.gaz) and not self._known_name(words[0]):
                    continue  # ordinary words only ("Mm-hmm.", "Kind of.")
                if not _inside(s, covered):
                    spans.append(s)
        if "NAME" in self.types:
            spans += self._gazetteer_names(text, [(s.start, s.end) for s in spans])
        spans = self._extend_names(text, merge_spans(spans, text))
        return [s for s in spans if s.type in self.types and not _in_placeholder(text, s)]

    def _gazetteer_names(self, text: str, covered: list[tuple[int, int]]) -> list[Span]:
        """A capitalised word inside a sentence that is a listed first name and no ordinary word
        ("just Dennis now"): a name even where the tagger's context reads weakly. Sentence-initial words,
        places, titles, kin and role words are left to the tagger."""
        out = []
        for m in _CAP_WORD.finditer(text):
            w = m.group()
            lw = w.lower()
            if (
                lw not in self.gaz.first
                or w.isupper()
                or is_common(w, self.gaz)
                or lw in self.gaz.place
                or lw in self.gaz.big_place
                or lw in TITLES
                or lw in KIN
                or lw in ROLE_WORDS
                or _sentence_initial(text, m.start())
                or any(a < m.end() and b > m.start() for a, b in covered)
            ):
                continue
            out.append(Span(m.start(), m.end(), "NAME", w, "gazetteer", 0.9))
        return out

    def _known_name(self, w: str) -> bool:
        lw = w.lower()
        return lw in self.gaz.first or lw in self.gaz.last or lw in self.gaz.place

    def _extend_names(self, text: str, spans: list[Span]) -> list[Span]:
        """A name runs on over the capitalised, uncommon words right next to it (Fiona MacLeod, Ana Luísa)."""
        word = re.compile(rf"[A-Z]{_LETTERS}*(?:[-'’]{_LETTERS}+)*")

        def ok(w: str) -> bool:
            lw = w.lower()
            return not is_common(w, self.gaz) and lw not in TITLES and lw not in ROLE_WORDS and not w.isupper()

        out = []
        for s in spans:
            if s.type == "NAME":
                start, end = s.start, s.end
                for _ in range(2):
                    m = word.match(text, end + 1) if text[end : end + 1] == " " else None
                    if (
                        not m
                        or not ok(m.group())
                        or any(o.start < m.end() and o.end > m.start() for o in spans if o is not s)
                    ):
                        break
                    end = m.end()
                if (start, end) != (s.start, s.end):
                    s = Span(start, end, s.type, text[start:end], s.source, s.score)
            out.append(s)
        return merge_spans(out, text)

    def redact_text(self, text: str, registry: Registry | None = None) -> str:
        """One text with its identifiers replaced (a fresh registry unless one is given)."""
        reg = registry or Registry(self.numbered)
        spans = self.find(text)
        if self.propagate:
            spans = spans + self._propagated(text, self._surfaces(spans, [text]))
        return apply_spans(text, spans, reg)[0]

    # -- sessions -----------------------------------------------------------------------------
    def session_spans(self, session: Session) -> tuple[dict[str, list[Span]], dict[str, list[str]]]:
        """What `redact_session` replaces: spans per text (key `t{turn}`; `t{turn}u{utterance}` for an
        utterance whose text is not at its offsets; `meta/...` for strings in `meta`) and the name words
        of each speaker label that is a name."""
        speaker_parts: dict[str, list[str]] = {}
        if "NAME" in self.types:
            for sid, sp in session.speakers.items():
                for lab in {sid, sp.name or sid}:
                    parts = speaker_name_parts(lab, self.gaz)
                    if parts:
                        speaker_parts[lab] = parts
            for t in session.turns:
                for lab in {t.speaker} | {u.speaker for u in t.utterances}:
                    parts = speaker_name_parts(lab, self.gaz)
                    if parts:
                        speaker_parts[lab] = parts
        turn_spans: dict[str, list[Span]] = {}
        texts: dict[str, str] = {}
        for ti, t in enumerate(session.turns):
            texts[f"t{ti}"] = t.text
            for ui, u in enumerate(t.utterances):
                if t.text[u.char_start : u.char_end] != u.text:
                    texts[f"t{ti}u{ui}"] = u.text
        for path, s in _strings(session.meta, ("meta",)):
            texts["/".join(map(str, path))] = s
        for key, s in texts.items():
            turn_spans[key] = self.find(s)
            if key.startswith("meta"):
                turn_spans[key] = merge_spans(turn_spans[key] + [h for h in header_spans(s) if h.type in self.types], s)
        if self.propagate:
            found = [sp for spans in turn_spans.values() for sp in spans]
            surfaces = self._surfaces(found, list(texts.values()), speaker_parts, _capital_counts(texts.values()))
            for key, s in texts.items():
                turn_spans[key] = merge_spans(turn_spans[key] + self._propagated(s, surfaces), s)
        return turn_spans, speaker_parts

    def _surfaces(
        self,
        spans: Iterable[Span],
        texts: Sequence[str],
        speaker_parts: dict[str, list[str]] | None = None,
        capitals: dict[str, int] | None = None,
    ) -> dict[str, tuple[str, bool]]:
        """Strings to redact wherever they occur: surface -> (type, case_sensitive). An unknown word the
        tagger alone found is spread when it scored 0.8, or 0.5 when it is written capitalised at least
        twice in the session (a recurring name, such as a child's, that the tagger caught once)."""
        capitals = capitals or {}
        out: dict[str, tuple[str, bool]] = {}

        def add_word(w: str, typ: str, trusted: bool = True, score: float = 1.0) -> None:
            lw = w.lower()
            if not trusted and (is_common(w, self.gaz) or lw in KIN or (w.isupper() and len(w) <= 3)):
                return
            known = lw in self.gaz.first or lw in self.gaz.last or lw in self.gaz.place
            if len(w) < 2 or lw in TITLES or lw in ROLE_WORDS and typ != "NAME" or not w[:1].isupper():
                return
            if lw in {"i", "the", "a", "an", "and", "of", "my", "st"}:
                return
            if not trusted and not known and score < (0.5 if capitals.get(w, 0) >= 2 else 0.8):
                return  # an unknown word the tagger alone found: not spread on its own
            out.setdefault(w, (typ, is_common(w, self.gaz) or not trusted))

        for parts in (speaker_parts or {}).values():
            for w in parts:
                add_word(w, "NAME")
        for s in spans:
            trusted = s.source != "model"
            if s.type == "NAME":
                for w in _WORD_SURFACE.findall(s.text):
                    add_word(w, "NAME", trusted, s.score)
            elif s.type in ("PLACE", "ORG"):
                words = _WORD_SURFACE.findall(s.text)
                if len(words) == 1:
                    add_word(words[0], s.type, trusted, s.score)
                elif s.text[:1].isupper():
                    out.setdefault(s.text, (s.type, True))
            elif s.type in ("ID", "PHONE"):
                for g in re.findall(r"\d{4,}", s.text):
                    out.setdefault(g, (s.type, True))
                if s.type == "ID" and len(s.text) >= 5:
                    out.setdefault(s.text, (s.type, True))
            elif s.type in ("EMAIL", "URL"):
                out.setdefault(s.text, (s.type, False))
        return out

    def _propagated(self, text: str, surfaces: dict[str, tuple[str, bool]]) -> list[Span]:
        if not surfaces or not text:
            return []
        out: list[Span] = []
        probs: dict[int, float] | None = None
        for surf, (typ, strict) in surfaces.items():
            if typ not in self.types:
                continue
            flags = 0 if strict else re.IGNORECASE
            pat = r"(?<![\w@.-])" + re.escape(surf) + r"(?![\w@]|[.-]\w)"
            for m in re.finditer(pat, text, flags):
                if strict and typ in MODEL_TYPES and is_common(surf, self.gaz) and _sentence_initial(text, m.start()):
                    if probs is None:  # a common word opening a sentence ("Will you ..."): ask the tagger
                        probs = self._entity_probs(text)
                    if probs.get(m.start(), 0.0) < (0.25 if surf.lower() in AMBIGUOUS_STARTERS else 0.05):
                        continue
                if _in_placeholder(text, Span(m.start(), m.end(), typ, surf)):
                    continue
                out.append(Span(m.start(), m.end(), typ, m.group(), "propagated"))
        return out

    def _entity_probs(self, text: str) -> dict[int, float]:
        if self.tagger is None:
            return {}
        toks = tokenize(text)
        p = self.tagger.proba([t.text for t in toks])
        o = self.tagger.labels.index("O")
        return {t.start: 1.0 - float(row[o]) for t, row in zip(toks, p)}

    def speaker_map(self, session: Session) -> dict[str, str]:
        """Speaker ids and names that are names -> the placeholder `redact_session` gives them (for
        translating user options such as `therapist=` before analysing a redacted session)."""
        return self._speaker_map(session, Registry(self.numbered))

    def _speaker_map(
        self, session: Session, reg: Registry, speaker_parts: dict[str, list[str]] | None = None
    ) -> dict[str, str]:
        if speaker_parts is None:
            speaker_parts = (
                {lab: p for lab in _speaker_labels(session) if (p := speaker_name_parts(lab, self.gaz))}
                if "NAME" in self.types
                else {}
            )
        out: dict[str, str] = {}
        for lab in _speaker_labels(session):
            if lab in speaker_parts:
                out[lab] = reg.placeholder("NAME", " ".join(speaker_parts[lab]), distinct=True)
        return out

    def redact_session(self, session: Session) -> Session:
        """A redacted copy of `session` (the original is not changed)."""
        turn_spans, speaker_parts = self.session_spans(session)
        reg = Registry(self.numbered)
        # speakers first, so their numbers are stable and their words map to them
        speaker_map = self._speaker_map(session, reg, speaker_parts)
        found = [sp for spans in turn_spans.values() for sp in spans]
        surfaces = self._surfaces(found, [], speaker_parts) if self.propagate else {}

        d = session.to_dict()
        out_turns = []
        for ti, (t, td) in enumerate(zip(session.turns, d["turns"])):
            new_text, moves = apply_spans(t.text, turn_spans.get(f"t{ti}", []), reg)
            td["text"] = new_text
            td["speaker"] = speaker_map.get(td["speaker"], td["speaker"])
            for ui, (u, ud) in enumerate(zip(t.utterances, td["utterances"])):
                ud["speaker"] = speaker_map.get(ud["speaker"], ud["speaker"])
                if f"t{ti}u{ui}" in turn_spans:  # utterance text not at its offsets: redact on its own
                    ud["text"] = apply_spans(u.text, turn_spans[f"t{ti}u{ui}"], reg)[0]
                    at = new_text.find(ud["text"])
                    ud["char_start"], ud["char_end"] = (at, at + len(ud["text"])) if at >= 0 else (0, 0)
                else:
                    ns, ne = map_offset(u.char_start, moves, False), map_offset(u.char_end, moves, True)
                    ud["char_start"], ud["char_end"] = ns, max(ns, ne)
                    ud["text"] = new_text[ns : max(ns, ne)]
                ud["words"] = self._redact_words(
                    u, ud["text"], turn_spans.get(f"t{ti}", []), t, reg, surfaces, speaker_map
                )
                ud["meta"] = self._redact_any(ud.get("meta", {}), reg, surfaces, speaker_map)
            td["meta"] = self._redact_any(td.get("meta", {}), reg, surfaces, speaker_map)
            out_turns.append(td)
        d["turns"] = out_turns
        meta_spans = {k: v for k, v in turn_spans.items() if k.startswith("meta")}
        d["meta"] = _map_strings(
            session.meta,
            ("meta",),
            lambda path, s: apply_spans(s, meta_spans.get("/".join(map(str, path)), []), reg)[0],
        )
        d["speakers"] = []
        for sp in session.speakers.values():
            sd = {
                "id": speaker_map.get(sp.id, sp.id),
                "name": sp.name,
                "role": sp.role,
                "role_confidence": sp.role_confidence,
                "role_method": sp.role_method,
            }
            if sp.name is not None:
                sd["name"] = speaker_map.get(
                    sp.name, sd["id"] if sp.name == sp.id else self._redact_plain(sp.name, reg, surfaces, speaker_map)
                )
            d["speakers"].append(sd)
        d["id"] = self._redact_plain(session.id, reg, surfaces, speaker_map, separators=True)
        if session.source_path:  # the file name only: folders above it may name the client or the clinician
            name = re.split(r"[\\/]", session.source_path)[-1]
            d["source_path"] = self._redact_plain(name, reg, surfaces, speaker_map, separators=True)
        d["provenance"] = self._redact_any(session.provenance, reg, surfaces, speaker_map, patterns=False)
        out = Session.from_dict(d)
        out.results = _redact_results(session.results, speaker_map)
        out.provenance.setdefault("redact", {}).update(
            {
                "types": sorted(self.types),
                "numbered": self.numbered,
                "tagger": self.tagger.meta.get("version") if self.tagger else None,
                "placeholders": dict(sorted(reg.counts.items())),
                "speakers_renamed": len(speaker_map),
            }
        )
        return out

    # -- helpers ------------------------------------------------------------------------------
    def _redact_plain(
        self,
        text: str,
        reg: Registry,
        surfaces: dict[str, tuple[str, bool]],
        speaker_map: dict[str, str],
        separators: bool = False,
    ) -> str:
        """Short strings outside the transcript (ids, paths, labels): speaker names, known surfaces and
        the patterns; with `separators`, `_` (and, in a second look, `-`, `.` and `/`) count as spaces (file names)."""
        if not text:
            return text
        if text in speaker_map:
            return speaker_map[text]
        probes = [text.replace("_", " "), re.sub(r"[_.\-/\\]", " ", text)] if separators else [text]
        spans = []
        for probe in probes:
            spans += [s for s in pattern_spans(probe) if s.type in self.types]
            spans += self._propagated(probe, surfaces)
        for lab in speaker_map:
            for m in re.finditer(r"(?<![\w])" + re.escape(lab) + r"(?!\w)", probe):
                spans.append(Span(m.start(), m.end(), "NAME", lab, "speaker"))
        return apply_spans(text, [replace(s, text=text[s.start : s.end]) for s in spans], reg)[0] if spans else text

    def _redact_any(
        self,
        obj: Any,
        reg: Registry,
        surfaces: dict[str, tuple[str, bool]],
        speaker_map: dict[str, str],
        patterns: bool = True,
    ) -> Any:
        if isinstance(obj, str):
            if patterns:
                return self._redact_plain(obj, reg, surfaces, speaker_map)
            return self._redact_known(obj, reg, surfaces, speaker_map)
        if isinstance(obj, dict):
            return {
                self._redact_known(k, reg, surfaces, speaker_map) if isinstance(k, str) else k: self._redact_any(
                    v, reg, surfaces, speaker_map, patterns
                )
                for k, v in obj.items()
            }
        if isinstance(obj, (list, tuple)):
            return [self._redact_any(v, reg, surfaces, speaker_map, patterns) for v in obj]
        return obj

    def _redact_known(
        self, text: str, reg: Registry, surfaces: dict[str, tuple[str, bool]], speaker_map: dict[str, str]
    ) -> str:
        if text in speaker_map:
            return speaker_map[text]
        spans = self._propagated(text, surfaces)
        return apply_spans(text, spans, reg)[0] if spans else text

    def _redact_words(
        self,
        u: Utterance,
        new_text: str,
        spans: list[Span],
        turn: Turn,
        reg: Registry,
        surfaces: dict[str, tuple[str, bool]],
        speaker_map: dict[str, str],
    ) -> list[dict[str, Any]]:
        """ASR words: a word that overlaps a redacted span takes its placeholder (timing kept)."""
        if not u.words:
            return []
        merged = merge_spans(spans, turn.text)
        out = []
        pos = u.char_start
        for w in u.words:
            wd = {
                "text": w.text,
                "start": w.start,
                "end": w.end,
                "speaker": speaker_map.get(w.speaker or "", w.speaker),
                "score": w.score,
            }
            core = w.text.strip()
            at = turn.text.find(core, pos, u.char_end) if core else -1
            if at >= 0:
                pos = at + len(core)
                hit = [s for s in merged if s.start < pos and s.end > at]
                if hit:
                    ph = reg.placeholder(hit[0].type, hit[0].text)
                    lead = core[: max(0, hit[0].start - at)]
                    trail = core[max(0, hit[0].end - at) :] if hit[-1].end < pos else ""
                    wd["text"] = w.text.replace(core, f"{lead}{ph}{trail}")
                    out.append(wd)
                    continue
            wd["text"] = self._redact_plain(w.text, reg, surfaces, speaker_map)
            out.append(wd)
        return out


def _inside(s: Span, covered: list[tuple[int, int]]) -> bool:
    return any(a <= s.start and s.end <= b for a, b in covered)


def _in_placeholder(text: str, s: Span) -> bool:
    for m in PLACEHOLDER_RE.finditer(text, max(0, s.start - 12), min(len(text), s.end + 12)):
        if m.start() <= s.start and s.end <= m.end():
            return True
    return False


_CAP_WORD = re.compile(r"(?<![\w@.'’-])[A-Z][a-z]+(?:[-'’][A-Za-z]+)?(?![\w@])")


def _capital_counts(texts: Iterable[str]) -> dict[str, int]:
    """How often each capitalised word occurs across the session's texts."""
    counts: dict[str, int] = {}
    for t in texts:
        for m in _CAP_WORD.finditer(t):
            counts[m.group()] = counts.get(m.group(), 0) + 1
    return counts


def _sentence_initial(text: str, at: int) -> bool:
    before = text[:at].rstrip(" \t\"'“‘(")
    return not before or before[-1] in ".?!:;\n…-–—"


def _speaker_labels(session: Session) -> list[str]:
    seen: dict[str, None] = {}
    for sid, sp in session.speakers.items():
        seen[sid] = None
        if sp.name:
            seen[sp.name] = None
    for t in session.turns:
        seen[t.speaker] = None
    return list(seen)


def _strings(obj: Any, path: tuple[Any, ...]) -> Iterable[tuple[tuple[Any, ...], str]]:
    if isinstance(obj, str):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _strings(v, (*path, k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _strings(v, (*path, i))


def _map_strings(obj: Any, path: tuple[Any, ...], fn: Callable[[tuple[Any, ...], str], str]) -> Any:
    if isinstance(obj, str):
        return fn(path, obj)
    if isinstance(obj, dict):
        return {k: _map_strings(v, (*path, k), fn) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_map_strings(v, (*path, i), fn) for i, v in enumerate(obj)]
    return obj


def _redact_results(results: Any, speaker_map: dict[str, str]) -> Any:
    if not speaker_map or not results.episodes:
        return copy.deepcopy(results)
    res = copy.deepcopy(results)
    res.episodes = [replace(e, by=tuple(speaker_map.get(b, b) for b in e.by)) for e in res.episodes]
    return res


def redact_session(session: Session, **options: Any) -> Session:
    """`Redactor(**options).redact_session(session)`."""
    return Redactor(**options).redact_session(session)


class RedactStage:
    """The `redact` pipeline component: last (outputs without identifiers, the classifier saw the
    original text) or first (the classifier sees only redacted text).

    Placed first, a user's `therapist=` / `client=` speaker name is translated to the placeholder it
    becomes and handed to diarize through `provenance["redact"]["roles"]` (placeholders only), so the
    name itself never reaches an output."""

    def __init__(self, therapist: str | None = None, client: str | None = None, **options: Any):
        self.redactor = Redactor(**options)
        self.roles = {k: v for k, v in (("therapist", therapist), ("client", client)) if v}

    def __call__(self, session: Session) -> Session:
        roles: dict[str, str] = {}
        if self.roles:
            mapping = {k.casefold(): v for k, v in self.redactor.speaker_map(session).items()}
            for role, name in self.roles.items():
                key = name.strip().casefold()
                roles[role] = mapping.get(key) or next(
                    (
                        sid
                        for sid, sp in session.speakers.items()
                        if key in (sid.casefold(), (sp.name or "").casefold())
                    ),
                    name,
                )
        out = self.redactor.redact_session(session)
        if roles:
            out.provenance["redact"]["roles"] = roles
        # like every stage, change the session given (batch runners track sessions by identity), and
        # leave no reference to the original text in it
        for f in fields(session):
            setattr(session, f.name, getattr(out, f.name))
        return session
