"""A client's alliance course across sessions: its shape (Stiles et al. 2004)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np


def course_shape(totals: Sequence[float | None], delta: float = 0.25) -> str:
    """Classify a client's alliance course over sessions (Stiles et al. 2004).

    `delta` (WAI-SR points) is the smallest change treated as real. Returns one of
    "insufficient", "stable", "rising", "falling", "high-low-high", "low-high-low".
    """
    t = np.asarray([x for x in totals if x is not None], float)
    if len(t) < 3:
        return (
            "insufficient"
            if len(t) < 2
            else ("rising" if t[1] - t[0] >= delta else "falling" if t[0] - t[1] >= delta else "stable")
        )
    if t.max() - t.min() < delta:
        return "stable"
    i = int(np.argmin(t[1:-1])) + 1
    if t[:i].max() - t[i] >= delta and t[i + 1 :].max() - t[i] >= delta:
        return "high-low-high"
    j = int(np.argmax(t[1:-1])) + 1
    if t[j] - t[:j].min() >= delta and t[j] - t[j + 1 :].min() >= delta:
        return "low-high-low"
    slope = np.polyfit(np.arange(len(t)), t, 1)[0] * (len(t) - 1)
    if slope >= delta:
        return "rising"
    if slope <= -delta:
        return "falling"
    return "stable"


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders 'session2' before 'session10'."""
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name)]
