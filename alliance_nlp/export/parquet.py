"""Parquet export of a batch: `utterances.parquet` (every utterances.csv column plus `session`) and
`sessions.parquet` (one row per session: counts, estimates with intervals, rupture counts).

Parquet keeps types (nullable ints, floats, strings) that CSV loses, and pandas, R (arrow), Polars and
DuckDB read it directly. Columns are the same for every session of a batch: a session without a
classifier run has nulls in the probability and marker columns.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .. import __version__
from ..labels import LABELS
from . import Analysed, marker_model, unique_names, write_bytes_atomic

FLOAT_COLUMNS = {"role_confidence", "start", "end"} | {f"p_{lab}" for lab in LABELS}
INT_COLUMNS = {"source", "turn", "utterance"}
MARKER_COLUMNS = set(LABELS)


def _column_type(name: str, values: list[Any]):
    import pyarrow as pa

    if name in FLOAT_COLUMNS:
        return pa.float64()
    if name in INT_COLUMNS:
        return pa.int64()
    if name in MARKER_COLUMNS:
        return pa.int8()
    kinds = {type(v) for v in values if v is not None}
    if kinds <= {int} and kinds:
        return pa.int64()
    if kinds <= {int, float} and kinds:
        return pa.float64()
    if kinds <= {bool} and kinds:
        return pa.bool_()
    return pa.string()


def _table(rows: list[dict[str, Any]], columns: list[str], typer=None):
    """A typed table; strings for anything `typer` (name, values) -> arrow type does not place."""
    import pyarrow as pa

    arrays, fields = [], []
    for c in columns:
        vals = [r.get(c) for r in rows]
        typ = (typer or _column_type)(c, vals)
        if typ == pa.string():
            vals = [None if v is None else str(v) for v in vals]
        arrays.append(pa.array(vals, type=typ))
        fields.append(pa.field(c, typ))
    return pa.Table.from_arrays(
        arrays, schema=pa.schema(fields, metadata={"written_by": f"alliance-nlp {__version__}"})
    )


def utterances_table(analysed: list[Analysed]):
    """All utterances of the batch; columns: session, then utterances.csv's, then p_<label>/<label>."""
    from ..outputs import utterance_rows

    rows: list[dict[str, Any]] = []
    columns: list[str] = ["session"]
    for (session, _), name in zip(analysed, unique_names(analysed)):
        for r in utterance_rows(session):
            for c in r:
                if c not in columns:
                    columns.append(c)
            rows.append({"session": name, **r})
    for c in [x for lab in LABELS for x in (f"p_{lab}", lab)]:  # stable schema across batches
        if c not in columns:
            columns.append(c)
    return _table(rows, columns)


def session_row(name: str, session, summary: dict[str, Any]) -> dict[str, Any]:
    counts = summary.get("counts") or {}
    roles = summary.get("roles") or {}
    method = summary.get("estimate_method") or {}
    row: dict[str, Any] = {
        "session": name,
        "session_id": session.id,
        "source_path": summary.get("source_path"),
        "source_format": summary.get("source_format"),
        "speakers": counts.get("speakers"),
        "turns": counts.get("turns"),
        "utterances": counts.get("utterances"),
        "words": counts.get("words"),
        "duration_seconds": summary.get("duration_seconds"),
        "therapist": (roles.get("therapist") or {}).get("speaker"),
        "client": (roles.get("client") or {}).get("speaker"),
    }
    for k in ("goal", "task", "bond", "total"):
        est: dict[str, Any] = summary[k] if isinstance(summary.get(k), dict) else {}
        row[k], row[f"{k}_low"], row[f"{k}_high"] = est.get("estimate"), est.get("low"), est.get("high")
    rup = summary.get("ruptures") or {}
    for k in ("episodes", "repaired", "unrepaired", "resolved"):
        row[f"rupture_{k}" if k != "episodes" else "rupture_episodes"] = rup.get(k)
    markers = summary.get("markers") or {}
    for lab in LABELS:
        row[f"n_{lab}"] = (markers.get(lab) or {}).get("count")
    row.update(
        {
            "scale": method.get("scale"),
            "interval": method.get("interval"),
            "mapping": method.get("mapping") or method.get("calibration"),
            "marker_model": marker_model(session, summary),
        }
    )
    return row


SESSION_FLOATS = {"duration_seconds"} | {
    f"{k}{s}" for k in ("goal", "task", "bond", "total") for s in ("", "_low", "_high")
}
SESSION_INTS = {
    "speakers",
    "turns",
    "utterances",
    "words",
    "rupture_episodes",
    "rupture_repaired",
    "rupture_unrepaired",
    "rupture_resolved",
} | {f"n_{lab}" for lab in LABELS}


def sessions_table(analysed: list[Analysed]):
    import pyarrow as pa

    rows = [session_row(n, s, summ) for (s, summ), n in zip(analysed, unique_names(analysed))]
    return _table(
        rows,
        list(rows[0]) if rows else ["session"],
        lambda c, _: pa.float64() if c in SESSION_FLOATS else pa.int64() if c in SESSION_INTS else pa.string(),
    )


def _parquet_bytes(table) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def write_parquet(analysed: list[Analysed], output: str | os.PathLike) -> list[Path]:
    """`output/utterances.parquet` and `output/sessions.parquet`."""
    out = Path(output)
    return [
        write_bytes_atomic(out / "utterances.parquet", _parquet_bytes(utterances_table(analysed))),
        write_bytes_atomic(out / "sessions.parquet", _parquet_bytes(sessions_table(analysed))),
    ]
