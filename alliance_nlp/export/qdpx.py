"""REFI-QDA project export (`.qdpx`): NVivo, ATLAS.ti, MAXQDA and QualCoder import it.

The project (REFI-QDA 1.5, Project.xsd of QDA-XML 1.0) holds:
- every session as a plain-text source: the timestamped transcript of `alliance_nlp.export.transcript`,
  stored as `sources/<guid>.txt` (UTF-8, no BOM) and referenced as `internal://<guid>.txt`;
- a code book: a parent code "alliance-nlp markers" with the six markers as codable child codes, in the
  report's Okabe-Ito colours;
- every tagged utterance as a PlainTextSelection with one Coding per marker; positions count Unicode code
  points from 0, the end being exclusive (text[start:end] is the utterance), as QDA programs read them;
  the selection's description gives the speaker and the marker probabilities;
- one case per session with the estimates as variables (Float; missing ones left out).

GUIDs are name-based (uuid5 under a fixed namespace) from the project name, session and utterance, so the
same input gives the same file byte for byte (no dates are written; zip entries carry a fixed date).
"""

from __future__ import annotations

import io
import os
import uuid
import zipfile
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from .. import __version__
from ..labels import LABELS
from . import MARKER_DESCRIPTIONS, Analysed, unique_names, write_bytes_atomic
from .transcript import one_line, render_transcript

NS = "urn:QDA-XML:project:1.0"
GUID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "alliance-nlp:qdpx")  # fixed, so GUIDs are reproducible
COLORS = {
    "goal": "#0072B2",
    "task": "#009E73",
    "bond": "#CC79A7",
    "rupture_withdrawal": "#E69F00",
    "rupture_confrontation": "#D55E00",
    "repair": "#56B4E9",
}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
VARIABLES = [
    (f"{k}{suffix}", k, part)
    for k in ("goal", "task", "bond", "total")
    for suffix, part in (("", "estimate"), ("_low", "low"), ("_high", "high"))
]
PART_TEXT = {
    "estimate": "estimate",
    "low": "lower end of the interval of the estimate",
    "high": "upper end of the interval of the estimate",
}


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


def guid(*parts: Any) -> str:
    return str(uuid.uuid5(GUID_NAMESPACE, "\x1f".join(map(str, parts))))


def _sub(parent: ET.Element, tag: str, attrib: dict[str, str] | None = None, text: str | None = None) -> ET.Element:
    el = ET.SubElement(parent, _q(tag), {k: one_line(str(v)) for k, v in (attrib or {}).items() if v is not None})
    if text is not None:
        el.text = one_line(text)
    return el


def build_project(analysed: list[Analysed], name: str = "alliance-nlp") -> tuple[bytes, dict[str, str]]:
    """project.qde as bytes, and the source files {zip path: text} it references."""
    ET.register_namespace("", NS)
    user = guid(name, "user")
    root = ET.Element(_q("Project"), {"name": name, "origin": f"alliance-nlp {__version__}", "creatingUserGUID": user})
    users = _sub(root, "Users")
    _sub(users, "User", {"guid": user, "name": "alliance-nlp", "id": "alliance-nlp"})
    codes = _sub(_sub(root, "CodeBook"), "Codes")
    parent = _sub(
        codes,
        "Code",
        {"guid": guid(name, "code", "alliance-markers"), "name": "alliance-nlp markers", "isCodable": "false"},
    )
    _sub(
        parent,
        "Description",
        text="Alliance markers tagged by the alliance-nlp classifier (data/codebook.md). "
        "Model output, not human coding: check before use.",
    )
    code_guid = {}
    for lab in LABELS:
        code_guid[lab] = guid(name, "code", lab)
        c = _sub(parent, "Code", {"guid": code_guid[lab], "name": lab, "isCodable": "true", "color": COLORS[lab]})
        _sub(c, "Description", text=MARKER_DESCRIPTIONS.get(lab, lab))
    variables = _sub(root, "Variables")
    var_guid = {}
    for vname, _, part in VARIABLES:
        var_guid[vname] = guid(name, "variable", vname)
        v = _sub(variables, "Variable", {"guid": var_guid[vname], "name": vname, "typeOfVariable": "Float"})
        _sub(
            v,
            "Description",
            text=f"{vname.split('_')[0].capitalize()}: {PART_TEXT[part]} (alliance-nlp model "
            "estimate on the WAI-SR metric, 1-5)",
        )
    names = unique_names(analysed)
    source_guid = [guid(name, "source", n) for n in names]
    cases = _sub(root, "Cases")
    for (_, summary), sname, sg in zip(analysed, names, source_guid):
        case = _sub(cases, "Case", {"guid": guid(name, "case", sname), "name": sname})
        for vname, key, part in VARIABLES:
            est = summary.get(key)
            val = est.get(part) if isinstance(est, dict) else None
            if isinstance(val, (int, float)) and not isinstance(val, bool):
                vv = _sub(case, "VariableValue")
                _sub(vv, "VariableRef", {"targetGUID": var_guid[vname]})
                _sub(vv, "FloatValue", text=f"{float(val):.4f}")
        _sub(case, "SourceRef", {"targetGUID": sg})
    sources = _sub(root, "Sources")
    files: dict[str, str] = {}
    for (session, summary), sname, sg in zip(analysed, names, source_guid):
        tr = render_transcript(session)
        files[f"sources/{sg}.txt"] = tr.text
        src = _sub(
            sources,
            "TextSource",
            {"guid": sg, "name": sname, "plainTextPath": f"internal://{sg}.txt", "creatingUser": user},
        )
        _sub(src, "Description", text=_source_description(session, summary, tr.timed))
        utts = session.utterances
        for span in tr.spans:
            u = utts[span.index]
            marks = [lab for lab in LABELS if lab in u.markers]
            if not marks:
                continue
            sp = session.speakers.get(u.speaker)
            who = (sp.name or sp.id) if sp else u.speaker
            role = sp.role if sp else "unknown"
            probs = ", ".join(f"{lab} {u.probabilities[lab]:.2f}" for lab in LABELS if lab in u.probabilities)
            sel = _sub(
                src,
                "PlainTextSelection",
                {
                    "guid": guid(name, "selection", sname, span.index),
                    "name": f"{sname} #{span.index} {who}",
                    "startPosition": str(span.start),
                    "endPosition": str(span.end),
                    "creatingUser": user,
                },
            )
            _sub(
                sel,
                "Description",
                text=f"utterance {span.index}, {who} ({role}); markers: {', '.join(marks)}; probabilities: {probs}",
            )
            for lab in marks:
                coding = _sub(
                    sel, "Coding", {"guid": guid(name, "coding", sname, span.index, lab), "creatingUser": user}
                )
                _sub(coding, "CodeRef", {"targetGUID": code_guid[lab]})
    _sub(
        root,
        "Description",
        text=f"Exported by alliance-nlp {__version__}: {len(analysed)} session(s), markers "
        "from the alliance-nlp classifier. Positions count Unicode code points.",
    )
    ET.indent(root, space=" ")
    data = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data, files


def _source_description(session, summary: dict[str, Any], timed: bool) -> str:
    bits = [f"session {session.id}"]
    if session.source_path:
        bits.append(f"from {Path(str(session.source_path)).name}")
    tot = summary.get("total")
    if isinstance(tot, dict) and tot.get("estimate") is not None:
        bits.append(f"total {tot['estimate']} [{tot.get('low')}, {tot.get('high')}] (WAI-SR metric, model estimate)")
    bits.append("timestamps from the transcript" if timed else "no timestamps in the transcript")
    return "; ".join(bits)


def qdpx_bytes(analysed: list[Analysed], name: str = "alliance-nlp") -> bytes:
    """The .qdpx (zip) in memory: project.qde first, then sources/*.txt."""
    project, files = build_project(analysed, name)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in [("project.qde", project)] + [(p, t.encode("utf-8")) for p, t in files.items()]:
            info = zipfile.ZipInfo(path, ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buf.getvalue()


def write_qdpx(analysed: list[Analysed], output: str | os.PathLike) -> Path:
    """Write the project; a path without the .qdpx suffix is a folder that gets `alliance-nlp.qdpx`."""
    out = Path(output)
    if out.suffix.lower() != ".qdpx":
        out = out / "alliance-nlp.qdpx"
    return write_bytes_atomic(out, qdpx_bytes(analysed, name=out.stem))
