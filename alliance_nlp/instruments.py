"""Alliance rating instruments and ratings files, put on the WAI-SR metric (item mean, 1-5).

An instrument is a small JSON scale file (items, range, subscale key, reverse-keyed items), so
CALPAS, STAR or a lab's licensed WAI key can be added without code. Items are referred to by number
only: item wording is copyrighted and never shipped.
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .integrity import verify_file
from .resources import resource_path
from .session import SUBSCALES

SCALES_DIR = resource_path("scales")
TARGET_MIN, TARGET_MAX = 1.0, 5.0


@dataclass
class Scale:
    name: str
    items: int
    min: float
    max: float
    subscales: dict[str, list[int]] | None = None
    reverse: list[int] | None = None
    score: str = "mean"
    description: str = ""

    def to_target(self, x: float) -> float:
        """Linear map of an item-mean score from this instrument's range onto 1-5."""
        return TARGET_MIN + (x - self.min) * (TARGET_MAX - TARGET_MIN) / (self.max - self.min)

    def reverse_item(self, x: float) -> float:
        return self.min + self.max - x


def available_scales() -> list[str]:
    return sorted(p.stem for p in SCALES_DIR.glob("*.json"))


def load_scale(name_or_path: str | os.PathLike) -> Scale:
    p = Path(name_or_path)
    if not p.is_file():
        p = SCALES_DIR / f"{str(name_or_path).lower()}.json"
    if not p.is_file():
        raise InputError(
            name_or_path, f"unknown instrument; shipped: {', '.join(available_scales())}, or give a scale file path"
        )
    verify_file(p)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
        scale = Scale(
            **{k: d[k] for k in ("name", "items", "min", "max")},
            subscales=d.get("subscales"),
            reverse=d.get("reverse"),
            score=d.get("score", "mean"),
            description=d.get("description", ""),
        )
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise InputError(p, f"invalid scale file: {exc}") from None
    if scale.max <= scale.min:
        raise InputError(p, "max must be greater than min", field="max")
    for sub, items in (scale.subscales or {}).items():
        bad = [i for i in items if not 1 <= i <= scale.items]
        if bad:
            raise InputError(p, f"item numbers out of range 1-{scale.items}: {bad}", field=f"subscales.{sub}")
    return scale


_ITEM_COL = re.compile(r"^(?:item|i|q|wai)?[_\s-]?(\d+)$", re.I)


def read_ratings(
    path: str | os.PathLike, scale: Scale, id_column: str = "session", sums: bool = False
) -> dict[str, dict[str, float]]:
    """Ratings CSV -> {session id: {goal, task, bond, total}} on the WAI-SR metric.

    Columns: the id column plus subscale scores (goal, task, bond), a total, or item responses
    (item1..itemN, 1..N, q1..). Scores are item means on the instrument's range, or sums with
    `sums=True`. Item responses need the scale's subscale key.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(p, "file not found") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows:
        raise InputError(p, "empty ratings file")
    header = [h.strip() for h in rows[0]]
    lower = [h.lower() for h in header]
    if id_column.lower() not in lower:
        raise InputError(p, f"no {id_column!r} column (columns: {', '.join(header)})", line=1)
    id_at = lower.index(id_column.lower())
    sub_at = {s: lower.index(s) for s in (*SUBSCALES, "total") if s in lower}
    item_at = {int(m.group(1)): i for i, h in enumerate(header) if (m := _ITEM_COL.match(h)) and i != id_at}
    if not sub_at and not item_at:
        raise InputError(p, "no rating columns: expected goal/task/bond/total or item1..itemN", line=1)
    if item_at and not sub_at and not scale.subscales:
        raise InputError(
            p,
            f"item-level ratings need the {scale.name} item key; give a scale file with "
            "'subscales' (and 'reverse') via --scale, or subscale scores",
            line=1,
        )
    per_sub_items = scale.items / 3
    out: dict[str, dict[str, float]] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) < len(header):
            raise InputError(p, f"row has {len(row)} fields, header has {len(header)}", line=n)
        sid = row[id_at].strip()
        if not sid:
            raise InputError(p, "empty session id", line=n, field=header[id_at])
        rec: dict[str, float] = {}
        if sub_at:
            for s, i in sub_at.items():
                v = _num(row[i], p, n, header[i])
                if v is None:
                    continue
                if sums:
                    v /= scale.items if s == "total" else per_sub_items
                rec[s] = _check_range(scale.to_target(v), p, n, header[i], scale)
        else:
            items = {k: _num(row[i], p, n, header[i]) for k, i in item_at.items()}
            for k, v in items.items():
                if v is not None and not scale.min <= v <= scale.max:
                    raise InputError(
                        p, f"item response {v} outside {scale.min}-{scale.max}", line=n, field=header[item_at[k]]
                    )
            rev = set(scale.reverse or [])
            for s, key in (scale.subscales or {}).items():
                vals = [scale.reverse_item(v) if k in rev else v for k in key if (v := items.get(k)) is not None]
                if vals:
                    rec[s] = scale.to_target(sum(vals) / len(vals))
        if "total" not in rec and all(s in rec for s in SUBSCALES):
            rec["total"] = sum(rec[s] for s in SUBSCALES) / 3
        out[sid] = rec
    return out


def _num(v: str, p: Path, line: int, field: str) -> float | None:
    v = v.strip()
    if v in ("", "NA", "na", "n/a", "NaN", "nan", "."):
        return None
    try:
        return float(v)
    except ValueError:
        raise InputError(p, f"not a number: {v!r}", line=line, field=field) from None


def _check_range(x: float, p: Path, line: int, field: str, scale: Scale) -> float:
    if not TARGET_MIN - 1e-9 <= x <= TARGET_MAX + 1e-9:
        raise InputError(
            p,
            f"score outside the {scale.name} range {scale.min}-{scale.max} (sums? use --sums)",
            line=line,
            field=field,
        )
    return x
