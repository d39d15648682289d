"""Write session.docx (speaker-labelled paragraphs) and session_table.docx (a time/speaker/text
table) from the invented dialogue DOCX in dialogues.py, with python-docx.

    python data/examples/make_docx.py

The zip container may differ byte-for-byte between runs; the content is the same.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import docx
from docx.shared import Pt

HERE = Path(__file__).resolve().parent
import dialogues as D  # noqa: E402  (run as a script: its folder is on the path)
from make_examples import timed  # noqa: E402

FIXED = dt.datetime(2025, 3, 4, 10, 0, 0)


def _doc(title: str) -> docx.Document:
    d = docx.Document()
    d.core_properties.created = d.core_properties.modified = FIXED
    d.core_properties.author = "alliance-nlp examples"
    d.add_heading(title, level=1)
    d.add_paragraph("Invented example session for alliance-nlp (not a real client).")
    return d


def paragraphs() -> None:
    d = _doc("Session 6 - parenting stress (transcript)")
    labels = {"T": "Therapist", "C": "Client"}
    for key, text, _s, _, _ in timed(D.DOCX, 9):
        p = d.add_paragraph()
        r = p.add_run(f"{labels[key]}: ")
        r.bold = True
        p.add_run(text)
    d.save(HERE / "session.docx")


def table() -> None:
    d = _doc("Session 6 - parenting stress (table transcript)")
    rows = timed(D.DOCX, 9)
    t = d.add_table(rows=1, cols=3)
    t.style = "Table Grid"
    for c, h in zip(t.rows[0].cells, ("Time", "Speaker", "Text")):
        c.text = h
        c.paragraphs[0].runs[0].bold = True
    names = {"T": "Dr. Lena Brandt", "C": "Maria"}
    for key, text, s, _, _ in rows:
        m, sec = divmod(int(s), 60)
        cells = t.add_row().cells
        cells[0].text, cells[1].text, cells[2].text = f"{m:02d}:{sec:02d}", names[key], text
    for row in t.rows:
        for c in row.cells:
            for p in c.paragraphs:
                for r in p.runs:
                    r.font.size = Pt(10)
    d.save(HERE / "session_table.docx")


if __name__ == "__main__":
    paragraphs()
    table()
    print("wrote session.docx, session_table.docx")
