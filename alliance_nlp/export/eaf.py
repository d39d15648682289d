"""ELAN export: one `.eaf` (EAF 3.0) per session, written with pympi-ling.

Layout, so that sessions open alike in ELAN and can be searched together:
- one time-aligned tier per speaker (tier id = speaker name, participant = role) holding the utterances;
- under each speaker tier, six marker tiers `<speaker> / <marker>` (linguistic type `alliance-marker`,
  Symbolic_Association) whose annotations reference the tagged utterances; their values come from the
  controlled vocabulary `alliance-markers` with the six labels (annotations carry CVE_REF);
- header properties: the marker model, the time axis used, and the session estimates.

Time axis: the transcript's own times, in milliseconds, where it has them (an utterance without an end
ends at the next utterance's start, or one second after its own; overlaps within a speaker's tier are
clipped, since ELAN tiers cannot overlap). A transcript without any times is laid out on a pseudo-time
axis: utterance n (0-based, session order as in utterances.csv) spans [n, n+1) seconds. The header
property `alliance-nlp:time_axis` says which axis a file uses.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from .. import __version__
from ..labels import LABELS
from ..session import Session
from . import MARKER_DESCRIPTIONS, Analysed, marker_model, per_session_paths, write_bytes_atomic
from .transcript import one_line

CV_ID = "alliance-markers"
UTTERANCE_TYPE = "utterance"
MARKER_TYPE = "alliance-marker"
PSEUDO_MS = 1000  # one utterance per second on the pseudo-time axis


def utterance_times_ms(session: Session) -> tuple[list[tuple[int, int]], str]:
    """(start, end) in ms per utterance, and a description of the time axis used."""
    utts = session.utterances
    if not session.has_times:
        return [
            (i * PSEUDO_MS, (i + 1) * PSEUDO_MS) for i in range(len(utts))
        ], f"pseudo: utterance n spans [n, n+1) s ({len(utts)} utterances; the transcript has no times)"
    starts: list[float | None] = [u.start for u in utts]
    last = next(s for s in starts if s is not None)
    filled = []
    for s in starts:
        last = s if s is not None else last
        filled.append(last)
    out = []
    for i, u in enumerate(utts):
        a = int(round(filled[i] * 1000))
        if u.end is not None and u.end > filled[i]:
            b = int(round(u.end * 1000))
        else:
            nxt = next((filled[j] for j in range(i + 1, len(utts)) if filled[j] > filled[i]), None)
            b = int(round(nxt * 1000)) if nxt is not None else a + 1000
        out.append((max(a, 0), max(b, a + 1)))
    return out, "transcript times (ms)"


def build_eaf(session: Session, summary: dict[str, Any]):
    """The pympi `Eaf` object for one session (see the module docstring for the layout)."""
    from pympi.Elan import Eaf

    eaf = Eaf(author=f"alliance-nlp {__version__}")
    epoch = os.environ.get("SOURCE_DATE_EPOCH")  # reproducible builds convention: fixed date when set
    eaf.adocument.update(
        {
            "VERSION": "3.0",
            "FORMAT": "3.0",
            "xsi:noNamespaceSchemaLocation": "http://www.mpi.nl/tools/elan/EAFv3.0.xsd",
            "DATE": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch) if epoch and epoch.isdigit() else None)),
        }
    )
    eaf.header = {"MEDIA_FILE": "", "TIME_UNITS": "milliseconds"}
    eaf.remove_tier("default")
    eaf.remove_linguistic_type("default-lt")
    eaf.add_linguistic_type(UTTERANCE_TYPE, timealignable=True)
    eaf.add_language("eng", "http://cdb.iso.org/lg/CDB-00130975-001", "English (eng)")
    eaf.add_controlled_vocabulary(CV_ID)
    eaf.add_cv_description(CV_ID, "eng", "alliance markers (alliance-nlp codebook, data/codebook.md)")
    for lab in LABELS:
        eaf.add_cv_entry(CV_ID, f"cve_{lab}", [(lab, "eng", MARKER_DESCRIPTIONS.get(lab))])
    eaf.add_linguistic_type(
        MARKER_TYPE,
        param_dict={
            "LINGUISTIC_TYPE_ID": MARKER_TYPE,
            "TIME_ALIGNABLE": "false",
            "GRAPHIC_REFERENCES": "false",
            "CONSTRAINTS": "Symbolic_Association",
            "CONTROLLED_VOCABULARY_REF": CV_ID,
        },
    )

    utts = session.utterances
    spans, axis = utterance_times_ms(session)
    model = marker_model(session, summary)
    annotator = f"alliance-nlp {model or 'classifier'}"
    tier_of: dict[str, str] = {}
    used: set[str] = set()
    for u in utts:  # tiers in order of first appearance
        if u.speaker in tier_of:
            continue
        sp = session.speakers.get(u.speaker)
        base = one_line(str((sp.name or sp.id) if sp else u.speaker)).strip() or "speaker"
        name, dup = base, 2
        while name in used:
            name, dup = f"{base} ({dup})", dup + 1
        used.add(name)
        tier_of[u.speaker] = name
        role = sp.role if sp else "unknown"
        eaf.add_tier(name, ling=UTTERANCE_TYPE, part=role, ann="transcript")
        for lab in LABELS:
            eaf.add_tier(f"{name} / {lab}", ling=MARKER_TYPE, parent=name, part=role, ann=annotator)
    last_end: dict[str, int] = {}
    placed: list[tuple[str, int]] = []
    for u, (a, b) in zip(utts, spans):
        tier = tier_of[u.speaker]
        a = max(a, last_end.get(tier, 0))
        b = max(b, a + 2)  # at least 2 ms, so the midpoint lies inside this annotation only
        eaf.add_annotation(tier, a, b, one_line(u.text))
        last_end[tier] = b
        placed.append((tier, (a + b) // 2))
    for u, (tier, mid) in zip(utts, placed):
        for lab in LABELS:
            if lab in u.markers:
                eaf.add_ref_annotation(f"{tier} / {lab}", tier, mid, lab)

    eaf.properties = [
        ("lastUsedAnnotation", eaf.maxaid),
        ("alliance-nlp:session", one_line(str(session.id))),
        ("alliance-nlp:time_axis", axis),
        ("alliance-nlp:marker_model", str(model or "none")),
    ]
    for scale in ("goal", "task", "bond", "total"):
        v = summary.get(scale)
        if isinstance(v, dict) and v.get("estimate") is not None:
            eaf.properties.append((f"alliance-nlp:{scale}", f"{v['estimate']} [{v.get('low')}, {v.get('high')}]"))
    return eaf


def eaf_bytes(session: Session, summary: dict[str, Any]) -> bytes:
    """Serialised EAF; marker annotations get the CVE_REF of their vocabulary entry."""
    from xml.etree import ElementTree as ET

    from pympi.Elan import to_adocument

    root = to_adocument(build_eaf(session, summary), pretty=True)
    for tier in root.iter("TIER"):
        if tier.get("LINGUISTIC_TYPE_REF") != MARKER_TYPE:
            continue
        for ann in tier.iter("REF_ANNOTATION"):
            value = ann.findtext("ANNOTATION_VALUE") or ""
            if value in LABELS:
                ann.set("CVE_REF", f"cve_{value}")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)


def write_eaf_files(analysed: list[Analysed], output: str | os.PathLike) -> list[Path]:
    """One `.eaf` per session."""
    paths = per_session_paths(analysed, output, ".eaf")
    for (session, summary), path in zip(analysed, paths):
        write_bytes_atomic(Path(path), eaf_bytes(session, summary))
    return paths
