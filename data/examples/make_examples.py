"""Write the example transcripts in data/examples/ from the invented dialogues in dialogues.py.

    python data/examples/make_examples.py      # rewrites the files below (deterministic)

session_cbt.txt is written by hand; session.docx / session_table.docx come from make_docx.py.
Times are synthetic: each turn lasts ~0.36 s a word, with pauses between turns.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
import dialogues as D  # noqa: E402  (run as a script: its folder is on the path)


def timed(dialogue, seed, t0=2.0, pause=(0.4, 1.8)):
    """[(key, text, start, end, [(word, start, end)])] with synthetic word times."""
    rng = random.Random(seed)
    t = t0
    out = []
    for key, text in dialogue:
        words = text.split()
        start = t
        ws = []
        for w in words:
            d = 0.18 + 0.045 * len(w) + rng.uniform(0.0, 0.08)
            ws.append((w, round(t, 3), round(t + d, 3)))
            t += d + rng.uniform(0.02, 0.12) + (0.25 if w[-1] in ".?!," else 0.0)
        end = ws[-1][2] if ws else t
        out.append((key, text, round(start, 3), round(end, 3), ws))
        t = end + rng.uniform(*pause) + (2.5 if len(words) <= 4 and key == "C" else 0.0)
    return out


def chunks(ws, size=16):
    """Split a turn's words into caption-sized chunks (as Zoom and Teams do)."""
    return [ws[i : i + size] for i in range(0, len(ws), size)] or [ws]


def vtt_time(s):
    h, rem = divmod(round(s * 1000), 3600_000)
    m, rem = divmod(rem, 60_000)
    return f"{h:02d}:{m:02d}:{rem // 1000:02d}.{rem % 1000:03d}"


def srt_time(s):
    return vtt_time(s).replace(".", ",")


def write(name, text):
    (HERE / name).parent.mkdir(parents=True, exist_ok=True)
    (HERE / name).write_text(text, encoding="utf-8", newline="\n")


def zoom_vtt():
    names = {"T": "Dr. Maya Okafor", "C": "Jordan Reyes"}
    out, n = ["WEBVTT", ""], 0
    for key, _, _, _, ws in timed(D.ZOOM, 1):
        for ch in chunks(ws):
            n += 1
            out += [
                str(n),
                f"{vtt_time(ch[0][1])} --> {vtt_time(ch[-1][2])}",
                f"{names[key]}: " + " ".join(w for w, _, _ in ch),
                "",
            ]
    write("session_zoom.vtt", "\n".join(out))


def teams():
    names = {"T": "Ellen Park", "C": "Sam Whitfield"}
    out = ["WEBVTT", ""]
    srt, n = [], 0
    for i, (key, _, _, _, ws) in enumerate(timed(D.TEAMS, 2)):
        for j, ch in enumerate(chunks(ws, 14)):
            n += 1
            text = " ".join(w for w, _, _ in ch)
            out += [
                f"8f2c41d7-5e0a-4c3b-9d1e-2a7b6c{i:06d}/{j}-0",
                f"{vtt_time(ch[0][1])} --> {vtt_time(ch[-1][2])}",
                f"<v {names[key]}>{text}</v>",
                "",
            ]
            srt += [str(n), f"{srt_time(ch[0][1])} --> {srt_time(ch[-1][2])}", f"{names[key]}: {text}", ""]
    write("session_teams.vtt", "\n".join(out))
    write("session_teams.srt", "\n".join(srt))


def csv_export():
    names = {"T": "Dr. Hughes", "C": "Alex"}
    roles = {"T": "therapist", "C": "client"}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["utterance_id", "speaker", "role", "start", "end", "utterance_text"])
    for i, (key, text, s, e, _) in enumerate(timed(D.CSV, 3), start=1):
        if i == 16:  # one utterance exported with a line break inside the quoted cell
            text = text.replace(". ", ".\n", 1)
        w.writerow([f"u{i:03d}", names[key], roles[key], vtt_time(s), vtt_time(e), text])
    write("session_export.csv", buf.getvalue())


def whisperx():
    spk = {"T": "SPEAKER_00", "C": "SPEAKER_01"}
    rng = random.Random(4)
    segs = []
    for i, (key, text, s, e, ws) in enumerate(timed(D.WHISPERX, 4)):
        words = [
            {"word": w, "start": a, "end": b, "score": round(rng.uniform(0.62, 0.99), 3), "speaker": spk[key]}
            for w, a, b in ws
        ]
        if i == 9:  # a stray word attributed to the other speaker (diariser noise)
            words[0]["speaker"] = spk["T"]
        seg = {"start": s, "end": e, "text": " " + text, "words": words, "speaker": spk[key]}
        if i == 5:  # WhisperX leaves out "speaker" when no diarization turn overlaps: majority of words
            del seg["speaker"]
        segs.append(seg)
    # one segment per line keeps the file small and readable (word_segments left out: it repeats the words)
    body = ",\n  ".join(json.dumps(g, separators=(",", ":")) for g in segs)
    write("session_whisperx.json", '{"language": "en", "segments": [\n  ' + body + "\n]}\n")


def rttm():
    rng = random.Random(5)
    spk = {"T": "SPEAKER_00", "C": "SPEAKER_01"}
    lines, words = [], []
    for i, (key, _text, s, e, ws) in enumerate(timed(D.RTTM, 5)):
        words += [{"word": w, "start": a, "end": b, "score": round(rng.uniform(0.7, 0.99), 3)} for w, a, b in ws]
        on, off = s - rng.uniform(0.05, 0.3), e + rng.uniform(0.05, 0.3)
        if i == 10 and len(ws) > 8:  # a long turn the diariser split in two, with a gap in between
            mid = ws[len(ws) // 2]
            lines.append((on, mid[1] - 0.2 - on, spk[key]))
            lines.append((mid[2] + 0.2, off - mid[2] - 0.2, spk[key]))
            continue
        if i == 14:  # diariser boundary late: this turn's segment runs into the next turn
            off += 0.6
        lines.append((on, off - on, spk[key]))
    rt = [f"SPEAKER session 1 {on:.3f} {dur:.3f} <NA> <NA> {who} <NA> <NA>" for on, dur, who in lines]
    write("session.rttm", "\n".join(rt) + "\n")
    write("session_words.json", "[\n" + ",\n".join(json.dumps(w) for w in words) + "\n]\n")


def otter():
    names = {"T": "Dr. Ana Silva", "C": "Chris Moran"}
    out = []
    for key, text, s, _, _ in timed(D.OTTER, 6, t0=3.0):
        m, sec = divmod(int(s), 60)
        out += [f"{names[key]}  {m}:{sec:02d}", text, ""]
    out.append("Transcribed by https://otter.ai")
    write("session_otter.txt", "\n".join(out) + "\n")


def chat():
    code = {"T": "THE", "C": "CLI"}
    out = [
        "@UTF8",
        "@Begin",
        "@Languages:\teng",
        "@Participants:\tTHE Dana_Kim Therapist, CLI Robin Client",
        "@ID:\teng|alliance_examples|THE|||||Therapist|||",
        "@ID:\teng|alliance_examples|CLI|||||Client|||",
        "@Media:\tsession, audio",
        "@Comment:\tinvented example session for alliance-nlp, not from any corpus",
    ]
    for i, (key, text, s, e, _) in enumerate(timed(D.CHAT, 7)):
        body = text
        if i == 14:  # a long main tier wrapped onto a continuation line
            cut = body.index(" and we")
            body = body[:cut] + "\n\t" + body[cut + 1 :]
        out.append(f"*{code[key]}:\t{body} \x15{round(s * 1000)}_{round(e * 1000)}\x15")
        if i == 21:
            out.append("%com:\tclient laughs, visibly relieved")
    out.append("@End")
    write("session.cha", "\n".join(out) + "\n")


def convokit():
    ids = {"T": "counsellor_07", "C": "client_2143"}
    roles = {"T": "counsellor", "C": "client"}
    epoch = 1739372400  # 2025-02-12 15:00 UTC
    out, prev = [], None
    for i, (key, text, s, _, _) in enumerate(timed(D.CONVOKIT, 8)):
        uid = f"cs14_u{i:03d}"
        out.append(
            json.dumps(
                {
                    "id": uid,
                    "conversation_id": "cs14",
                    "speaker": ids[key],
                    "text": text,
                    "reply_to": prev,
                    "timestamp": round(epoch + s, 2),
                    "meta": {"role": roles[key], "turn_index": i},
                    "vectors": [],
                }
            )
        )
        prev = uid
    write("session_convokit/utterances.jsonl", "\n".join(out) + "\n")
    # (a full ConvoKit corpus also has speakers.json / conversations.json; left out here so that
    # `alliance-nlp analyze data/examples/` does not take them for transcripts)


def unlabelled():
    write("session_unlabelled.txt", "\n\n".join(t for _, t in D.UNLABELLED) + "\n")


if __name__ == "__main__":
    for fn in (zoom_vtt, teams, csv_export, whisperx, rttm, otter, chat, convokit, unlabelled):
        fn()
    for p in sorted(HERE.rglob("*")):
        if p.is_file() and not p.name.endswith(".py") and "__pycache__" not in p.parts:
            print(f"{p.relative_to(HERE)}  {p.stat().st_size} bytes")
