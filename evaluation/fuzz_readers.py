"""Fuzz the transcript readers (`alliance_nlp.ingest`): find inputs that crash, hang, blow up memory or leak text.

    python -m evaluation.fuzz_readers --minutes 10            # from the repository root
    python -m evaluation.fuzz_readers --minutes 1 --seed 7 --formats text,csv --save-dir /tmp/fuzz

Inputs come from structure-aware generators, one per format (valid transcripts with some parts replaced by
hostile values: long runs of one character, huge numbers, deep nesting, bad encodings, broken .docx tables),
and from byte-level mutation of the shipped examples in data/examples/. Each input is read with `read()`, by
format and by detection, in a worker process. A finding is:

- an exception that is not an `AllianceError` (the CLI shows those as a traceback, not one line);
- a read taking over 5 s (--hang-s) on an input under 1 MB (the worker is killed after --timeout s);
- memory over 10x the input: traced Python memory above 10 x the input plus the data model's own cost
  (1 KiB per input line and per turn read, 256 B per comma or opening bracket: a Turn with its Utterance is
  ~0.7 KB and every JSON value or CSV field is a Python object, so a file of tiny records cannot stay under
  a flat 10x), or a jump in the worker's peak RSS above 10 x the input + 64 MiB (lxml and zlib memory is
  not traced). The input is counted as its text held in memory (Python stores text at 1, 2 or 4 bytes a
  character) or, for a .docx, its inflated size;
- an error message that quotes transcript text (generated utterances carry a canary word), spans several
  lines or runs past 400 characters.

Findings are grouped by kind and place, and the first input of each is saved (--save-dir) to be replayed,
fixed and kept in tests/fuzz_regressions/. The normal test suite runs the same generators through
hypothesis for a fixed small budget (tests/test_fuzz_readers.py).
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing as mp
import random
import re
import shutil
import sys
import tempfile
import time
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "data" / "examples"
CANARY = "canarytext"  # in every generated utterance; an error message must never contain it

Files = dict[str, bytes]  # file name -> content; the first is the one to read

# ---- building blocks -------------------------------------------------------------------------------------------

WORDS = (
    "I feel like the week was hard and we talked about sleep work mother okay yes really maybe "
    "don't can't naïve café über Grüße 你好 ¿qué? — … 🙂 well um uh"
).split()
RUN_CHARS = " \t:<>([]{}\"',.;-_&=+@#*0912aZé\x15\\/|\u00a0\u3000\uff1a"
SMALL_RUNS = (1, 2, 5, 40, 300, 2000)
BIG_RUNS = SMALL_RUNS + (20000, 120000)
NAMES = (
    "T",
    "C",
    "Therapist",
    "Client",
    "Dr. Smith",
    "SPEAKER_00",
    "SPEAKER_01",
    "Counsellor 2",
    "Client (J.)",
    "Sam",
    "Mother",
    "interviewer",
    "Pt",
    "Dr. Rivera",
    "UNKNOWN",
    "Speaker A",
    "THE",
    "CLI",
)


def say(r: random.Random) -> str:
    """An utterance: some words, the canary, sentence punctuation (as speech has)."""
    ws = r.choices(WORDS, k=r.randint(1, 12))
    ws.insert(r.randint(0, len(ws)), CANARY + str(r.randint(0, 99)))
    return " ".join(ws) + r.choice([".", "?", "!", "...", ","])


def run(r: random.Random, big: bool) -> str:
    n = r.choice(BIG_RUNS if big else SMALL_RUNS)
    unit = r.choice(
        [
            r.choice(RUN_CHARS),
            r.choice(RUN_CHARS) + r.choice(RUN_CHARS),
            "1:",
            " :",
            "<v",
            "a ",
            "(.",
            "[1",
            "&-",
            "\\u",
            '",',
            "--> ",
            "0:0",
        ]
    )
    return (unit * (n // len(unit) + 1))[:n]


def number(r: random.Random, big: bool) -> str:
    digits = r.choice([1, 3, 20, 400, 5000] if big else [1, 3, 20, 400, 4400])
    return r.choice(
        [
            "9" * digits,
            "-" + "9" * digits,
            "1e999",
            "-1",
            "1.5",
            "0",
            "NaN",
            "Infinity",
            "1" * digits + "." + "5" * digits,
            "99999999999:00:00",
            "00:61:00",
            "1:2:3:4",
            "0x1F",
        ]
    )


def nasty(r: random.Random, big: bool) -> str:
    """A hostile piece of text for any position."""
    k = r.random()
    if k < 0.45:
        return run(r, big)
    if k < 0.65:
        return number(r, big)
    if k < 0.75:
        n = r.choice([3, 99, 101, 1000, 5000] + ([100000] if big else []))
        return r.choice(["[", "{", '[{"a":']) * n
    return r.choice(
        [
            "\x00",
            "\ufeff",
            "\u2028",
            "\x85",
            "\x0c",
            "\r",
            "\x1c",
            "\ud800",
            "\udcff",
            "\x15",
            "\u202e",
            "\U0001f600" * 3,
            "<v>",
            "<v   >",
            "</v>",
            "-->",
            "WEBVTT",
            "@Begin",
            "*CHI:",
            "sep=;",
            '"',
            "\\",
            '%snd:"x"_',
            "\x15" + number(r, big) + "_1\x15",
        ]
    )


def maybe(r: random.Random, good: str, big: bool, p: float = 0.08) -> str:
    return nasty(r, big) if r.random() < p else good


def clock(r: random.Random, big: bool, sep: str = ".", p: float = 0.08) -> str:
    t = r.uniform(0, 7200)
    good = r.choice(
        [
            f"{int(t // 3600):02d}:{int(t // 60 % 60):02d}:{t % 60:06.3f}".replace(".", sep),
            f"{int(t // 60)}:{int(t % 60):02d}",
            f"{t:.2f}",
        ]
    )
    return maybe(r, good, big, p)


def newline(r: random.Random) -> str:
    return r.choices(["\n", "\r\n", "\r"], weights=[8, 3, 1])[0]


def encode(r: random.Random, text: str) -> bytes:
    """Usually UTF-8; sometimes with a BOM, UTF-16 (with or without BOM, odd length), cp1252 or junk bytes."""
    k = r.random()
    if k < 0.75:
        return text.encode("utf-8", "surrogatepass")
    if k < 0.82:
        return b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass")
    if k < 0.9:
        data = text.encode(r.choice(["utf-16", "utf-16-le", "utf-16-be"]), "surrogatepass")
        return data[:-1] if r.random() < 0.3 else data
    if k < 0.95:
        return text.encode("cp1252", "replace")
    data = bytearray(text.encode("utf-8", "surrogatepass"))
    for _ in range(r.randint(1, 4)):
        data.insert(r.randint(0, len(data)), r.choice([0x80, 0xFF, 0xC3, 0xED, 0x81, 0x00]))
    return bytes(data)


class Raw(str):
    """JSON text written as is (numbers beyond what json.dumps writes, NaN, broken nesting)."""


def dumps(v: Any) -> str:
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {dumps(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(dumps(x) for x in v) + "]"
    return json.dumps(v)


def junk(r: random.Random, big: bool) -> Any:
    """A JSON value of the wrong type or a hostile one."""
    # (no canary here: a junk value may land in an identifier field, which messages may quote when short)
    return r.choice(
        [
            None,
            True,
            False,
            -1,
            0,
            2.5,
            [],
            {},
            [1, 2],
            {"a": {"b": []}},
            "",
            "abc def",
            Raw(number(r, big).replace(":", "")) if r.random() < 0.5 else "x",
            Raw("[" * r.choice([50, 101, 3000]) + "]" * r.choice([50, 101, 3000])),
            nasty(r, big),
            "\\ud800 x",
            Raw('"\\ud800\\udc00x\\udfff"'),
            Raw('"\\ud800"'),
        ]
    )


def jval(r: random.Random, good: Any, big: bool, p: float = 0.08) -> Any:
    return junk(r, big) if r.random() < p else good


# ---- per-format generators ---------------------------------------------------------------------------------------


def gen_text(r: random.Random, big: bool = False) -> Files:
    lines = []
    if r.random() < 0.3:
        lines += [f"Date: {maybe(r, '2024-03-01', big)}", f"Session: {r.randint(1, 9)}", "Therapist: Dr. X", ""]
    names = r.sample(NAMES, 2)
    for _ in range(r.randint(0, 25)):
        name, text, t = maybe(r, r.choice(names), big), say(r), clock(r, big)
        lines.append(
            r.choice(
                [
                    f"[{t}] {name}: {text}",
                    f"{name} [{t}]: {text}",
                    f"{name}: ({t}) {text}",
                    f"{t} - {name}: {text}",
                    f"{name}: {text}",
                    f"{name}: {text}",
                    text,
                    "",
                    f"[{t}]",
                    maybe(r, text, big, 0.5),
                    f"{name} (aside): {text}",
                ]
            )
        )
        if r.random() < 0.05:
            lines.append(nasty(r, big))
    nl = newline(r)
    return {"s.txt": encode(r, nl.join(lines) + r.choice(["", nl]))}


def gen_otter(r: random.Random, big: bool = False) -> Files:
    out = []
    for _ in range(r.randint(0, 12)):
        name = maybe(r, r.choice(NAMES), big)
        t = maybe(r, f"{r.randint(0, 90)}:{r.randint(0, 59):02d}", big)
        out += [f"{name}{r.choice(['  ', ' ', '   ', chr(9)])}{t}", say(r)]
        if r.random() < 0.3:
            out.append(say(r))
        out.append("")
    if r.random() < 0.5:
        out.append("Transcribed by https://otter.ai")
    return {"s_otter.txt": encode(r, newline(r).join(out))}


def gen_csv(r: random.Random, big: bool = False, tsv: bool = False) -> Files:
    cols = r.sample(
        ["speaker", "text", "start", "end", "role", "utterance_text", "begin", "interlocutor", "utterance_id", "notes"],
        r.randint(1, 6),
    )
    if r.random() < 0.1:
        cols[r.randrange(len(cols))] = nasty(r, big)
    delim = "\t" if tsv else r.choice([",", ",", ";", "|", "\t"])

    def cell(c: str) -> str:
        v = {
            "speaker": r.choice(NAMES),
            "interlocutor": r.choice(["therapist", "client"]),
            "role": "client",
            "start": clock(r, big),
            "begin": clock(r, big),
            "end": clock(r, big),
        }.get(c) or say(r)
        v = maybe(r, v, big)
        return '"' + v.replace('"', '""') + '"' if r.random() < 0.4 or delim in v or "\n" in v else v

    rows = [delim.join(cols)] + [delim.join(cell(c) for c in cols) for _ in range(r.randint(0, 20))]
    if r.random() < 0.1:
        rows.insert(0, f"sep={delim}")
    if r.random() < 0.1:
        rows.insert(r.randint(0, len(rows)), nasty(r, big))
    return {"s.tsv" if tsv else "s.csv": encode(r, newline(r).join(rows) + "\n")}


def gen_tsv(r: random.Random, big: bool = False) -> Files:
    return gen_csv(r, big, tsv=True)


def _items(r: random.Random, big: bool) -> list:
    items = []
    for _ in range(r.randint(0, 15)):
        it = {
            r.choice(["speaker", "name", "Speaker", "who"]): jval(r, r.choice(NAMES), big),
            r.choice(["text", "utterance", "content", "TEXT"]): jval(r, say(r), big),
            r.choice(["start", "begin", "timestamp"]): jval(r, r.choice([r.uniform(0, 3000), clock(r, big)]), big),
        }
        if r.random() < 0.5:
            it["end"] = jval(r, r.uniform(0, 3000), big)
        if r.random() < 0.2:
            it["role"] = jval(r, r.choice(["therapist", "client"]), big)
        items.append(jval(r, it, big, 0.04))
    return items


def gen_json(r: random.Random, big: bool = False) -> Files:
    k = r.random()
    if k < 0.35 and (EXAMPLES / "session_cbt.txt").exists():
        obj = _session_dict(r, big)
    elif k < 0.7:
        obj = _items(r, big)
    else:
        obj = {r.choice(["utterances", "turns", "data", "records", "other"]): _items(r, big), "meta": jval(r, {}, big)}
    return {"s.json": encode(r, dumps(obj))}


def _session_dict(r: random.Random, big: bool) -> dict:
    from alliance_nlp.ingest import read  # a real session, saved as JSON, with some values replaced

    d = json.loads(json.dumps(read(EXAMPLES / "session.cha").to_dict(), default=str))
    d["turns"] = d["turns"][: r.randint(0, 6)]
    for _ in range(r.randint(0, 4)):
        target = d
        path = []
        while isinstance(target, (dict, list)) and target and r.random() < 0.8:
            key = r.choice(list(target)) if isinstance(target, dict) else r.randrange(len(target))
            path.append(key)
            if not isinstance(target[key], (dict, list)):
                target[key] = junk(r, big)
                break
            target = target[key]
        else:
            if isinstance(target, dict):
                target[r.choice(["extra", "version", "id", "speakers", "turns"])] = junk(r, big)
    return d


def _words(r: random.Random, big: bool, n: int) -> list:
    t = r.uniform(0, 100)
    out = []
    for _ in range(n):
        d = r.uniform(0.05, 1.0)
        w = {
            "word": jval(r, r.choice(WORDS), big),
            "start": jval(r, round(t, 3), big),
            "end": jval(r, round(t + d, 3), big),
        }
        if r.random() < 0.7:
            w["score"] = jval(r, round(r.random(), 3), big)
        if r.random() < 0.5:
            w["speaker"] = jval(r, r.choice(["SPEAKER_00", "SPEAKER_01"]), big)
        out.append(jval(r, w, big, 0.03))
        t += d + r.choice([0, 0, 0.2, 3])
    return out


def gen_whisperx(r: random.Random, big: bool = False) -> Files:
    if r.random() < 0.2:
        obj: Any = {"word_segments": _words(r, big, r.randint(0, 40))}
    else:
        segs = []
        for _ in range(r.randint(0, 10)):
            seg = {
                "start": jval(r, r.uniform(0, 500), big),
                "end": jval(r, r.uniform(0, 500), big),
                "text": jval(r, say(r), big),
            }
            if r.random() < 0.7:
                seg["speaker"] = jval(r, r.choice(["SPEAKER_00", "SPEAKER_01"]), big)
            if r.random() < 0.7:
                seg["words"] = jval(r, _words(r, big, r.randint(0, 12)), big)
            segs.append(jval(r, seg, big, 0.03))
        obj = {"segments": jval(r, segs, big, 0.03), "language": jval(r, "en", big)}
    return {"s_whisperx.json": encode(r, dumps(obj))}


def gen_rttm(r: random.Random, big: bool = False) -> Files:
    lines, t = [], 0.0
    for _ in range(r.randint(0, 20)):
        dur = r.choice([0.0, r.uniform(0.1, 8), r.uniform(0, 600)])
        onset = clock(r, big, p=0.03) if r.random() < 0.05 else f"{t:.3f}"
        lines.append(
            maybe(
                r,
                f"SPEAKER s 1 {onset} {maybe(r, f'{dur:.3f}', big, 0.04)} <NA> <NA> "
                f"{r.choice(['A', 'B', 'spk_0'])} <NA> <NA>",
                big,
                0.05,
            )
        )
        t += r.choice([-1.0, 0.0, dur, dur + 0.5, r.uniform(0, 5)])
        t = max(t, 0.0)
    if r.random() < 0.2:
        lines.insert(0, r.choice([";; comment", "SPKR-INFO s 1 <NA> <NA> <NA> unknown A <NA> <NA>", "NOISE x"]))
    words = _words(r, big, r.randint(0, 60))
    wobj = r.choice([words, {"words": words}, {"segments": [{"words": words}]}, jval(r, words, big, 0.5)])
    return {"s.rttm": encode(r, "\n".join(lines) + "\n"), "s_words.json": encode(r, dumps(wobj))}


def gen_convokit(r: random.Random, big: bool = False) -> Files:
    convs = r.choice([["c1"], ["c1"], ["c1", "c2"]])
    objs = []
    for i in range(r.randint(0, 15)):
        o = {
            "id": f"u{i}",
            "speaker": jval(r, r.choice(NAMES), big),
            "text": jval(r, say(r), big),
            "conversation_id": jval(r, r.choice(convs), big),
            "reply_to": None,
            "timestamp": jval(r, 1_700_000_000 + i * r.choice([1, 7, 60]), big),
            "meta": jval(r, {"role": r.choice(["therapist", "client", "x"])}, big),
        }
        if r.random() < 0.05:
            del o[r.choice(["text", "speaker"])]
        objs.append(jval(r, o, big, 0.03))
    body = dumps(objs) if r.random() < 0.2 else "\n".join(dumps(o) for o in objs)
    files = {"utterances.jsonl": encode(r, body)}
    if r.random() < 0.3:
        speakers = {n: {"meta": {"role": "therapist"}} for n in NAMES[:3]}
        files["speakers.json"] = encode(r, dumps(jval(r, speakers, big, 0.3)))
    return files


def gen_vtt(r: random.Random, big: bool = False) -> Files:
    out = [maybe(r, "WEBVTT", big, 0.03), ""]
    if r.random() < 0.2:
        out += [r.choice(["NOTE " + say(r), "STYLE\n::cue { color: red }", "REGION\nid:r1 width:40%"]), ""]
    t = 0.0
    for i in range(r.randint(0, 15)):
        a, b = t, t + r.uniform(0, 5)
        ts = lambda x: f"{int(x // 3600):02d}:{int(x // 60 % 60):02d}:{x % 60:06.3f}"  # noqa: E731
        if r.random() < 0.3:
            out.append(str(i + 1))
        out.append(maybe(r, f"{ts(a)} --> {ts(b)}", big, 0.06) + r.choice(["", " align:start position:10%"]))
        name = r.choice(NAMES)
        out.append(
            r.choice(
                [
                    f"<v {maybe(r, name, big)}>{say(r)}</v>",
                    f"{maybe(r, name, big)}: {say(r)}",
                    say(r),
                    f"<v.loud {name}>{say(r)}",
                    f"<i>{say(r)}</i>",
                    maybe(r, say(r), big, 0.4),
                ]
            )
        )
        if r.random() < 0.2:
            out.append(say(r))
        out.append("")
        t = b
    return {"s.vtt": encode(r, newline(r).join(out))}


def gen_srt(r: random.Random, big: bool = False) -> Files:
    out, t = [], 0.0
    for i in range(r.randint(0, 15)):
        a, b = t, t + r.uniform(0, 5)
        ts = lambda x: f"{int(x // 3600):02d}:{int(x // 60 % 60):02d}:{x % 60:06.3f}".replace(".", ",")  # noqa: E731
        out += [maybe(r, str(i + 1), big, 0.03), maybe(r, f"{ts(a)} --> {ts(b)}", big, 0.06)]
        out.append(
            r.choice(
                [f"{maybe(r, r.choice(NAMES), big)}: {say(r)}", say(r), f"<i>{say(r)}</i>", maybe(r, say(r), big, 0.4)]
            )
        )
        if r.random() < 0.2:
            out.append(say(r))
        out.append("")
        t = b
    return {"s.srt": encode(r, newline(r).join(out))}


def gen_cha(r: random.Random, big: bool = False) -> Files:
    out = [
        "@UTF8",
        "@Begin",
        "@Languages:\teng",
        maybe(r, "@Participants:\tTHE Therapist Therapist, CLI Client Client", big),
        maybe(r, "@ID:\teng|corpus|THE|||||Therapist|||", big),
    ]
    t = 0
    for _ in range(r.randint(0, 15)):
        spk = maybe(r, r.choice(["THE", "CLI"]), big, 0.04)
        body = say(r) + r.choice(
            [
                "",
                " [/]",
                " &-um",
                " (.)",
                " [= laughs]",
                " +...",
                " xxx",
                " <going to> [//]",
                " &=laughs",
                " (be)cause",
                " ice_cream",
                "@s:spa",
            ]
        )
        d = r.randint(0, 9000)
        bullet = maybe(r, f"{t}_{t + d}", big, 0.08)
        out.append(f"*{spk}:\t{maybe(r, body, big, 0.06)} \x15{bullet}\x15" if r.random() < 0.7 else f"*{spk}:\t{body}")
        if r.random() < 0.2:
            out.append("\t" + maybe(r, say(r), big))
        if r.random() < 0.2:
            out.append("%mor:\tpro|I v|feel")
        t += d
    out.append("@End")
    return {"s.cha": encode(r, "\n".join(out) + "\n")}


# docx: a minimal package written directly, so that tables can carry any gridSpan / vMerge / gridBefore
_CT = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Types xmlns="http://schemas.openxmlformats.org/'
    'package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/'
    'document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships xmlns="http://schemas.openxmlformats'
    '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
    'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _xml_text(s: str) -> str:
    s = "".join(
        ch for ch in s if ch in "\t\n\r" or (" " <= ch and not "\ud800" <= ch <= "\udfff" and ch not in "\ufffe\uffff")
    )
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _para(text: str, r: random.Random) -> str:
    runs = "".join(
        f'<w:r><w:t xml:space="preserve">{_xml_text(p)}</w:t></w:r>' for p in re.split(r"(?<=:) ", text, maxsplit=1)
    )
    if r.random() < 0.05:
        runs += f'<w:r><w:br w:type="{r.choice(["page", "textWrapping", "bogus"])}"/></w:r>'
    return f"<w:p>{runs}</w:p>"


def gen_docx(r: random.Random, big: bool = False) -> Files:
    body = []
    names = r.sample(NAMES, 2)
    if r.random() < 0.5:
        body += [_para(f"{maybe(r, r.choice(names), big)}: {say(r)}", r) for _ in range(r.randint(0, 15))]
    if r.random() < 0.6:
        ncol = r.randint(1, 4)
        rows = []
        if r.random() < 0.6:
            rows.append(["Time", "Speaker", "Text", "Notes"][:ncol])
        for _ in range(r.choice([0, 1, 3, 10, 40, 300 if big else 60])):
            rows.append([clock(r, big), r.choice(names), say(r), say(r)][:ncol])
        trs = []
        for i, row in enumerate(rows):
            tcs = []
            for c in row:
                props = []
                if r.random() < 0.08:
                    props.append(f'<w:gridSpan w:val="{r.choice(["2", "0", "-3", "abc", "1e3", "70", "999999999"])}"/>')
                if r.random() < 0.1 or (i and r.random() < 0.02 * (i % 7)):
                    props.append(
                        r.choice(
                            [
                                "<w:vMerge/>",
                                '<w:vMerge w:val="continue"/>',
                                '<w:vMerge w:val="restart"/>',
                                '<w:vMerge w:val="bogus"/>',
                            ]
                        )
                    )
                tcpr = f"<w:tcPr>{''.join(props)}</w:tcPr>" if props else ""
                tcs.append(f"<w:tc>{tcpr}{_para(maybe(r, c, big, 0.03), r)}</w:tc>")
            trpr = f'<w:trPr><w:gridBefore w:val="{r.choice(["1", "x"])}"/></w:trPr>' if r.random() < 0.03 else ""
            trs.append(f"<w:tr>{trpr}{''.join(tcs)}</w:tr>")
        if r.random() < 0.05:  # a long vertical merge: python-docx resolves each cell recursively to the top
            trs += [
                '<w:tr><w:tc><w:tcPr><w:vMerge w:val="continue"/></w:tcPr><w:p/></w:tc><w:tc><w:p><w:r><w:t>'
                f"{_xml_text(say(r))}</w:t></w:r></w:p></w:tc></w:tr>"
            ] * r.choice([50, 1200 if big else 300])
        grid = "".join("<w:gridCol/>" for _ in range(ncol))
        body.append(f"<w:tbl><w:tblGrid>{grid}</w:tblGrid>{''.join(trs)}</w:tbl>")
    doc = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{_W}"><w:body>'
        f"{''.join(body)}</w:body></w:document>"
    )
    if r.random() < 0.05:  # XML-level damage
        i = r.randint(0, len(doc))
        doc = doc[:i] + r.choice(["<", "&", "</w:p>", "<w:p>", "\x00", nasty(r, big)]) + doc[i:]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", _CT if r.random() > 0.03 else "junk")
        z.writestr("_rels/.rels", _RELS)
        z.writestr("word/document.xml", doc.encode("utf-8", "surrogatepass"))
        if r.random() < 0.05:  # a zip bomb member
            z.writestr("word/media/pad.bin", b"\0" * r.choice([2**21, 2**24 if big else 2**22]))
    return {"s.docx": buf.getvalue()}


GENERATORS: dict[str, Callable[..., Files]] = {
    "text": gen_text,
    "otter": gen_otter,
    "csv": gen_csv,
    "tsv": gen_tsv,
    "json": gen_json,
    "whisperx": gen_whisperx,
    "rttm": gen_rttm,
    "convokit": gen_convokit,
    "vtt": gen_vtt,
    "srt": gen_srt,
    "cha": gen_cha,
    "docx": gen_docx,
}

# ---- mutation of the shipped examples ------------------------------------------------------------------------

EXAMPLE_FILES: dict[str, tuple[str, tuple[str, ...]]] = {  # format -> (file, companion files)
    "text": ("session_cbt.txt", ()),
    "otter": ("session_otter.txt", ()),
    "csv": ("session_export.csv", ()),
    "json": ("session_whisperx.json", ()),
    "whisperx": ("session_whisperx.json", ()),
    "rttm": ("session.rttm", ("session_words.json",)),
    "convokit": ("session_convokit/utterances.jsonl", ()),
    "vtt": ("session_zoom.vtt", ()),
    "srt": ("session_teams.srt", ()),
    "cha": ("session.cha", ()),
    "docx": ("session_table.docx", ()),
}
EXAMPLE_FILES_MORE = {"vtt": "session_teams.vtt", "text": "session_unlabelled.txt", "docx": "session.docx"}


def mutate(r: random.Random, data: bytes, big: bool = False) -> bytes:
    """A few byte-level edits: flips, inserts, deletes, duplicated chunks, hostile snippets, truncation."""
    b = bytearray(data)
    for _ in range(r.randint(1, 8)):
        k, i = r.random(), r.randint(0, len(b))
        if k < 0.2 and b:
            b[min(i, len(b) - 1)] ^= 1 << r.randrange(8)
        elif k < 0.35:
            b[i:i] = bytes(r.randrange(256) for _ in range(r.randint(1, 8)))
        elif k < 0.5:
            del b[i : i + r.randint(1, 64)]
        elif k < 0.6:
            j = r.randint(0, len(b))
            chunk = b[min(i, j) : max(i, j)][: 2**16]
            b[i:i] = chunk * r.randint(1, 8 if big else 3)
        elif k < 0.9:
            b[i:i] = nasty(r, big).encode("utf-8", "surrogatepass")
        else:
            del b[i:]
    return bytes(b)


def mutate_docx(r: random.Random, data: bytes, big: bool = False) -> bytes:
    """Mutate document.xml inside the zip (byte-level mutation of the zip itself mostly breaks the zip)."""
    zin = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            blob = zin.read(info)
            if info.filename == "word/document.xml":
                blob = mutate(r, blob, big)
            zout.writestr(info.filename, blob)
    return buf.getvalue()


def gen_mutant(r: random.Random, fmt: str, big: bool = False) -> Files:
    name, companions = EXAMPLE_FILES[fmt]
    if fmt in EXAMPLE_FILES_MORE and r.random() < 0.4:
        name = EXAMPLE_FILES_MORE[fmt]
    data = (EXAMPLES / name).read_bytes()
    base = Path(name).name
    if fmt == "docx":
        files = {base: mutate_docx(r, data, big) if r.random() < 0.8 else mutate(r, data, big)}
    else:
        files = {base: mutate(r, data, big)}
    for c in companions:
        cdata = (EXAMPLES / c).read_bytes()
        files[Path(c).name] = mutate(r, cdata, big) if r.random() < 0.5 else cdata
    return files


# ---- reading and judging -------------------------------------------------------------------------------------

HANG_S = 5.0
SMALL_INPUT = 2**20


@dataclass
class Outcome:
    fmt: str
    detect: bool
    ok: bool = False
    error: str | None = None  # exception class name
    message: str = ""
    where: str = ""  # file:line of the raising frame (for grouping)
    seconds: float = 0.0
    peak: int = 0  # traced bytes
    turns: int = 0
    findings: list[str] = field(default_factory=list)


def write_files(files: Files, folder: Path) -> Path:
    """Write the files (convokit's into a folder of their own); return the path of the one to read."""
    first = None
    for name, data in files.items():
        p = folder / name
        p.write_bytes(data)
        first = first or p
    assert first is not None
    return first


def read_once(path: Path, fmt: str | None, trace: bool) -> Outcome:
    """Read one file in this process and describe what happened (no judging)."""
    import tracemalloc

    from alliance_nlp.errors import AllianceError
    from alliance_nlp.ingest import read

    out = Outcome(fmt or "detect", fmt is None)
    if trace:
        tracemalloc.start()
    t0 = time.perf_counter()
    try:
        s = read(path, format=fmt) if fmt else read(path)
        out.ok, out.turns = True, len(s.turns)
        del s
    except AllianceError as exc:
        out.error, out.message = type(exc).__name__, str(exc)
    except BaseException as exc:  # noqa: BLE001 - the point is to catch everything
        if isinstance(exc, KeyboardInterrupt):
            raise
        tb = traceback.extract_tb(exc.__traceback__)
        out.error, out.message = "!" + type(exc).__name__, f"{type(exc).__name__}: {str(exc)[:300]}"
        out.where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
        inner = [f for f in tb if "alliance_nlp" in f.filename]
        if inner:
            out.where += f" (from {Path(inner[-1].filename).name}:{inner[-1].lineno})"
    out.seconds = time.perf_counter() - t0
    if trace:
        out.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return out


def judge(
    out: Outcome, size: int, lines: int, hang_s: float = HANG_S, base: int | None = None, values: int = 0
) -> list[str]:
    """The findings for one outcome (empty when the reader behaved)."""
    found = []
    if out.error and out.error.startswith("!"):
        found.append(f"exception {out.error[1:]} at {out.where}")
    if out.error and not out.error.startswith("!"):
        msg = out.message
        if CANARY in msg.lower():
            found.append("message quotes transcript text")
        if "\n" in msg or "\r" in msg:
            found.append("message spans lines")
        text = msg.split(": ", 1)[1] if ": " in msg else msg
        if len(text) > 400:
            found.append(f"message of {len(text)} characters")
    if size < SMALL_INPUT and out.seconds > hang_s:
        found.append(f"slow: {out.seconds:.1f} s for {size:,} bytes")
    allowed = 10 * (base or size) + 1024 * (lines + out.turns) + 256 * values + 2 * 2**20
    if out.peak > allowed:
        found.append(f"memory: {out.peak / 2**20:.0f} MiB traced for {size:,} bytes")
    return found


def input_stats(files: Files) -> tuple[int, int, int, int]:
    """(bytes, lines, the size memory is measured against, commas and opening brackets): the size per file
    is the larger of its bytes and its text as Python holds it (4 bytes a character once one character
    needs them), or for a zip its inflated size."""
    from alliance_nlp.ingest.base import decode_bytes

    size = sum(len(b) for b in files.values())
    lines = sum(b.count(b"\n") + b.count(b"\r") + 1 for b in files.values())
    values = sum(b.count(b",") + b.count(b"{") + b.count(b"[") for b in files.values())
    base = 0
    for b in files.values():
        held = len(b)
        if b[:2] == b"PK":
            try:
                held = max(held, sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(b)).infolist()))
            except Exception:  # noqa: BLE001 - not a readable zip: its bytes
                pass
        else:
            try:
                held = max(held, sys.getsizeof(decode_bytes(b)[0]))
            except Exception:  # noqa: BLE001 - undecodable (InputError; older readers raised others)
                pass
        base += held
    return size, lines, base, values


# ---- the long run: a worker process per input stream ---------------------------------------------------------


def _worker(conn, mem_limit: int) -> None:
    import resource

    try:
        resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))
    except (ValueError, OSError):
        pass
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    while True:
        job = conn.recv()
        if job is None:
            return
        path, fmt, trace = job
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out = read_once(Path(path), fmt, trace=False)
        if trace and out.seconds < 2 and not (out.error or "").startswith("!"):
            out.peak = read_once(Path(path), fmt, trace=True).peak  # memory on a second, traced read
        rss_jump = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss0
        conn.send((out, rss_jump))


class Runner:
    """Reads inputs in a worker process; kills and restarts it when a read runs past `timeout` seconds."""

    def __init__(self, timeout: float, mem_limit: int = 6 * 2**30):
        self.timeout, self.mem_limit = timeout, mem_limit
        self.ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        self.proc = None
        self.conn = None

    def _start(self) -> None:
        parent, child = self.ctx.Pipe()
        self.proc = self.ctx.Process(target=_worker, args=(child, self.mem_limit), daemon=True)
        self.proc.start()
        self.conn = parent

    def read(self, path: Path, fmt: str | None) -> tuple[Outcome, int]:
        if self.proc is None or not self.proc.is_alive():
            self._start()
        self.conn.send((str(path), fmt, True))
        if self.conn.poll(self.timeout):
            try:
                return self.conn.recv()
            except EOFError:
                pass
        # hung, or died (killed for memory): end this worker
        out = Outcome(
            fmt or "detect", fmt is None, error="!Hang" if self.proc.is_alive() else "!WorkerDied", seconds=self.timeout
        )
        out.where = "worker"
        self.proc.kill()
        self.proc.join()
        self.proc = None
        return out, 0

    def close(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.conn.send(None)
            self.proc.join(timeout=5)
            if self.proc.is_alive():
                self.proc.kill()


def replay(folder: Path, fmt: str | None) -> int:
    """Read a saved finding (its first file, or the one given) in this process and show what happened."""
    path = (
        folder
        if folder.is_file()
        else sorted(
            p for p in folder.iterdir() if p.suffix != ".json" or p.name.startswith("s") and "words" not in p.name
        )[0]
    )
    files = {p.name: p.read_bytes() for p in path.parent.iterdir() if p.is_file()}
    size, lines, base, values = input_stats(files)
    out = read_once(path, fmt, trace=False)
    out.peak = read_once(path, fmt, trace=True).peak
    print(
        f"{path} ({size:,} bytes, {lines:,} lines) as {fmt or 'detected'}: {out.seconds:.2f} s, "
        f"peak {out.peak / 2**20:.1f} MiB, {'ok' if out.ok else out.error}, {out.message[:300]} {out.where}"
    )
    found = judge(out, size, lines, base=base, values=values)
    print("findings:", found or "none")
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="how long to fuzz (default 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--formats", default=",".join(GENERATORS), help="comma-separated reader names")
    ap.add_argument("--timeout", type=float, default=30.0, help="kill a read after this many seconds")
    ap.add_argument("--hang-s", type=float, default=HANG_S, help="a read slower than this is a finding")
    ap.add_argument("--save-dir", type=Path, default=Path(tempfile.gettempdir()) / "alliance_fuzz_findings")
    ap.add_argument("--out", type=Path, help="write a JSON summary here")
    ap.add_argument("--replay", type=Path, help="read one saved input (a file or a finding's folder) and stop")
    ap.add_argument("--format", help="with --replay: the reader to use (default: detect)")
    args = ap.parse_args(argv)
    if args.replay:
        return replay(args.replay, args.format)

    formats = [f for f in args.formats.split(",") if f]
    unknown = set(formats) - set(GENERATORS)
    if unknown:
        ap.error(f"unknown formats: {', '.join(sorted(unknown))}")
    rng = random.Random(args.seed)
    runner = Runner(args.timeout)
    work = Path(tempfile.mkdtemp(prefix="alliance_fuzz_"))
    args.save_dir.mkdir(parents=True, exist_ok=True)
    findings: dict[str, dict] = {}
    counts = {"inputs": 0, "reads": 0, "ok": 0, "input_errors": 0, "bytes": 0}
    per_format: dict[str, int] = {f: 0 for f in formats}
    t_end = time.monotonic() + args.minutes * 60
    t0 = time.monotonic()
    last_report = t0
    try:
        while time.monotonic() < t_end:
            fmt = rng.choice(formats)
            seed = rng.randrange(2**32)
            r = random.Random(seed)
            big = r.random() < 0.3
            kind = "mutant" if fmt in EXAMPLE_FILES and r.random() < 0.4 else "generated"
            files = gen_mutant(r, fmt, big) if kind == "mutant" else GENERATORS[fmt](r, big)
            case = work / f"{counts['inputs']}"
            case.mkdir()
            path = write_files(files, case)
            size, lines, base, values = input_stats(files)
            counts["inputs"] += 1
            counts["bytes"] += size
            per_format[fmt] += 1
            for detect in (False, True) if r.random() < 0.3 else (False,):
                out, rss_jump = runner.read(path, None if detect else fmt)
                counts["reads"] += 1
                counts["ok"] += out.ok
                counts["input_errors"] += bool(out.error and not out.error.startswith("!"))
                found = judge(out, size, lines, args.hang_s, base, values)
                if rss_jump > 10 * base + 64 * 2**20:
                    found.append(f"memory: peak RSS up {rss_jump / 2**20:.0f} MiB for {size:,} bytes")
                for f in found:
                    kind_of = re.sub(r"[0-9.,]+ (s|MiB|bytes|characters)", "#", f)
                    key = f"{fmt}{' (detect)' if detect else ''}: {kind_of}"
                    if key not in findings:
                        dest = args.save_dir / f"finding_{len(findings):03d}_{fmt}"
                        shutil.copytree(case, dest, dirs_exist_ok=True)
                        findings[key] = {
                            "finding": f,
                            "format": fmt,
                            "detect": detect,
                            "kind": kind,
                            "seed": seed,
                            "saved": str(dest),
                            "message": out.message[:300],
                            "count": 0,
                        }
                        print(f"FINDING {key}\n  {out.message[:200]}\n  saved: {dest}", flush=True)
                    findings[key]["count"] += 1
            shutil.rmtree(case, ignore_errors=True)
            if time.monotonic() - last_report > 60:
                last_report = time.monotonic()
                print(
                    f"{(last_report - t0) / 60:.1f} min: {counts['inputs']:,} inputs, {len(findings)} findings",
                    flush=True,
                )
    finally:
        runner.close()
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - t0
    summary = {
        "minutes": round(elapsed / 60, 2),
        "seed": args.seed,
        **counts,
        "per_format": per_format,
        "findings": list(findings.values()),
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "findings"}, indent=1))
    print(f"{len(findings)} distinct findings" + (f" (inputs saved under {args.save_dir})" if findings else ""))
    for k, v in findings.items():
        print(f"  {v['count']:5d} x {k}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=1) + "\n")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
