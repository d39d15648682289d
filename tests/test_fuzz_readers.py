"""Reader hardening: fuzzing on a fixed budget, regressions of past findings, linear time, limits.

Every reader must, on any input, return a Session or raise an AllianceError (a one-line message naming the
file and line/field that never quotes transcript text), in time and memory linear in the input. The longer
fuzz run is `python -m evaluation.fuzz_readers --minutes N`; findings go to tests/fuzz_regressions/.
"""

from __future__ import annotations

import bisect
import json
import random
import re
import signal
import sys
import tempfile
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # evaluation/ holds the generators shared with the long fuzz run
    sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from alliance_nlp import errors  # noqa: E402
from alliance_nlp.errors import AllianceError, InputError, LimitError  # noqa: E402
from alliance_nlp.ingest import (  # noqa: E402
    READERS,
    _common,  # noqa: E402
    read,
    reader_options,
)
from alliance_nlp.ingest.base import read_bytes  # noqa: E402
from alliance_nlp.ingest.chat import clean_chat  # noqa: E402
from alliance_nlp.ingest.rttm import Segment, assign  # noqa: E402
from alliance_nlp.session import Session, Word  # noqa: E402
from evaluation.fuzz_readers import (  # noqa: E402
    CANARY,
    EXAMPLE_FILES,
    GENERATORS,
    gen_mutant,
    input_stats,
    judge,  # noqa: E402
    read_once,
    write_files,
)

REG = ROOT / "tests" / "fuzz_regressions"
EX = ROOT / "data" / "examples"
CASES = json.loads((REG / "manifest.json").read_text())


@contextmanager
def watchdog(seconds: int = 60):
    """Fail a read that hangs instead of hanging the suite (a generous bound, not a speed requirement)."""

    def boom(*_):
        raise TimeoutError(f"read did not finish in {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def assert_clean_message(exc: AllianceError, files: list[Path]) -> None:
    """One line, naming the file at fault (the input or a companion such as a words file), no transcript text."""
    msg = str(exc)
    assert "\n" not in msg and "\r" not in msg, msg
    assert CANARY not in msg.lower(), f"message quotes transcript text: {msg}"
    assert any(msg.startswith(str(f)) for f in files), msg
    assert len(msg.split(": ", 1)[1]) <= 400, msg


# ---- regressions: every past finding, read again ---------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c["file"] for c in CASES])
def test_regression(case):
    path = REG / case["file"]
    with watchdog():
        if case["expect"] == "ok":
            s = read(path, format=case["format"]) if case["format"] else read(path)
            assert s.turns
            return
        with pytest.raises(AllianceError) as ei:
            read(path, format=case["format"]) if case["format"] else read(path)
    assert isinstance(ei.value, getattr(errors, case["error"])), f"{type(ei.value).__name__}: {ei.value}"
    assert re.search(case["match"], str(ei.value)), str(ei.value)
    assert_clean_message(ei.value, [path] + [REG / c for c in case.get("companions", [])])


def test_regressions_cover_every_file():
    listed = {c["file"] for c in CASES} | {f for c in CASES for f in c.get("companions", [])}
    present = {p.name for p in REG.iterdir() if p.is_file()} - {"manifest.json", "make_regressions.py", "README.md"}
    assert present == listed


def test_lone_surrogates_become_replacement_characters(tmp_path):
    s = read(REG / "lone_surrogate.json")
    assert s.turns[0].text == "caf\ufffd hello"
    s.save(tmp_path / "s.json")  # would raise UnicodeEncodeError with the surrogate kept


# ---- fuzzing on a fixed budget ------------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=15,
    deadline=5000,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz_one(files: dict[str, bytes], fmt: str, detect: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = write_files(files, Path(d))
        size, lines, base, values = input_stats(files)
        out = read_once(path, None if detect else fmt, trace=False)
        found = judge(out, size, lines, base=base, values=values)
        assert not found, f"{fmt}{' (detect)' if detect else ''}: {found}; {out.message}"


@pytest.mark.parametrize("fmt", sorted(GENERATORS))
@FUZZ
@given(r=st.randoms(use_true_random=False), detect=st.booleans())
def test_fuzz_generated(fmt, r, detect):
    fuzz_one(GENERATORS[fmt](r, False), fmt, detect)


@pytest.mark.parametrize("fmt", sorted(EXAMPLE_FILES))
@FUZZ
@given(r=st.randoms(use_true_random=False), detect=st.booleans())
def test_fuzz_mutated_examples(fmt, r, detect):
    fuzz_one(gen_mutant(r, fmt), fmt, detect)


# ---- linear time -----------------------------------------------------------------------------------------------
# Python-level work is counted exactly (lines executed, with sys.settrace): 4x the input must take under 5x
# the steps. Work in C that the count cannot see (copying a record's growing text on every continuation line)
# is timed: 8x the input must take under 16x the time (linear gives ~8; the old quadratic readers gave 25+).


def _text_lines(n: int) -> str:  # roles on every line: Session.ensure_speakers per record made this quadratic
    return "".join(
        f"[{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}] {'T' if i % 2 else 'Client'}: hello there {i}.\n"
        for i in range(n)
    )


def _docx_rows(n: int) -> bytes:
    sys.path.insert(0, str(REG))
    from make_regressions import MERGE_ON, docx, table, tc  # noqa: E402 - the regression files' docx writer

    rows = [f"<w:tr>{tc('00:00:01')}{tc('T')}{tc('Start.')}</w:tr>"]
    rows += [f"<w:tr>{tc('', MERGE_ON)}{tc('TC'[i % 2])}{tc(f'Line {i}.')}</w:tr>" for i in range(n)]
    return docx(table(rows))


def _rttm(n: int) -> dict[str, str]:  # a long segment; words in gaps and inside segments
    words = [
        {"word": "w", "start": 2 * i + (0.1 if i % 2 else 1.0), "end": 2 * i + (0.3 if i % 2 else 1.2)}
        for i in range(n)
    ]
    return {
        "s.rttm": "SPEAKER s 1 0 1000000 <NA> <NA> A <NA> <NA>\n"
        + "".join(f"SPEAKER s 1 {2 * i}.0 0.5 <NA> <NA> B <NA> <NA>\n" for i in range(n)),
        "s_words.json": json.dumps(words),
    }


STEPS: dict[str, tuple[str, object]] = {  # name -> (format, n -> text, bytes or {file: text})
    "text": ("text", _text_lines),
    "text-unlabelled": ("text", lambda n: "".join(f"a line of speech {i}\n" for i in range(n))),
    "otter": ("otter", lambda n: "".join(f"Sam  {i // 60}:{i % 60:02d}\nwords {i}\n\n" for i in range(n))),
    "csv": ("csv", lambda n: "speaker,text,start\n" + "".join(f"T,hello {i},{i}\n" for i in range(n))),
    "srt": ("srt", lambda n: "".join(f"{i + 1}\n00:00:01,000 --> 00:00:02,000\nT: hi {i}\n\n" for i in range(n))),
    "vtt": (
        "vtt",
        lambda n: "WEBVTT\n\n" + "".join(f"00:00:01.000 --> 00:00:02.000\n<v T>hi {i}\n\n" for i in range(n)),
    ),
    "cha": (
        "cha",
        lambda n: (
            "@Begin\n@Participants:\tTHE Therapist, CLI Client\n"
            + "".join(f"*{'THE' if i % 2 else 'CLI'}:\thello [/] &-um {i} . \x15{i}_{i + 1}\x15\n" for i in range(n))
        ),
    ),
    "convokit": (
        "convokit",
        lambda n: "".join(
            json.dumps({"speaker": "T", "text": f"hi {i}", "conversation_id": "c", "meta": {"role": "therapist"}})
            + "\n"
            for i in range(n)
        ),
    ),
    "json": ("json", lambda n: json.dumps([{"speaker": "T", "text": f"hi {i}", "role": "client"} for i in range(n)])),
    "whisperx": (
        "whisperx",
        lambda n: json.dumps(
            {
                "segments": [
                    {
                        "start": i,
                        "end": i + 1,
                        "text": f"hi {i}",
                        "words": [{"word": "hi", "start": i, "end": i + 0.5, "speaker": "SPEAKER_00"}],
                    }
                    for i in range(n)
                ]
            }
        ),
    ),
    "rttm": ("rttm", _rttm),
    "docx": ("docx", _docx_rows),
}


def _write(folder: Path, fmt: str, content) -> Path:
    ext = {"text": ".txt", "otter": ".txt", "convokit": ".jsonl", "whisperx": ".json"}.get(fmt, "." + fmt)
    files = content if isinstance(content, dict) else {f"s{ext}": content}
    for name, data in files.items():
        (folder / name).write_bytes(data if isinstance(data, bytes) else data.encode())
    return folder / next(iter(files))


def _steps(path: Path, fmt: str) -> int:
    """Lines of Python executed reading the file (after one read to fill caches)."""
    read(path, format=fmt)
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    before = sys.gettrace()
    sys.settrace(lambda frame, event, arg: local)
    try:
        read(path, format=fmt)
    finally:
        sys.settrace(before)
    return count


@pytest.mark.parametrize("name", sorted(STEPS))
def test_reading_is_linear_in_steps(tmp_path, name):
    fmt, make = STEPS[name]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    small = _steps(_write(tmp_path / "a", fmt, make(150)), fmt)
    big = _steps(_write(tmp_path / "b", fmt, make(600)), fmt)
    assert big / small < 5, f"{name}: 4x the input took {big / small:.1f}x the steps ({small} -> {big})"


_LINE = "word " * 20
CONTINUED = {  # one record that grows line by line
    "text": ("text", lambda n: "T: start\nC: hi\n" + f"{_LINE}\n" * n),
    "text-paragraph": ("text", lambda n: "intro\n\n" + f"{_LINE}\n" * n),
    "otter": ("otter", lambda n: "Sam  0:01\n" + f"{_LINE}\n" * n),
    "cha": ("cha", lambda n: "@Begin\n*THE:\thello\n" + f"\t{_LINE}\n" * n + "@End\n"),
    "srt": ("srt", lambda n: "1\n00:00:01,000 --> 00:00:02,000\nT: hi\n" + f"{_LINE}\n" * n),
    "vtt": ("vtt", lambda n: "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nT: hi\n" + f"{_LINE}\n" * n),
    "whisperx": (
        "whisperx",
        lambda n: json.dumps(
            {"word_segments": [{"word": _LINE + str(i), "start": i, "end": i + 0.5} for i in range(n)]}
        ),
    ),
}


def _best_time(path: Path, fmt: str, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        read(path, format=fmt)
        best = min(best, time.perf_counter() - t)
    return best


@pytest.mark.parametrize("name", sorted(CONTINUED))
def test_long_records_are_linear_in_time(tmp_path, name):
    fmt, make = CONTINUED[name]
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    small, big = _write(tmp_path / "a", fmt, make(2500)), _write(tmp_path / "b", fmt, make(20000))
    _best_time(small, fmt, 1)  # warm up (imports, regex caches)
    ratio = _best_time(big, fmt) / _best_time(small, fmt, 3)
    assert ratio < 16, f"{name}: 8x the input took {ratio:.1f}x the time"


# ---- memory -------------------------------------------------------------------------------------------------------


def _peak(path: Path, fmt: str, **options) -> int:
    tracemalloc.start()
    try:
        read(path, format=fmt, **options)
    except AllianceError:
        pass
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def test_small_file_small_memory(tmp_path):
    p = tmp_path / "s.txt"
    p.write_text("T: hello\nC: hi\n")
    read(p)
    assert _peak(p, "text") < 2**20  # reading once allocated a max_bytes (64 MiB) buffer


@pytest.mark.parametrize(
    "name,body,fmt",
    [
        ("wide.csv", "speaker," + "é" * 300000 + "\nT,hi\n", "csv"),  # lower() of the first line; StringIO copy
        ("deep.json", "[" * 300000, "json"),
        ("quotes.json", '["' + '\\"' * 150000, "json"),
        ("transcript.txt", _text_lines(1500), "text"),
    ],
)
def test_memory_within_ten_times_the_input(tmp_path, name, body, fmt):
    p = tmp_path / name
    p.write_text(body)
    read_bytes(p)
    _peak(p, fmt)  # warm up
    files = {name: p.read_bytes()}
    size, lines, base, values = input_stats(files)
    turns = len(read(p, format=fmt).turns) if fmt == "text" else 0
    allowed = 10 * base + 1024 * (lines + turns) + 2**20
    assert _peak(p, fmt) < allowed


# ---- limits -------------------------------------------------------------------------------------------------------


def test_every_reader_documents_its_limits():
    for name, spec in READERS.items():
        opts = reader_options(name)
        assert "max_bytes" in opts, name
        for opt in opts:
            if opt.startswith("max_"):
                assert opt in (spec.read.__doc__ or ""), f"{name}: {opt} not in the docstring"


@pytest.mark.parametrize(
    "fmt,example,option,value,match",
    [
        ("text", "session_cbt.txt", "max_bytes", 1000, "max_bytes=1000"),
        ("text", "session_cbt.txt", "max_records", 10, "max_records=10"),
        ("text", "session_cbt.txt", "max_line_chars", 40, "max_line_chars=40"),
        ("csv", "session_export.csv", "max_records", 3, "max_records=3"),
        ("whisperx", "session_whisperx.json", "max_depth", 3, "max_depth=3"),
        ("whisperx", "session_whisperx.json", "max_records", 5, "max_records=5"),
        ("convokit", "session_convokit/utterances.jsonl", "max_depth", 1, "max_depth=1"),
        ("vtt", "session_zoom.vtt", "max_records", 2, "max_records=2"),
        ("srt", "session_teams.srt", "max_records", 2, "max_records=2"),
        ("cha", "session.cha", "max_records", 2, "max_records=2"),
        ("otter", "session_otter.txt", "max_records", 2, "max_records=2"),
        ("docx", "session.docx", "max_unzipped_bytes", 10000, "max_unzipped_bytes=10000"),
        ("docx", "session_table.docx", "max_records", 3, "max_records=3"),
        ("rttm", "session.rttm", "max_records", 3, "max_records=3"),
    ],
)
def test_limits_raise_and_can_be_raised(fmt, example, option, value, match):
    p = EX / example
    with pytest.raises(LimitError, match=re.escape(match)) as ei:
        read(p, format=fmt, **{option: value})
    assert f"pass a larger {option}=" in str(ei.value)
    assert read(p, format=fmt, **{option: None}).turns  # None switches a limit off


def test_zip_ratio_limit(tmp_path):
    sys.path.insert(0, str(REG))
    from make_regressions import docx, p  # noqa: E402 - the regression files' own docx writer

    doc = tmp_path / "long.docx"
    doc.write_bytes(docx("".join(p(f"{'TC'[i % 2]}: words {i} again and again.") for i in range(20000))))
    with pytest.raises(LimitError, match="max_zip_ratio=5"):
        read(doc, max_zip_ratio=5)
    assert len(read(doc).turns) == 20000


def test_gridspan_limit_can_be_raised():
    with pytest.raises(LimitError, match="max_grid_span=64"):
        read(REG / "gridspan_huge.docx")


def test_devices_are_read_only_up_to_max_bytes():
    with pytest.raises(LimitError, match="max_bytes=100000"):
        read_bytes("/dev/zero", 100000)


def test_limits_given_as_text_as_the_cli_passes_them():
    with pytest.raises(LimitError, match=r"max_bytes=1000\)"):
        read(EX / "session_cbt.txt", max_bytes="1000")
    assert read(EX / "session_cbt.txt", max_bytes="none", max_records="1e6").turns
    with pytest.raises(InputError, match="takes a number"):
        read(EX / "session_cbt.txt", max_bytes="lots")


def test_boolean_options_given_as_text(tmp_path):
    p = tmp_path / "s.txt"
    p.write_text("Sam: hello.\nAlex: hi.\nSam: how are you?\nAlex: fine.\n")
    assert read(p, labelled="false").unlabelled  # "false" is truthy as text: it used to mean labelled
    assert not read(p, labelled="true").unlabelled
    with pytest.raises(InputError, match="takes true, false or none"):
        read(p, labelled="maybe")


def test_unknown_options_still_rejected(tmp_path):
    with pytest.raises(InputError, match="takes no option 'max_depth'"):
        read(EX / "session_cbt.txt", max_depth=5)


# ---- rewritten internals give what the originals gave (differential) ----------------------------------------------

_TIMELIKE = r"\d[\w.,]*:[\w:.,]*\w"
_ORIG_LABEL_RE = re.compile(
    r"^(?P<label>[^\W_][^:\[\]()\n]{0,40}?(?:\s*\((?!\s*\d)[^)\n]{1,30}\))?)"
    r"\s*(?:[\[(]\s*(?P<ts>" + _TIMELIKE + r")\s*[\])])?\s*[:：](?=\s|$)\s*(?P<text>.*)$",
    re.S,
)


def _orig_role(label):
    if not label:
        return None
    s = re.sub(r"\([^)]*\)", " ", str(label)).strip().lower()
    s = re.sub(r"[\s_.#:-]*\d+$", "", s).strip(" .:-_")
    return "therapist" if s in _common.THERAPIST_WORDS else "client" if s in _common.CLIENT_WORDS else None


_ORIG_CLEAN = [
    (re.compile(r"\[[^\]]*\]"), " "),
    (re.compile(r"&=\S+"), " "),
    (re.compile(r"&[-+~]?(\S+)"), r"\1"),
    (re.compile(r"\(\d*\.+\d*\)"), " "),
    (re.compile(r"(?<!\S)(?:xxx|yyy|www|xx|yy)(?!\S)"), " "),
    (re.compile(r"(?<!\S)0\S+"), " "),
    (re.compile(r"(?<!\S)\+[^\s\w]*"), " "),
    (re.compile(r"@[a-z:]+"), ""),
    (re.compile(r"[<>‡„↑↓≠∬]"), " "),
    (re.compile(r"\((\w+)\)"), r"\1"),
    (re.compile(r"(\w)_(\w)"), r"\1 \2"),
    (re.compile(r"\s+([.?!,;])"), r"\1"),
]


def _orig_clean_chat(text: str) -> str:
    for rx, rep in _ORIG_CLEAN:
        text = rx.sub(rep, text)
    return " ".join(text.split())


_ALPHABET = list("aAT1 \t\n:：()[]<>_.-#é,&=+@0x?!;") + ["xxx", "&-um", "(.)", "[/]", "+..."]
_ALPHABET += ["Dr", "Client", "Therapist", "(J.)", "[00:01:23]", "(12:05)", "  ", "2"]


@given(st.lists(st.sampled_from(_ALPHABET), max_size=30).map("".join))
@settings(max_examples=600, derandomize=True, database=None)
def test_rewritten_regexes_match_the_originals(s):
    a, b = _ORIG_LABEL_RE.match(s), _common._LABEL_RE.match(s)
    assert (a and a.group("label", "ts", "text")) == (b and b.group("label", "ts", "text"))
    assert _common.role_from_label(s) == _orig_role(s)
    assert _common.drop_parens(s) == re.sub(r"\([^)]*\)", " ", s)
    assert _common.strip_tags(s) == re.sub(r"<[^>]*>", "", s)
    assert clean_chat(s) == _orig_clean_chat(s)


def _assign_reference(words, segs):
    """rttm.assign before it was made O(log n) per word."""
    starts = [g.start for g in segs]
    maxdur = max(g.end - g.start for g in segs)
    out = []
    for w in words:
        if w.start is None:
            out.append(None)
            continue
        ws, we = w.start, w.end if w.end is not None else w.start
        lo, hi = bisect.bisect_left(starts, ws - maxdur), bisect.bisect_right(starts, we)
        best, best_ov = None, -1.0
        for k in range(lo, hi):
            g = segs[k]
            ov = min(we, g.end) - max(ws, g.start)
            if ov > best_ov and (ov > 0 or g.start <= ws <= g.end):
                best, best_ov = k, ov
        if best is None:
            mid = (ws + we) / 2
            best = min(range(len(segs)), key=lambda k: max(segs[k].start - mid, mid - segs[k].end, 0.0))
        out.append(best)
    return out


def test_assign_matches_the_reference():
    rng = random.Random(3)
    for _ in range(3000):
        scale = rng.choice([1, 2, 10])
        segs = []
        for k in range(rng.randint(1, 10)):
            s = rng.randint(0, 20 * scale) / scale if rng.random() < 0.7 else rng.uniform(0, 20)
            dur = rng.choice([0, rng.randint(0, 6 * scale) / scale, rng.uniform(0, 8), 30])
            segs.append(Segment(s, s + dur, "A", k))
        segs.sort(key=lambda g: (g.start, g.end))
        words = []
        for _ in range(rng.randint(1, 8)):
            ws = rng.randint(-2, 25 * scale) / scale if rng.random() < 0.7 else rng.uniform(-1, 25)
            k = rng.random()
            we = (
                None
                if k < 0.1
                else ws - rng.choice([0.25, 0.5, 1, 2])
                if k < 0.2
                else ws + rng.randint(0, 5 * scale) / scale
            )
            words.append(Word("w", None, None) if rng.random() < 0.05 else Word("w", ws, we))
        assert assign(words, segs) == _assign_reference(words, segs)


def test_vtt_named_once_keeps_its_continuation(tmp_path):
    """A 'Name:' seen once is taken for text; the cue's next line used to be dropped with it."""
    p = tmp_path / "s.vtt"
    p.write_text(
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nT: one\n\n00:00:02.000 --> 00:00:03.000\nT: two\n\n"
        "00:00:03.000 --> 00:00:04.000\nLook: I mean\nit is hard\n"
    )
    s = read(p)
    assert s.turns[-1].text == "Look: I mean it is hard"


def test_detection_survives_a_character_cut_at_the_sniffed_head(tmp_path):
    """With a UTF-8 BOM, a multi-byte character cut at the 64 KiB head made sniffing see nothing."""
    prefix = '{"segments": [{"start": 0, "end": 1, "speaker": "A", "text": "'
    pad = (65536 - 3 - len(prefix)) // 2 + 1  # 'é' is 2 bytes: the head ends inside one
    assert (3 + len(prefix) + 2 * pad - 65536) % 2 == 1
    p = tmp_path / "s.json"
    p.write_bytes(b"\xef\xbb\xbf" + (prefix + "é" * pad + '"}]}').encode())
    assert read(p).source_format == "whisperx"


def test_session_json_still_round_trips(tmp_path):
    s = read(EX / "session.cha")
    s.save(tmp_path / "s.json")
    assert Session.load(tmp_path / "s.json").to_dict() == read(tmp_path / "s.json").to_dict()
