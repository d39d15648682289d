"""Write the regression inputs in this folder and manifest.json (run from the repository root):

    python tests/fuzz_regressions/make_regressions.py

Each input is a reader finding (a crash that was not an InputError, a hang, a memory blow-up, an error
message quoting transcript text, or a valid file misread), kept small: the hangs were quadratic, so a file of
tens of KB took seconds to minutes before the fix. tests/test_fuzz_readers.py reads every case and checks the
outcome the manifest states (`ok`, or `error` with the error class and a pattern its message must match).
"""

from __future__ import annotations

import codecs
import io
import json
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CANARY = "canarytext"  # transcript text an error message must not quote

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


def docx(body: str, extra: dict[str, bytes] | None = None) -> bytes:
    doc = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.'
        f'openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>'
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", _CT)
        z.writestr("_rels/.rels", _RELS)
        z.writestr("word/document.xml", doc)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def p(text: str) -> str:
    return f'<w:p><w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>'


def tc(text: str, props: str = "") -> str:
    return f"<w:tc>{f'<w:tcPr>{props}</w:tcPr>' if props else ''}{p(text)}</w:tc>"


def table(rows: list[str], cols: int = 3) -> str:
    return f"<w:tbl><w:tblGrid>{'<w:gridCol/>' * cols}</w:tblGrid>{''.join(rows)}</w:tbl>"


HEAD_ROW = f"<w:tr>{tc('Time')}{tc('Speaker')}{tc('Text')}</w:tr>"
ROWS = [
    f"<w:tr>{tc('00:00:0' + str(i))}{tc('T' if i % 2 else 'C')}{tc(f'Said {i} {CANARY}.')}</w:tr>" for i in range(1, 4)
]
WORDS = [{"word": "hello", "start": 0.5, "end": 0.9}, {"word": "there", "start": 1.0, "end": 1.4}]
SPEAKER = "SPEAKER s 1 0.0 2.0 <NA> <NA> A <NA> <NA>\n"
SPAN_TEXT, SPAN_HUGE = '<w:gridSpan w:val="abc"/>', '<w:gridSpan w:val="50000000"/>'
SPAN_TWO, SPAN_NOVAL = '<w:gridSpan w:val="2"/>', "<w:gridSpan/>"
MERGE_START, MERGE_ON = '<w:vMerge w:val="restart"/>', "<w:vMerge/>"

CASES: list[dict] = []


def case(
    name: str,
    data: bytes | str,
    fmt: str | None,
    expect: str,
    why: str,
    *,
    error: str = "InputError",
    match: str = "",
    companions: dict[str, bytes | str] | None = None,
    memory: bool = False,
) -> None:
    """One regression input; `fmt` None reads it by detection."""
    for fname, content in {name: data, **(companions or {})}.items():
        (HERE / fname).write_bytes(content.encode("utf-8", "surrogatepass") if isinstance(content, str) else content)
    entry = {"file": name, "format": fmt, "expect": expect, "why": why}
    if expect == "error":
        entry.update(error=error, match=match)
    if companions:
        entry["companions"] = sorted(companions)
    if memory:
        entry["memory"] = True
    CASES.append(entry)


def main() -> None:
    for old in HERE.iterdir():
        if old.name not in {"make_regressions.py", "README.md"} and old.is_file():
            old.unlink()

    # ---- decoding: UnicodeDecodeError escaped decode_bytes ----
    case(
        "utf8_bom_invalid.txt",
        codecs.BOM_UTF8 + b"T: caf\xe9 " + CANARY.encode() + b"\nC: hi\n",
        "text",
        "error",
        "invalid UTF-8 after a UTF-8 byte-order mark raised UnicodeDecodeError",
        match="UTF-8",
    )
    case(
        "utf16_bom_odd.txt",
        codecs.BOM_UTF16_LE + "T: hello\nC: hi\n".encode("utf-16-le") + b"\x00",
        "text",
        "error",
        "odd-length UTF-16 after a byte-order mark raised UnicodeDecodeError",
        match="odd number of bytes",
    )
    case(
        "utf16_nobom_odd.txt",
        "T: hello\nC: hi there\n".encode("utf-16-le")[:-1],
        "text",
        "error",
        "odd-length UTF-16 without BOM (NUL pattern) raised UnicodeDecodeError",
        match="binary",
    )
    case(
        "utf16_bom_lone_surrogate.txt",
        codecs.BOM_UTF16_LE + b"T\x00:\x00 \x00\x00\xd8h\x00i\x00",
        "text",
        "error",
        "a lone surrogate in UTF-16 raised UnicodeDecodeError",
        match="UTF-16",
    )

    # ---- JSON: recursion, long integers, overflow ----
    case(
        "deep_sniff.dat",
        "[" * 60000,
        None,
        "error",
        "format sniffing parsed a deeply nested head: RecursionError",
        error="UnknownFormatError",
    )
    case(
        "deep.json",
        '{"utterances": ' + "[" * 5000 + "]" * 5000 + "}",
        "json",
        "error",
        "deep nesting in a JSON transcript: RecursionError",
        error="LimitError",
        match="max_depth=100",
    )
    case(
        "deep_words.rttm",
        SPEAKER,
        "rttm",
        "error",
        "deep nesting in the words file: RecursionError",
        error="LimitError",
        match="max_depth",
        companions={"deep_words_words.json": "[" * 3000 + "]" * 3000},
    )
    case(
        "deep_line.jsonl",
        '{"speaker": "T", "text": "hi", "conversation_id": "c", "meta": ' + "[" * 3000 + "]" * 3000 + "}\n",
        "convokit",
        "error",
        "deep nesting in a ConvoKit line: RecursionError",
        error="LimitError",
        match="max_depth",
    )
    case(
        "long_int.json",
        '[{"speaker": "T", "text": "hi", "start": ' + "9" * 5000 + "}]",
        "json",
        "error",
        "an integer over 4,300 digits: ValueError outside the JSONDecodeError handler",
        match="too many digits",
    )
    case(
        "huge_time.json",
        '[{"speaker": "T", "text": "hi ' + CANARY + '", "start": ' + "9" * 400 + "}]",
        "json",
        "error",
        "an integer time beyond the float range: OverflowError",
        match="too large",
    )
    case(
        "huge_score.json",
        json.dumps(
            {
                "segments": [
                    {"start": 0, "end": 1, "text": "hi", "words": [{"word": "hi", "start": 0, "end": 1, "score": 0}]}
                ]
            }
        ).replace('"score": 0', '"score": ' + "9" * 400),
        "whisperx",
        "error",
        "a word score beyond the float range: OverflowError",
        match="score",
    )
    case(
        "inf_time.csv",
        "speaker,text,start\nT,hello " + CANARY + "," + "1" * 400 + ".5\n",
        "csv",
        "error",
        "a time of 400 digits parsed as inf and was accepted",
        match="too large",
    )
    case(
        "inf_onset.rttm",
        "SPEAKER s 1 1e999 1.0 <NA> <NA> A <NA> <NA>\n",
        "rttm",
        "error",
        "an RTTM onset of inf was accepted",
        match="onset",
        companions={"inf_onset_words.json": json.dumps(WORDS)},
    )
    case(
        "lone_surrogate.json",
        '[{"speaker": "T", "text": "caf\\ud800 hello"}, {"speaker": "C", "text": "hi"}]',
        "json",
        "ok",
        "a lone surrogate escape gave text that cannot be written back out as UTF-8",
    )
    case(
        "session_bad_types.json",
        json.dumps(
            {
                "schema": "alliance-nlp/session",
                "version": "1.1",
                "id": "s",
                "turns": [
                    {"speaker": "T", "text": "hi", "utterances": [{"text": "hi", "speaker": "T", "start": "soon"}]}
                ],
            }
        ),
        "json",
        "error",
        "session JSON with a string time was accepted (later stages assume numbers)",
        match=r"turns\[0\]\.utterances\[0\]\.start",
    )
    case(
        "session_version_text.json",
        json.dumps({"schema": "alliance-nlp/session", "version": CANARY * 3, "id": "s", "turns": []}),
        "json",
        "error",
        "the version value was quoted whole in the message",
        match="unsupported session version",
    )

    # ---- CHAT ----
    case(
        "bullet_digits.cha",
        f"@Begin\n*THE:\thello {CANARY} . \x15{'9' * 5000}_1\x15\n@End\n",
        "cha",
        "error",
        "a time bullet of 5,000 digits: ValueError (int conversion limit)",
        match="bullet",
    )
    case(
        "bullet_overflow.cha",
        f"@Begin\n*THE:\thello . \x15{'9' * 400}_{'9' * 401}\x15\n@End\n",
        "cha",
        "error",
        "a time bullet of 400 digits: OverflowError",
        match="bullet",
    )
    case(
        "cha_spaces.cha",
        "@Begin\n*THE:\thello" + " " * 30000 + "x\n*CLI:\thi .\n@End\n",
        "cha",
        "ok",
        r"a long run of spaces: `\s+([.?!,;])` backtracked quadratically",
    )
    case(
        "cha_brackets.cha",
        "@Begin\n*THE:\thello " + "[" * 30000 + " x\n*CLI:\thi .\n@End\n",
        "cha",
        "ok",
        r"a long run of '[' with no ']': `\[[^\]]*\]` scanned to the end from each",
    )
    case(
        "cha_not_tier.cha",
        f"@Begin\nTherapist said {CANARY} to the client\n@End\n",
        "cha",
        "error",
        "the message quoted 40 characters of the line",
        match="not a CHAT tier",
    )

    # ---- text / otter / subtitles: regex backtracking ----
    case(
        "label_spaces.txt",
        "A" + " " * 30000 + "x\nT: hi\nC: hello\n",
        "text",
        "ok",
        "speaker-label regex: two adjacent \\s* around an optional group, quadratic on spaces",
    )
    case(
        "label_tabs.txt",
        "1" + "\t" * 30000 + "x\nT: hi\nC: hello\n",
        "text",
        "ok",
        "speaker-label regex on a long run of tabs after a digit",
    )
    case(
        "role_parens.csv",
        "speaker,text\n" + "(" * 30000 + ",hello\nT,hi\n",
        "csv",
        "ok",
        r"role_from_label: `\([^)]*\)` scanned to the end from each '('",
    )
    case(
        "role_digits.csv",
        "speaker,text\na" + " " * 30000 + "1x,hello\nT,hi\n",
        "csv",
        "ok",
        r"role_from_label: `[\s_.#:-]*\d+$` quadratic on spaces",
    )
    case(
        "otter_colons.txt",
        "Sam  0:01\nHello.\n\nSam  1" + ":" * 30000 + "!\nHi.\n",
        "otter",
        "ok",
        "Otter bad-header regex: `[\\w:.]*:[\\w:.]*` splits a run of colons n ways",
    )
    case(
        "tags_lt.vtt",
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nT: " + "<" * 30000 + "\n\n00:00:02.000 --> 00:00:03.000\nC: hi\n",
        "vtt",
        "ok",
        r"tag stripping `<[^>]*>` on a run of '<'",
    )
    case(
        "voice_spaces.vtt",
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v" + " " * 30000 + "x\n\n00:00:02.000 --> 00:00:03.000\n<v C>hi\n",
        "vtt",
        "ok",
        r"voice-tag regex `\s+([^>]+)>`: spaces matched by both parts",
    )
    case(
        "srt_no_timing.srt",
        f"the client said {CANARY} and left\n",
        "srt",
        "error",
        "the message quoted 40 characters of the line",
        match="timing line",
    )
    case(
        "srt_bad_timing.srt",
        f"1\n00:00:01,000 --> {CANARY} said\nT: hi\n",
        "srt",
        "error",
        "the message quoted the whole timing line",
        match="cue timing",
    )
    case(
        "vtt_bad_timing.vtt",
        f"WEBVTT\n\n00:00:01.000 --> {CANARY} said\nT: hi\n",
        "vtt",
        "error",
        "the message quoted the whole line",
        match="cue timing",
    )

    # ---- CSV ----
    case(
        "sniffer.csv",
        "speaker,text\n" + '",' * 50000 + "\n",
        "csv",
        "ok",
        "csv.Sniffer on an unbounded sample (quadratic quote regexes): 57 s for 100 KB",
    )
    case(
        "csv_no_header.csv",
        f"T,Hello there how are you {CANARY} today?\nC,Fine.\n",
        "csv",
        "error",
        "the message listed the columns, i.e. the first row of speech",
        match="no text column",
    )

    # ---- RTTM ----
    case(
        "rttm_text.rttm",
        f"Therapist: {CANARY} here\n",
        "rttm",
        "error",
        "the message quoted 50 characters",
        match="not an RTTM line",
    )
    long_seg = "SPEAKER s 1 0.0 100000.0 <NA> <NA> A <NA> <NA>\n"
    segs = "".join(f"SPEAKER s 1 {i}.0 0.5 <NA> <NA> B <NA> <NA>\n" for i in range(1, 2501))
    words = [{"word": "w", "start": i + 0.1, "end": i + 0.3} for i in range(1, 2501)]
    case(
        "long_segment.rttm",
        long_seg + segs,
        "rttm",
        "ok",
        "word-to-segment assignment scanned every segment once one segment was long (quadratic)",
        companions={"long_segment_words.json": json.dumps(words)},
    )
    gaps = "".join(f"SPEAKER s 1 {2 * i}.0 0.5 <NA> <NA> {'AB'[i % 2]} <NA> <NA>\n" for i in range(2500))
    gap_words = [{"word": "w", "start": 2 * i + 1.0, "end": 2 * i + 1.2} for i in range(2500)]
    case(
        "gap_words.rttm",
        gaps,
        "rttm",
        "ok",
        "each word in a gap scanned every segment for the nearest one",
        companions={"gap_words_words.json": json.dumps(gap_words)},
    )

    # ---- docx ----
    case(
        "gridspan_text.docx",
        docx(table([HEAD_ROW, *ROWS[:1], f"<w:tr>{tc('x', SPAN_TEXT)}{tc('T')}{tc('y')}</w:tr>", *ROWS[1:]])),
        "docx",
        "error",
        "a non-numeric gridSpan: ValueError outside the guarded block",
        match="gridSpan",
    )
    case(
        "gridspan_huge.docx",
        docx(table([HEAD_ROW, *ROWS[:1], f"<w:tr>{tc('00:00:09')}{tc('T')}{tc('x', SPAN_HUGE)}</w:tr>", *ROWS[1:]])),
        "docx",
        "error",
        "a gridSpan of 50,000,000: python-docx repeats the cell per column",
        error="LimitError",
        match="max_grid_span",
    )
    case(
        "zip_bomb.docx",
        docx(p("T: hello.") + "<w:p/>" * 7_000_000),
        "docx",
        "error",
        "a zip bomb: 42 MB of document.xml in ~60 KB, inflated and parsed by python-docx (minutes, GBs)",
        error="LimitError",
        match="max_zip_ratio",
    )
    vrows = [f"<w:tr>{tc('', MERGE_START)}{tc('T')}{tc('Start ' + CANARY + '.')}</w:tr>"]
    vrows += [f"<w:tr>{tc('', MERGE_ON)}{tc('TC'[i % 2])}{tc(f'Line {i}.')}</w:tr>" for i in range(3000)]
    case(
        "vmerge_chain.docx",
        docx(table([HEAD_ROW, *vrows])),
        "docx",
        "ok",
        "a 3,000-row vertical merge: python-docx resolves each cell recursively to the top (RecursionError)",
    )
    case(
        "vmerge_first_row.docx",
        docx(table([f"<w:tr>{tc('00:00:00', MERGE_ON)}{tc('T')}{tc('hello.')}</w:tr>", *ROWS])),
        "docx",
        "ok",
        "a continued vertical merge in the first row: ValueError from python-docx",
    )
    case(
        "vmerge_offset.docx",
        docx(
            table(
                [
                    HEAD_ROW,
                    f"<w:tr>{tc('00:00:09')}{tc('T', SPAN_TWO)}</w:tr>",
                    f"<w:tr>{tc('00:00:10')}{tc('C')}{tc('x', MERGE_ON)}</w:tr>",
                    *ROWS,
                ]
            )
        ),
        "docx",
        "ok",
        "a continued vertical merge with no cell above at its grid offset: ValueError",
    )
    case(
        "gridspan_noval.docx",
        docx(table([HEAD_ROW, *ROWS[:1], f"<w:tr>{tc('00:00:09', SPAN_NOVAL)}{tc('T')}{tc('x')}</w:tr>", *ROWS[1:]])),
        "docx",
        "error",
        "a gridSpan without w:val: python-docx's InvalidXmlError outside the guarded block",
        match="docx",
    )

    (HERE / "manifest.json").write_text(json.dumps(CASES, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(CASES)} cases written to {HERE}")


if __name__ == "__main__":
    main()
