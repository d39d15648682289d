"""Evaluate de-identification (`alliance_nlp.redact`) on our own invented transcripts, through the product.

    python -m evaluation.eval_redaction [--corpus-sample 40] [--no-agreement] [--corpus-dir DIR]

1. Recall and precision per identifier type on data/redaction_eval/ (gold spans marked inline, see its
   README). Each transcript is stripped of its markup, read with `alliance_nlp.ingest.read` as a user's
   file would be, and redacted with `Redactor().session_spans` (what `redact_session` replaces). A gold
   span counts as caught when every letter and digit of it lies inside redacted spans of any type
   (recall); "typed" recall also needs the type to match. A redacted span is correct when it overlaps a
   gold span (precision); "typed" precision needs the same type. Speaker labels that are names are
   counted apart.
2. Survival: every evaluation transcript is analysed (diarize, segment, classify, aggregate), redacted,
   and written by `outputs.write_outputs` plus every exporter (eaf, qdpx, parquet, txt), in both modes
   (classify the original then redact; redact then classify). No gold surface, and no word of a gold
   name, may occur in any file written (zip and parquet contents included; matched as whole words, case
   as written, since outputs copy text verbatim and the report's own code says "may").
3. Marker agreement, original vs redacted input to the classifier: thresholded markers per record and
   mean |delta p| on the evaluation transcripts, the example sessions and a sample of corpus sessions
   (../shared/data; only counts are written, never their text).

Writes evaluation/results/redaction.json and redaction.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import os
import random
import re
import sys
import tempfile
import time
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402

from alliance_nlp.files import write_json_atomic  # noqa: E402
from alliance_nlp.ingest import read  # noqa: E402
from alliance_nlp.labels import LABELS  # noqa: E402
from alliance_nlp.redact import TYPES, Redactor, Span  # noqa: E402
from alliance_nlp.session import Session  # noqa: E402

EVAL_DIR = ROOT / "data" / "redaction_eval"
RESULTS = ROOT / "evaluation" / "results"
MARK_RE = re.compile(r"\{([A-Z]+):([^}]*)\}")
TARGETS = {
    "NAME": 0.95,
    "PLACE": 0.95,
    "ORG": 0.95,
    "DATE": 0.99,
    "PHONE": 0.99,
    "EMAIL": 0.99,
    "ID": 0.99,
    "URL": 0.99,
}
PRECISION_TARGET = 0.80


@dataclass
class Gold:
    file: str
    key: str  # "t{turn}" or "meta/header/{i}"
    start: int
    end: int
    type: str
    text: str


@dataclass
class EvalSession:
    name: str
    clean_path: Path
    session: Session
    gold: list[Gold] = field(default_factory=list)
    label_gold: list[str] = field(default_factory=list)  # name words in speaker labels
    surfaces: set[str] = field(default_factory=set)


def strip_markup(line: str) -> tuple[str, list[tuple[int, int, str, str]]]:
    out, spans, pos = [], [], 0
    n = 0
    for m in MARK_RE.finditer(line):
        out.append(line[pos : m.start()])
        n += m.start() - pos
        spans.append((n, n + len(m.group(2)), m.group(1), m.group(2)))
        out.append(m.group(2))
        n += len(m.group(2))
        pos = m.end()
    out.append(line[pos:])
    return "".join(out), spans


def load_eval(folder: Path, tmp: Path) -> list[EvalSession]:
    sessions = []
    for f in sorted(folder.glob("[sb][0-9]*.txt")):
        raw = f.read_text(encoding="utf-8").splitlines()
        clean_lines, line_spans = [], []
        for ln in raw:
            c, sp = strip_markup(ln)
            clean_lines.append(c)
            line_spans.append(sp)
        clean = tmp / f.name
        clean.write_text("\n".join(clean_lines) + "\n", encoding="utf-8")
        s = read(clean)
        es = EvalSession(f.stem, clean, s)
        for sp in line_spans:
            es.surfaces.update(t for _, _, _, t in sp)
        header = list(s.meta.get("header", []))
        for i, h in enumerate(header):
            li = next(j for j, c in enumerate(clean_lines) if c.strip() == h)
            off = clean_lines[li].find(h)
            for a, b, typ, txt in line_spans[li]:
                es.gold.append(Gold(f.stem, f"meta/header/{i}", a - off, b - off, typ, txt))
        for ti, t in enumerate(s.turns):
            li = t.utterances[0].source - 1  # text reader: 1-based line numbers
            line = clean_lines[li]
            off = line.find(t.text)
            if off < 0:
                raise AssertionError(f"{f.name}:{li + 1}: turn text not found in its line")
            label_end = line.find(":")
            for a, b, typ, txt in line_spans[li]:
                if b <= label_end and a < off:
                    es.label_gold.append(txt)
                elif a >= off:
                    es.gold.append(Gold(f.stem, f"t{ti}", a - off, b - off, typ, txt))
        sessions.append(es)
    return sessions


def _alnum_positions(text: str, a: int, b: int) -> set[int]:
    return {i for i in range(a, b) if text[i].isalnum()}


def score(sessions: list[EvalSession], redactor: Redactor) -> dict:
    per = {t: {"gold": 0, "caught": 0, "caught_typed": 0, "pred": 0, "pred_ok": 0, "pred_ok_typed": 0} for t in TYPES}
    misses: list[dict] = []
    false_pos: list[dict] = []
    labels = {"gold": 0, "redacted": 0}
    by_source: dict[str, int] = defaultdict(int)
    for es in sessions:
        spans, speaker_parts = redactor.session_spans(es.session)
        texts = {f"t{i}": t.text for i, t in enumerate(es.session.turns)}
        texts.update({f"meta/header/{i}": h for i, h in enumerate(es.session.meta.get("header", []))})
        gold_by_key: dict[str, list[Gold]] = defaultdict(list)
        for g in es.gold:
            gold_by_key[g.key].append(g)
        for key, text in texts.items():
            pred: list[Span] = spans.get(key, [])
            for p in pred:
                by_source[p.source] += 1
            for g in gold_by_key.get(key, []):
                per[g.type]["gold"] += 1
                need = _alnum_positions(text, g.start, g.end)
                cov = set().union(*[_alnum_positions(text, p.start, p.end) for p in pred]) if pred else set()
                typed = (
                    set().union(*[_alnum_positions(text, p.start, p.end) for p in pred if p.type == g.type])
                    if pred
                    else set()
                )
                if need <= cov:
                    per[g.type]["caught"] += 1
                else:
                    misses.append(
                        {
                            "file": es.name,
                            "type": g.type,
                            "text": g.text,
                            "context": text[max(0, g.start - 40) : g.end + 40],
                        }
                    )
                if need <= typed:
                    per[g.type]["caught_typed"] += 1
            for p in pred:
                per[p.type]["pred"] += 1
                pp = _alnum_positions(text, p.start, p.end)
                hits = [g for g in gold_by_key.get(key, []) if pp & _alnum_positions(text, g.start, g.end)]
                if hits:
                    per[p.type]["pred_ok"] += 1
                    if any(g.type == p.type for g in hits):
                        per[p.type]["pred_ok_typed"] += 1
                else:
                    false_pos.append(
                        {
                            "file": es.name,
                            "type": p.type,
                            "text": p.text,
                            "source": p.source,
                            "context": text[max(0, p.start - 40) : p.end + 40],
                        }
                    )
        label_words = {w for parts in speaker_parts.values() for w in parts}
        for g in es.label_gold:
            for w in re.findall(r"[^\W\d_]+(?:[-'][^\W\d_]+)*", g):
                labels["gold"] += 1
                labels["redacted"] += w in label_words
    rows = {}
    for t, c in per.items():
        rows[t] = {
            "gold_spans": c["gold"],
            "recall": _r(c["caught"], c["gold"]),
            "recall_typed": _r(c["caught_typed"], c["gold"]),
            "predicted": c["pred"],
            "precision": _r(c["pred_ok"], c["pred"]),
            "precision_typed": _r(c["pred_ok_typed"], c["pred"]),
            "recall_target": TARGETS[t],
        }
    tot = {k: sum(c[k] for c in per.values()) for k in ("gold", "caught", "caught_typed", "pred", "pred_ok")}
    rows["ALL"] = {
        "gold_spans": tot["gold"],
        "recall": _r(tot["caught"], tot["gold"]),
        "recall_typed": _r(tot["caught_typed"], tot["gold"]),
        "predicted": tot["pred"],
        "precision": _r(tot["pred_ok"], tot["pred"]),
    }
    return {
        "per_type": rows,
        "speaker_label_name_words": labels,
        "spans_by_source": dict(by_source),
        "misses": misses,
        "false_positives": false_pos,
    }


def _r(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


# ---- survival in every output ---------------------------------------------------------------------------
def _file_texts(folder: Path) -> dict[str, str]:
    out = {}
    for f in sorted(folder.rglob("*")):
        if not f.is_file():
            continue
        data = f.read_bytes()
        if f.suffix in (".qdpx", ".zip"):
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for n in z.namelist():
                    out[f"{f}!{n}"] = z.read(n).decode("utf-8", "replace") + "\n" + n
        elif f.suffix == ".parquet":
            import pyarrow.parquet as pq

            out[str(f)] = pq.read_table(f).to_pandas().to_csv() if _has_pandas() else str(pq.read_table(f).to_pylist())
        else:
            out[str(f)] = data.decode("utf-8", "replace")
        out[str(f) + "#name"] = str(f.relative_to(folder))
    return out


def _has_pandas() -> bool:
    try:
        import pandas  # noqa: F401

        return True
    except ImportError:
        return False


def forbidden_strings(es: EvalSession) -> set[str]:
    """What must not appear in any output: every gold surface of 3+ characters and every word of a name,
    except bare numbers under 5 digits (a phone extension "214"), which recur as counts and scores in
    any output and identify no one on their own; span recall still counts them."""
    out = {s for s in es.surfaces if len(s) >= 3 and not (s.isdigit() and len(s) < 5)}
    for g in es.gold + [Gold(es.name, "", 0, 0, "NAME", x) for x in es.label_gold]:
        if g.type == "NAME":
            out.update(w for w in re.findall(r"[^\W\d_]+(?:[-'][^\W\d_]+)*", g.text) if len(w) >= 3)
    return out


def survival(sessions: list[EvalSession], tmp: Path) -> dict:
    """Run the product as a user does (`alliance-nlp analyze --redact` / `--redact-input`, then
    `alliance-nlp export` of the redacted results to every format) and search every file written for
    every gold identifier."""
    from alliance_nlp.cli import main as cli

    found: list[dict] = []
    files = 0
    inputs = [str(es.clean_path) for es in sessions]
    for mode, flag in (("classify-original", "--redact"), ("classify-redacted", "--redact-input")):
        out = tmp / mode
        if cli(["analyze", *inputs, "-o", str(out / "analysis"), flag, "-q", "--workers", "1"]) != 0:
            raise SystemExit(f"analyze {flag} failed")
        for fmt in ("eaf", "qdpx", "parquet", "txt"):
            if cli(["export", str(out / "analysis"), "--to", fmt, "-o", str(out / "export" / fmt)]) != 0:
                raise SystemExit(f"export --to {fmt} failed")
        texts = _file_texts(out)
        files += sum(1 for k in texts if not k.endswith("#name"))
        forbidden = {s: es.name for es in sessions for s in forbidden_strings(es)}
        for k, txt in texts.items():
            for s, name in forbidden.items():
                if re.search(r"(?<![\w])" + re.escape(s) + r"(?!\w)", txt):
                    found.append({"mode": mode, "session": name, "file": Path(k).name, "surface": s})
    return {"files_checked": files, "surviving": found, "sessions": len(sessions)}


# ---- marker agreement -----------------------------------------------------------------------------------
def _record_markers(s: Session) -> tuple[dict[int, np.ndarray], np.ndarray]:
    th = s.provenance["classify"]["thresholds"]
    thr = np.array([th[lab] for lab in LABELS])
    out: dict[int, np.ndarray] = {}
    for i, u in enumerate(s.utterances):
        key = u.source if u.source is not None else i
        p = np.array([u.probabilities[lab] for lab in LABELS])
        out[key] = np.maximum(out[key], p) if key in out else p
    return out, thr


def agreement(pairs: list[tuple[Session, Session]]) -> dict:
    a_all, b_all = [], []
    for orig, red in pairs:
        pa, thr = _record_markers(orig)
        pb, _ = _record_markers(red)
        for k in pa:
            if k in pb:
                a_all.append(pa[k])
                b_all.append(pb[k])
    if not a_all:
        return {}
    A, B = np.array(a_all), np.array(b_all)
    MA, MB = A >= thr, B >= thr
    per = {}
    for j, lab in enumerate(LABELS):
        x, y = MA[:, j], MB[:, j]
        po = float((x == y).mean())
        pe = float(x.mean() * y.mean() + (1 - x.mean()) * (1 - y.mean()))
        kappa = (po - pe) / (1 - pe) if pe < 1 else 1.0
        per[lab] = {
            "agreement": round(po, 4),
            "kappa": round(kappa, 4),
            "positives_original": int(x.sum()),
            "positives_redacted": int(y.sum()),
            "flips": int((x != y).sum()),
        }
    return {
        "records": len(A),
        "sessions": len(pairs),
        "mean_abs_dp": round(float(np.abs(A - B).mean()), 5),
        "max_abs_dp": round(float(np.abs(A - B).max()), 4),
        "records_any_marker_changed": int((MA != MB).any(axis=1).sum()),
        "per_label": per,
    }


def marker_agreement(sessions: list[EvalSession], corpus_sample: int, corpus_dir: str | None) -> dict:
    from alliance_nlp.cli import main as cli
    from alliance_nlp.manifest import file_sha256
    from alliance_nlp.outputs import load_results
    from alliance_nlp.pipeline import Pipeline

    tag = Pipeline.from_names(["diarize", "segment", "classify"], {})
    tag_redacted = Pipeline.from_names(["redact", "diarize", "segment", "classify"], {})
    out: dict = {}
    own = [es.clean_path for es in sessions]
    examples = [
        p
        for p in sorted((ROOT / "data" / "examples").glob("session_*"))
        if p.suffix in (".txt", ".vtt", ".srt", ".csv", ".docx", ".cha") and "unlabelled" not in p.name
    ]
    with tempfile.TemporaryDirectory() as td:
        for name, group in (("evaluation transcripts", own), ("example sessions", examples)):
            # the product both ways: `analyze` and `analyze --redact-input` (the classifier reads redacted text)
            runs = {}
            for flag in ("", "--redact-input"):
                o = Path(td) / name.replace(" ", "_") / (flag or "plain")
                if cli(["analyze", *map(str, group), "-o", str(o), "-q", "--workers", "1", *([flag] if flag else [])]):
                    raise SystemExit(f"analyze {flag} failed on the {name}")
                runs[flag] = load_results([str(o)])
            plain, red = runs[""], runs["--redact-input"]
            # plain folders are named after the file, redacted ones after its content hash
            pairs = [(plain[Path(f).stem], red[f"session-{file_sha256(Path(f))[:12]}"]) for f in group]
            n_red = sum(sum(r.provenance["redact"]["placeholders"].values()) for _, r in pairs)
            out[name] = {**agreement(pairs), "placeholders": n_red}
    if corpus_sample:
        try:
            from evaluation.product import cached_sessions
            from training.corpora import read_corpus, to_session
        except ImportError as exc:
            out["corpus"] = {"skipped": str(exc)}
            return out
        rng = random.Random(7)
        for corpus in ("annomi", "esconv"):
            try:
                sessions_c = read_corpus(corpus, corpus_dir)
            except FileNotFoundError as exc:
                out[corpus] = {"skipped": str(exc)}
                continue
            keys = sorted(sessions_c)
            pick = {k: sessions_c[k] for k in rng.sample(keys, min(corpus_sample, len(keys)))}
            try:
                originals = cached_sessions(pick, f"{corpus}-dev")
            except Exception:  # noqa: BLE001 - a cache problem: analyse afresh
                originals = {k: tag(to_session(cs)) for k, cs in pick.items()}
            pairs = []
            types: dict[str, int] = defaultdict(int)
            utts_redacted = 0
            n_utts = 0
            for k, cs in pick.items():
                red_in = tag_redacted(to_session(cs))  # the product's redact stage, then the rest
                for t, n in red_in.provenance["redact"]["placeholders"].items():
                    types[t] += n
                for u in red_in.utterances:
                    n_utts += 1
                    utts_redacted += bool(re.search(r"\[[A-Z]+_\d+\]", u.text))
                pairs.append((originals[k], red_in))
            out[corpus] = {
                **agreement(pairs),
                "distinct_placeholders": dict(types),
                "utterances": n_utts,
                "utterances_with_a_placeholder": utts_redacted,
            }
    return out


# ---- report ---------------------------------------------------------------------------------------------
def write_md(res: dict, path: Path) -> None:
    L = [
        "# De-identification (`--redact`): evaluation",
        "",
        f"Generated {res['generated']} by `python -m evaluation.eval_redaction` in {res['seconds']} s. "
        f"Tagger {res['tagger']}. Evaluation set: {res['eval_set']['sessions']} invented transcripts in "
        "data/redaction_eval/ (never used for training; the generator drops every gold surface from its "
        f"fillers, and {res['eval_set']['eval_surfaces_in_training_spans']} gold surfaces occur in training spans).",
        "",
        "## Recall and precision per identifier type",
        "",
        "Recall: a gold span counts as caught when all its letters and digits are inside redacted spans "
        "(any type; *typed*: of its own type). Precision: a redacted span is correct when it overlaps a gold "
        "span (*typed*: one of its own type). Targets: recall >= 0.95 names/places/orgs, >= 0.99 structured, "
        "precision >= 0.80.",
        "",
        "| type | gold spans | recall | target | recall (typed) | redacted spans | precision | precision (typed) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t, r in res["scores"]["per_type"].items():
        L.append(
            f"| {t} | {r['gold_spans']} | {_f(r['recall'])} | {r.get('recall_target', '')} | "
            f"{_f(r['recall_typed'])} | {r['predicted']} | {_f(r['precision'])} | {_f(r.get('precision_typed'))} |"
        )
    for key, title in (
        ("scores_development", "Development part (s01-s12: looked at while building the redactor)"),
        (
            "scores_blind",
            "Blind part (b01-b02: written after development stopped. First score: recall 0.964 overall, NAME 22/23, PHONE 2/3 (a 1-800- layout); that layout was then fixed, so these two are no longer strictly blind)",
        ),
    ):
        L += [
            "",
            f"{title}:",
            "",
            "| type | gold spans | recall | recall (typed) | precision |",
            "|---|---:|---:|---:|---:|",
        ]
        L += [
            f"| {t} | {r['gold_spans']} | {_f(r['recall'])} | {_f(r['recall_typed'])} | {_f(r['precision'])} |"
            for t, r in res[key].items()
        ]
    lab = res["scores"]["speaker_label_name_words"]
    L += [
        "",
        f"Speaker labels that are names: {lab['redacted']}/{lab['gold']} name words redacted.",
        f"Redacted spans by what found them: {res['scores']['spans_by_source']}.",
        "",
        "### Misses",
        "",
    ]
    L += [f"- {m['file']} {m['type']} `{m['text']}` … {m['context']!r}" for m in res["scores"]["misses"]] or ["- none"]
    L += ["", "### False positives", ""]
    L += [f"- {m['file']} {m['type']} ({m['source']}) `{m['text']}`" for m in res["scores"]["false_positives"]] or [
        "- none"
    ]
    sv = res["survival"]
    L += [
        "",
        "## Survival in output files",
        "",
        f"{sv['sessions']} sessions x 2 modes, {sv['files_checked']} files (session.json, utterances.csv, "
        "summary.json, report.html, .eaf, .qdpx contents, .parquet, .txt) searched for every gold surface and "
        f"every word of a gold name: **{len(sv['surviving'])} found**.",
    ]
    L += [f"- {x['mode']} {x['session']} {x['file']}: `{x['surface']}`" for x in sv["surviving"][:50]]
    ag = res.get("agreement") or {}
    if ag:
        L += [
            "",
            "## Marker agreement: classifier on original vs redacted text",
            "",
            "Thresholded markers per input record (a record cut into units takes the max); kappa per label.",
            "",
            "| sessions | records | records with any marker changed | mean abs dp | "
            + " | ".join(f"{lab} agr / kappa" for lab in LABELS)
            + " |",
            "|---|---:|---:|---:|" + "---:|" * len(LABELS),
        ]
        for name, a in ag.items():
            if "per_label" not in a:
                L.append(f"| {name} | skipped: {a.get('skipped', '')} |")
                continue
            L.append(
                f"| {name} ({a['sessions']}) | {a['records']} | {a['records_any_marker_changed']} | "
                f"{a['mean_abs_dp']} | "
                + " | ".join(
                    f"{a['per_label'][lab]['agreement']:.3f} / {a['per_label'][lab]['kappa']:.3f}" for lab in LABELS
                )
                + " |"
            )
        for name, a in ag.items():
            if "utterances" in a:
                L.append(
                    f"\n{name}: {a['utterances_with_a_placeholder']}/{a['utterances']} utterances got a "
                    f"placeholder; distinct placeholders by type {a['distinct_placeholders']}."
                )
    path.write_text("\n".join(L) + "\n", encoding="utf-8")


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Evaluate de-identification on data/redaction_eval.")
    ap.add_argument("--corpus-sample", type=int, default=30, help="corpus sessions per corpus for marker agreement")
    ap.add_argument("--no-agreement", action="store_true")
    ap.add_argument("--no-survival", action="store_true")
    ap.add_argument("--corpus-dir", default=None)
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    t0 = time.time()
    redactor = Redactor()
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        sessions = load_eval(EVAL_DIR, tmp)
        res: dict = {
            "generated": _dt.date.today().isoformat(),
            "tagger": (redactor.tagger.meta.get("version") if redactor.tagger else None),
        }
        training = redactor.tagger.meta.get("training", {}) if redactor.tagger else {}
        res["eval_set"] = {
            "sessions": len(sessions),
            "gold_spans": sum(len(s.gold) for s in sessions),
            "eval_surfaces_in_training_spans": training.get("decontamination", {}).get(
                "eval_surfaces_in_training_spans"
            ),
        }
        res["scores"] = score(sessions, redactor)
        res["scores_development"] = score([s for s in sessions if s.name.startswith("s")], redactor)["per_type"]
        res["scores_blind"] = score([s for s in sessions if s.name.startswith("b")], redactor)["per_type"]
        print(json.dumps(res["scores"]["per_type"], indent=1), file=sys.stderr)
        if not args.no_survival:
            res["survival"] = survival(sessions, tmp)
            print(f"surviving: {len(res['survival']['surviving'])}", file=sys.stderr)
        else:
            res["survival"] = {"files_checked": 0, "surviving": [], "sessions": 0}
        if not args.no_agreement:
            res["agreement"] = marker_agreement(sessions, args.corpus_sample, args.corpus_dir)
    res["seconds"] = round(time.time() - t0, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "redaction.json", res)
    write_md(res, out / "redaction.md")
    print(f"wrote {out / 'redaction.json'} and redaction.md", file=sys.stderr)


import json  # noqa: E402

if __name__ == "__main__":
    main()
