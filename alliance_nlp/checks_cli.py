"""`alliance-nlp calibrate`, `evaluate` and `course`: fit the estimate mapping to a lab's own
ratings, check estimates against ratings, and classify a client's course over sessions."""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from .errors import InputError
from .session import Session, write_json_atomic

SUBS = ("goal", "task", "bond", "total")


def load_results(paths: list[str]) -> dict[str, Session]:
    """Analysed sessions from `analyze` output folders (searched recursively) or session.json files."""
    found: dict[str, Session] = {}
    for p in map(Path, paths):
        files = sorted(p.rglob("session.json")) if p.is_dir() else [p]
        if not files:
            raise InputError(p, "no session.json found (run `alliance-nlp analyze` first)")
        for f in files:
            try:
                s = Session.load(f)
            except (ValueError, KeyError, json.JSONDecodeError) as exc:
                raise InputError(f, f"not an analysed session: {exc}") from None
            if not any(u.probabilities for u in s.utterances):
                raise InputError(f, "session has no marker probabilities (analyze with the classify step)")
            keys = {s.id} | ({f.parent.name} if f.name == "session.json" else set())
            for k in keys:
                found.setdefault(k, s)
    return found


def _matched(sessions: dict[str, Session], ratings: dict[str, dict]) -> list[tuple[str, Session]]:
    pairs, seen = [], set()
    for sid in ratings:
        s = sessions.get(sid)
        if s is not None and id(s) not in seen:
            pairs.append((sid, s))
            seen.add(id(s))
    return pairs


def cmd_calibrate(args) -> int:
    from .aggregate import AllianceAggregator, session_features, FEATURES
    from .ratings import load_scale, read_ratings

    scale = load_scale(args.scale or args.instrument)
    ratings = read_ratings(args.ratings, scale, args.id_column, args.sums)
    pairs = _matched(load_results(args.results), ratings)
    if len(pairs) < 5:
        raise InputError(args.ratings, f"only {len(pairs)} rated sessions match analysed sessions; need at least 5")
    X = np.array([[session_features(s)[f] for f in FEATURES] for _, s in pairs])
    Y = {k: np.array([ratings[sid].get(k, np.nan) for sid, _ in pairs]) for k in ("goal", "task", "bond")}
    Y = {k: v for k, v in Y.items() if not np.all(np.isnan(v))}
    if not Y:
        raise InputError(args.ratings, "no goal/task/bond scores to calibrate on (a total alone cannot "
                                       "separate subscales)")
    agg = AllianceAggregator.fit(X, Y, alpha=args.alpha, meta={
        "name": f"calibrated on {Path(args.ratings).name}", "instrument": scale.name, "sessions": len(pairs)})
    agg.save(args.output)
    print(f"calibrated on {len(pairs)} sessions ({scale.name}); cross-validated RMSE: "
          + ", ".join(f"{k} {v['cv_rmse']:.2f}" for k, v in agg.meta["fit"].items())
          + f"; wrote {args.output}", file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from .aggregate import AllianceAggregator
    from .checks import agreement
    from .ratings import load_scale, read_ratings

    scale = load_scale(args.scale or args.instrument)
    ratings = read_ratings(args.ratings, scale, args.id_column, args.sums)
    pairs = _matched(load_results(args.results), ratings)
    if not pairs:
        raise InputError(args.ratings, "no rated session matches an analysed session id")
    agg = AllianceAggregator.load(args.calibration)
    est = {sid: agg(s).results for sid, s in pairs}
    report = {"instrument": scale.name, "sessions_rated": len(ratings), "sessions_matched": len(pairs),
              "calibration": agg.meta.get("name"), "subscales": {}}
    for k in SUBS:
        ids = [sid for sid, _ in pairs if ratings[sid].get(k) is not None]
        if ids:
            report["subscales"][k] = agreement(np.array([est[i][k]["estimate"] for i in ids]),
                                               np.array([ratings[i][k] for i in ids]),
                                               n_boot=args.n_boot)
    if args.output:
        write_json_atomic(args.output, report)
    print(render_table(report))
    return 0


def render_table(report: dict) -> str:
    rows = [f"{report['instrument']}: {report['sessions_matched']} sessions "
            f"(calibration: {report['calibration']}); 95% bootstrap intervals",
            f"{'scale':<7}{'n':>5}  {'r':>20}  {'rho':>20}  {'ICC(A,1)':>20}  {'MAE':>18}  {'RMSE':>18}"]
    for k, m in report["subscales"].items():
        if "pearson_r" not in m:
            rows.append(f"{k:<7}{m['n']:>5}  {m.get('note', '')}")
            continue
        cell = lambda d: f"{d['value']:.2f} [{d['low']:.2f}, {d['high']:.2f}]"  # noqa: E731
        rows.append(f"{k:<7}{m['n']:>5}  {cell(m['pearson_r']):>20}  {cell(m['spearman_rho']):>20}  "
                    f"{cell(m['icc_a1']):>20}  {cell(m['mae']):>18}  {cell(m['rmse']):>18}")
    return "\n".join(rows)


def cmd_course(args) -> int:
    from .aggregate import AllianceAggregator, course_shape, natural_key

    sessions = {s.id: s for s in load_results(args.results).values()}
    clients: dict[str, list[tuple[str, str]]] = {}
    if args.clients:
        with open(args.clients, newline="", encoding="utf-8-sig") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=2):
                for col in ("session", "client"):
                    if not row.get(col):
                        raise InputError(args.clients, f"missing {col}", line=n, field=col)
                clients.setdefault(row["client"], []).append((row.get("order") or row["session"], row["session"]))
    else:
        clients["client"] = [(str(s.meta.get("session_number", sid)), sid) for sid, s in sessions.items()]
    agg = AllianceAggregator.load(args.calibration) if args.calibration else None
    out = {}
    for client, items in clients.items():
        items.sort(key=lambda t: natural_key(t[0]))
        course = []
        for _, sid in items:
            s = sessions.get(sid)
            if s is None:
                raise InputError(args.clients, f"session {sid!r} not among the analysed sessions")
            res = agg(s).results if agg else s.results
            if "total" not in res:
                raise InputError(sid, "session has no estimates (analyze with the aggregate step)")
            course.append({"session": sid, **{k: res[k] for k in SUBS}})
        out[client] = {"sessions": course,
                       "shape": course_shape([c["total"]["estimate"] for c in course], delta=args.delta)}
    if args.output:
        write_json_atomic(args.output, out)
    for client, c in out.items():
        print(f"{client}: {c['shape']}  " + " -> ".join(f"{x['total']['estimate']:.2f}" for x in c["sessions"]))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    def common(p):
        p.add_argument("results", nargs="+", help="analyze output folders or session.json files")
        p.add_argument("--ratings", required=True, help="CSV: session id + subscale scores, total or items")
        p.add_argument("--instrument", default="wai-sr", help="wai, wai-s, wai-sr, wai-o, wai-o-s")
        p.add_argument("--scale", help="scale file describing another instrument (items, range, key)")
        p.add_argument("--id-column", default="session")
        p.add_argument("--sums", action="store_true", help="scores are sums, not item means")

    pc = sub.add_parser("calibrate", help="fit the estimate mapping to your own ratings")
    common(pc)
    pc.add_argument("-o", "--output", default="calibration.json")
    pc.add_argument("--alpha", type=float, default=10.0, help="ridge penalty")
    pc.set_defaults(func=cmd_calibrate)

    pe = sub.add_parser("evaluate", help="compare estimates with ratings (r, rho, ICC, MAE, RMSE, Bland-Altman)")
    common(pe)
    pe.add_argument("--calibration", help="calibration file (default: the shipped one)")
    pe.add_argument("--n-boot", type=int, default=1000)
    pe.add_argument("-o", "--output", help="write the full report (JSON)")
    pe.set_defaults(func=cmd_evaluate)

    po = sub.add_parser("course", help="a client's alliance course across sessions and its shape")
    po.add_argument("results", nargs="+")
    po.add_argument("--clients", help="CSV with session, client and optional order columns")
    po.add_argument("--calibration")
    po.add_argument("--delta", type=float, default=0.25, help="smallest change (WAI-SR points) treated as real")
    po.add_argument("-o", "--output")
    po.set_defaults(func=cmd_course)
