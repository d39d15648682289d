"""Our alliance-marker annotations: coders' files -> released standoff JSON Lines, reliability, statistics.

Coders write one file per session under data/annotations/raw/<coder>/ (a line per utterance id:
`<id> -` or `<id> label,label`). Sessions coded twice (assignments.json "reliability": rounds of double coding) are compared
(Cohen's kappa, positive agreement) and adjudicated into data/annotations/adjudicated/. The release
(data/annotations/alliance_markers.v<version>.jsonl) takes the adjudicated codes where they exist and
the primary coder's elsewhere. Run everything, and refresh the figures in data/codebook.md, with

    python -m training.annotations build
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from alliance_nlp.labels import LABELS
from training.corpora import read_corpus

VERSION = "1.1"  # the release in data/annotations/ (v1.x); v2.x lives in data/annotations/v2/
LATEST = "2.0"
ROOT = Path(__file__).resolve().parents[1] / "data" / "annotations"
RELEASE_NAME = f"alliance_markers.v{VERSION}.jsonl"
# the release the shipped model trains on (its test split is fixed: the published figures' test set)
CURRENT_RELEASE = ROOT / "v2" / f"alliance_markers.v{LATEST}.jsonl"

Codes = dict[int, tuple[str, ...]]  # utterance id -> labels


def session_filename(corpus: str, session: str) -> str:
    return f"{corpus}__{session.replace(':', '-')}.txt"


def parse_session_filename(name: str) -> tuple[str, str]:
    corpus, sess = Path(name).stem.split("__", 1)
    if corpus == "esconv":
        sess = sess.replace("-", ":", 1)
    return corpus, sess


def read_codes(path: Path) -> Codes:
    """Parse one coder file; raise ValueError naming the line on anything malformed."""
    codes: Codes = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"(\d+)\s+(\S+)", line)
        if not m:
            raise ValueError(f"{path}:{n}: expected '<id> -' or '<id> label,label', got {line[:40]!r}")
        uid, labs = int(m.group(1)), m.group(2)
        labels = [] if labs == "-" else labs.split(",")
        unknown = sorted(set(labels) - set(LABELS))
        if unknown:
            raise ValueError(f"{path}:{n}: unknown label(s) {', '.join(unknown)}; valid: {', '.join(LABELS)}")
        if uid in codes:
            raise ValueError(f"{path}:{n}: utterance {uid} coded twice")
        codes[uid] = tuple(sorted(set(labels), key=LABELS.index))
    return codes


def read_coder(coder: str, root: Path = ROOT) -> dict[tuple[str, str], Codes]:
    d = root / "raw" / coder
    return {parse_session_filename(f.name): read_codes(f) for f in sorted(d.glob("*.txt"))} if d.is_dir() else {}


def check_coder(coder: str, root: Path = ROOT, corpus_dir: str | None = None) -> list[str]:
    """Problems in one coder's files: malformed lines, unknown sessions, missing or extra ids."""
    problems, corpora = [], {}
    for f in sorted((root / "raw" / coder).glob("*")):
        try:
            corpus, sess = parse_session_filename(f.name)
            if f.suffix != ".txt" or corpus not in ("annomi", "esconv"):
                raise ValueError(f"{f}: not a '<corpus>__<session>.txt' file")
            codes = read_codes(f)
            if corpus not in corpora:
                corpora[corpus] = read_corpus(corpus, corpus_dir)
            s = corpora[corpus].get(sess)
            if s is None:
                raise ValueError(f"{f}: no {corpus} session {sess!r}")
            missing = sorted(set(range(len(s.utterances))) - set(codes))
            extra = sorted(set(codes) - set(range(len(s.utterances))))
            if missing or extra:
                raise ValueError(
                    f"{f}: missing ids {missing[:10]} extra ids {extra[:10]} ({len(s.utterances)} utterances)"
                )
        except ValueError as exc:
            problems.append(str(exc))
    return problems


def complete(codes: Codes, n_utterances: int) -> bool:
    return set(codes) == set(range(n_utterances))


# ---- agreement --------------------------------------------------------------------------------
def cohen_kappa(a, b) -> float | None:
    """scikit-learn's Cohen's kappa; None where it is undefined (no items, or chance agreement 1)."""
    import warnings

    from sklearn.metrics import cohen_kappa_score

    if len(a) == 0 or len(set(a) | set(b)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        k = float(cohen_kappa_score(list(a), list(b)))
    return None if k != k else k


def agreement(pairs: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> dict:
    """Per-label and pooled Cohen's kappa and positive agreement over paired codes."""
    out: dict = {"n_utterances": len(pairs), "labels": {}}
    pooled_a, pooled_b = [], []
    for lab in LABELS:
        a = [int(lab in x) for x, _ in pairs]
        b = [int(lab in y) for _, y in pairs]
        both = sum(x and y for x, y in zip(a, b))
        pos = sum(a) + sum(b)
        out["labels"][lab] = {
            "kappa": _r(cohen_kappa(a, b)),
            "positive_agreement": _r(2 * both / pos if pos else None),
            "positives_coder1": sum(a),
            "positives_coder2": sum(b),
            "both": both,
        }
        pooled_a += a
        pooled_b += b
    kappas = [v["kappa"] for v in out["labels"].values() if v["kappa"] is not None]
    both = sum(x and y for x, y in zip(pooled_a, pooled_b))
    out["overall"] = {
        "mean_kappa": _r(sum(kappas) / len(kappas) if kappas else None),
        "pooled_kappa": _r(cohen_kappa(pooled_a, pooled_b)),
        "positive_agreement": _r(2 * both / (sum(pooled_a) + sum(pooled_b)) if pooled_a else None),
        "exact_label_set_agreement": _r(sum(x == y for x, y in pairs) / len(pairs) if pairs else None),
    }
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


# ---- build ------------------------------------------------------------------------------------
def reliability_rounds(assignments: dict) -> list[dict]:
    """The double-coding rounds: [{"name", "coders": [c1, c2], "sessions"}]; c1 "primary" means the
    session's primary coder (whoever else coded it). An older single-round dict is one round."""
    rounds = assignments["reliability"]
    return [rounds] if isinstance(rounds, dict) else list(rounds)


def primary_coder(
    key: tuple[str, str], coders: dict[str, dict], second_coders: set[str], usable=lambda codes: True
) -> str | None:
    """The session's primary coder: the first coder (assignment order) with usable codes who is not a
    reliability second coder; else a second coder (sessions only they coded)."""
    done = [c for c in coders if key in coders[c] and usable(coders[c][key])]
    return next((c for c in done if c not in second_coders), done[0] if done else None)


def release_splits(assignments: dict, corpora: dict, keys: list[tuple[str, str]]) -> dict[str, str]:
    """The split of every coded session: the release's fixed test sessions (and any session of a test
    group) are "test"; the rest are dealt to train/validation by group (seeded), as in training."""
    from training.dataset import DEFAULT_SEED, assign_splits

    test = {tuple(s.split(" ", 1)) for s in assignments.get("test_sessions", [])}
    test_groups = {(c, corpora[c][s].group) for c, s in test if s in corpora[c]}
    out: dict[str, str] = {}
    for corpus in ("annomi", "esconv"):
        sizes: dict[str, int] = defaultdict(int)
        for c, s in keys:
            g = corpora[c][s].group
            if c == corpus and (c, g) not in test_groups:
                sizes[g] += len(corpora[c][s].utterances)
        dealt = assign_splits(dict(sizes), DEFAULT_SEED, (0.85, 0.15, 0.0))
        for c, s in keys:
            if c == corpus:
                g = corpora[c][s].group
                out[f"{c} {s}"] = "test" if (c, g) in test_groups else dealt[g]
    return out


def build(root: Path = ROOT, corpus_dir: str | None = None, write: bool = True) -> dict:
    assignments = json.loads((root / "assignments.json").read_text())
    version = assignments.get("release", VERSION)
    release_name = f"alliance_markers.v{version}.jsonl"
    rounds = reliability_rounds(assignments)
    second_coders = {r["coders"][1] for r in rounds}
    corpora = {name: read_corpus(name, corpus_dir) for name in ("annomi", "esconv")}
    coders = {c: read_coder(c, root) for c in assignments["coders"]}

    def n_utts(key):
        return len(corpora[key[0]][key[1]].utterances)

    def primary_of(key) -> str | None:
        return primary_coder(key, coders, second_coders, lambda codes: complete(codes, n_utts(key)))

    problems: list[str] = []
    for c, sessions in coders.items():
        for key, codes in sessions.items():
            if not complete(codes, n_utts(key)):
                problems.append(f"coder {c}: {key[0]} {key[1]} incomplete ({len(codes)}/{n_utts(key)}); skipped")
    # reliability: per round, the sessions both coders completed; then all rounds pooled
    per_round, all_pairs, all_sessions = [], [], 0
    for rnd in rounds:
        first, second = rnd["coders"]
        pairs, done = [], []
        for key in sorted(tuple(s.split(" ", 1)) for s in rnd["sessions"]):
            c1 = primary_of(key) if first == "primary" else first
            a, b = coders.get(c1, {}).get(key) if c1 else None, coders[second].get(key)
            if a and b and c1 != second and complete(a, n_utts(key)) and complete(b, n_utts(key)):
                done.append(key)
                pairs += [(a[i], b[i]) for i in range(n_utts(key))]
        res = agreement(pairs)
        res.update({"name": rnd.get("name", ""), "coders": [first, second], "sessions": len(done)})
        per_round.append(res)
        all_pairs += pairs
        all_sessions += len(done)
    reliability = agreement(all_pairs)
    reliability.update({"sessions": all_sessions, "rounds": per_round})

    adjudicated = {}
    adj_dir = root / "adjudicated"
    for f in sorted(adj_dir.glob("*.txt")) if adj_dir.is_dir() else []:
        key = parse_session_filename(f.name)
        codes = read_codes(f)
        if complete(codes, n_utts(key)):
            adjudicated[key] = codes
        else:
            problems.append(f"adjudicated {key}: incomplete; skipped")

    records = []
    for key in sorted({k for cs in coders.values() for k in cs}, key=lambda k: (k[0], _order(k[1]))):
        if key in adjudicated:
            codes, coder = adjudicated[key], "adjudicated"
        else:
            primary = primary_of(key)
            if primary is None:
                continue
            codes, coder = coders[primary][key], primary
        sess = corpora[key[0]][key[1]]
        for u in sess.utterances:
            records.append(
                {
                    "corpus": key[0],
                    "session": key[1],
                    "utterance": u.utterance,
                    "speaker": u.speaker,
                    "labels": list(codes[u.utterance]),
                    "coder": coder,
                }
            )

    stats = statistics(records)
    keys = sorted({(r["corpus"], r["session"]) for r in records})
    splits = release_splits(assignments, corpora, keys) if "test_sessions" in assignments else None
    result = {
        "version": version,
        "release": release_name,
        "path": _display_path(root / release_name),
        "codebook": assignments.get("codebook", "1.0"),
        "utterances": len(records),
        "sessions": len({(r["corpus"], r["session"]) for r in records}),
        "adjudicated_sessions": len(adjudicated),
        "reliability": reliability,
        "statistics": stats,
        "problems": problems,
    }
    if splits is not None:
        result["test_sessions_fixed"] = len(assignments["test_sessions"])
        result["coders"] = {c: sorted(f"{k[0]} {k[1]}" for k in cs) for c, cs in coders.items() if cs}
        result["coded_by"] = {f"{r['corpus']} {r['session']}": r["coder"] for r in records}
        result["splits"] = splits
        result["split_counts"] = {
            sp: {
                "sessions": sum(v == sp for v in splits.values()),
                "utterances": sum(n_utts(tuple(k.split(" ", 1))) for k, v in splits.items() if v == sp),
            }
            for sp in ("train", "validation", "test")
        }
    if write:
        with open(root / release_name, "w", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps(r) + "\n")
        (root / "manifest.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def _display_path(path: Path) -> str:
    """The release's path relative to the repository when it is inside it, else as given."""
    try:
        return path.resolve().relative_to(ROOT.parents[1]).as_posix()
    except ValueError:
        return str(path)


def _order(session: str):
    return (session.split(":")[0], int(session.split(":")[-1])) if ":" in session else ("", int(session))


def statistics(records: list[dict]) -> dict:
    table: dict = defaultdict(lambda: defaultdict(Counter))
    for r in records:
        for grp in (r["corpus"], "all"):
            table[grp][r["speaker"]]["utterances"] += 1
            table[grp]["all"]["utterances"] += 1
            for lab in r["labels"]:
                table[grp][r["speaker"]][lab] += 1
                table[grp]["all"][lab] += 1
            if not r["labels"]:
                table[grp][r["speaker"]]["none"] += 1
                table[grp]["all"]["none"] += 1
    return {g: {s: dict(c) for s, c in v.items()} for g, v in table.items()}


def disagreements(root: Path = ROOT, write_drafts: bool = False) -> list[str]:
    """List reliability disagreements (ids and both codes, never text); optionally write drafts
    for the adjudicator with agreed codes filled in and `? c1=... c2=...` on each dispute.
    Sessions already adjudicated are skipped."""
    assignments = json.loads((root / "assignments.json").read_text())
    coders = {c: read_coder(c, root) for c in assignments["coders"]}
    second_coders = {r["coders"][1] for r in reliability_rounds(assignments)}
    adjudicated = {parse_session_filename(f.name) for f in (root / "adjudicated").glob("*.txt")}
    lines = []
    for rnd in reliability_rounds(assignments):
        first, c2 = rnd["coders"]
        for s in rnd["sessions"]:
            key = tuple(s.split(" ", 1))
            if key in adjudicated:
                continue
            c1 = primary_coder(key, coders, second_coders) if first == "primary" else first
            a, b = coders.get(c1, {}).get(key) if c1 else None, coders[c2].get(key)
            if c1 == c2 or not a or not b or set(a) != set(b):
                continue
            draft = []
            for i in sorted(a):
                if a[i] == b[i]:
                    draft.append(f"{i} {','.join(a[i]) or '-'}")
                else:
                    draft.append(f"{i} ? {c1}={','.join(a[i]) or '-'} {c2}={','.join(b[i]) or '-'}")
                    lines.append(f"{key[0]} {key[1]} [{i}] {c1}={','.join(a[i]) or '-'} {c2}={','.join(b[i]) or '-'}")
            if write_drafts:
                d = root / "adjudication_drafts"
                d.mkdir(exist_ok=True)
                (d / session_filename(*key)).write_text("\n".join(draft) + "\n")
    return lines


# ---- codebook figures -------------------------------------------------------------------------
def render_reliability(res: dict) -> str:
    rel = res["reliability"]
    rows = []
    for r in rel["rounds"]:
        who = "each session's primary coder" if r["coders"][0] == "primary" else f"coder {r['coders'][0]}"
        rows.append(
            f"- Round {r['name']}: {r['n_utterances']} utterances in {r['sessions']} whole sessions, "
            f"coded independently by {who} and coder {r['coders'][1]} (neither saw the other's codes); "
            f"mean kappa {_f(r['overall']['mean_kappa'])}, pooled {_f(r['overall']['pooled_kappa'])}."
        )
    rows += [
        "",
        f"Pooled over the rounds: {rel['n_utterances']} utterances in {rel['sessions']} sessions; "
        f"disagreements adjudicated into release v{res['version']} ({res['adjudicated_sessions']} "
        "sessions adjudicated).",
        "",
    ]
    head = " | ".join(f"round {r['name']} kappa" for r in rel["rounds"])
    rows += [
        f"| label | Cohen's kappa (pooled) | positive agreement | positives (coder 1 / coder 2) | {head} |",
        "|---|---|---|---|" + "---|" * len(rel["rounds"]),
    ]
    for lab, v in rel["labels"].items():
        per = " | ".join(_f(r["labels"][lab]["kappa"]) for r in rel["rounds"])
        rows.append(
            f"| `{lab}` | {_f(v['kappa'])} | {_f(v['positive_agreement'])} | "
            f"{v['positives_coder1']} / {v['positives_coder2']} | {per} |"
        )
    o = rel["overall"]
    per = " | ".join(f"mean {_f(r['overall']['mean_kappa'])}" for r in rel["rounds"])
    rows += [
        f"| **overall** | mean {_f(o['mean_kappa'])}, pooled {_f(o['pooled_kappa'])} | "
        f"{_f(o['positive_agreement'])} | exact label-set agreement {_f(o['exact_label_set_agreement'])} | {per} |"
    ]
    return "\n".join(rows)


def render_stats(res: dict) -> str:
    st = res["statistics"]
    rows = [
        f"Release v{res['version']}: {res['utterances']} utterances in {res['sessions']} sessions "
        f"(`{res.get('path', 'data/annotations/' + res['release'])}`).",
        "",
        "| corpus | speaker | utterances | " + " | ".join(f"`{l}`" for l in LABELS) + " | no marker |",
        "|---|---|---|" + "---|" * (len(LABELS) + 1),
    ]
    for corpus in sorted(st, key=lambda c: (c == "all", c)):
        for spk in ("therapist", "client", "all"):
            c = st[corpus].get(spk)
            if not c:
                continue
            rows.append(
                f"| {corpus} | {spk} | {c.get('utterances', 0)} | "
                + " | ".join(str(c.get(l, 0)) for l in LABELS)
                + f" | {c.get('none', 0)} |"
            )
    return "\n".join(rows)


def _f(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def update_codebook(res: dict, codebook: Path) -> None:
    text = codebook.read_text(encoding="utf-8")
    for tag, body in (("reliability", render_reliability(res)), ("stats", render_stats(res))):
        block = f"<!-- {tag}:begin -->\n{body}\n<!-- {tag}:end -->"
        text = re.sub(rf"<!-- {tag}:begin -->.*?<!-- {tag}:end -->", lambda _m, b=block: b, text, flags=re.S)
    codebook.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.annotations")
    ap.add_argument("command", choices=["build", "disagreements", "check"])
    ap.add_argument("--corpus-dir")
    ap.add_argument("--drafts", action="store_true", help="with disagreements: write adjudication drafts")
    ap.add_argument("--root", type=Path, help="annotation folder holding raw/<coder>/ (default: this release's)")
    ap.add_argument("--coder", help="with check: check only this coder's files (each one complete and well formed)")
    args = ap.parse_args(argv)
    if args.command == "check" and args.coder:
        problems = check_coder(args.coder, args.root or ROOT, args.corpus_dir)
        for line in problems:
            print(line)
        return 1 if problems else 0
    if args.command == "disagreements":
        for line in disagreements(root=args.root or ROOT, write_drafts=args.drafts):
            print(line)
        return 0
    res = build(root=args.root or ROOT, corpus_dir=args.corpus_dir, write=args.command == "build")
    if args.command == "build" and res["version"] == LATEST:  # the codebook shows the newest release's figures
        update_codebook(res, ROOT.parent / "codebook.md")
    for p in res["problems"]:
        print("warning:", p, file=sys.stderr)
    print(json.dumps({k: res[k] for k in ("version", "utterances", "sessions", "adjudicated_sessions")}))
    print(render_reliability(res))
    print()
    print(render_stats(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
