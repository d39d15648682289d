"""Analysis windows over a session: `minutes` on the session clock, or N turns without timestamps."""

from __future__ import annotations

from .session import Session, Window


def make_windows(session: Session, minutes: float = 5.0, turns: int = 20) -> list[Window]:
    """Windows over a session (see `Window`).

    With timestamps: consecutive `minutes`-long windows on the session clock ([k*W, (k+1)*W));
    an utterance belongs to the window holding its start (an untimed utterance follows the one
    before it); empty windows are left out, so window indices are consecutive but times may jump.
    Without timestamps: windows of `turns` consecutive turns (the last one may be shorter).
    """
    if minutes <= 0 or turns <= 0:
        raise ValueError("window size must be positive")
    utt_turn: list[int] = []
    utt_start: list[float | None] = []
    for ti, t in enumerate(session.turns):
        for u in t.utterances:
            utt_turn.append(ti)
            utt_start.append(u.start)
    n = len(utt_turn)
    out: list[Window] = []
    if n and any(x is not None for x in utt_start):
        width = minutes * 60.0
        first = next(x for x in utt_start if x is not None)
        keys, last = [], first
        for x in utt_start:
            last = x if x is not None else last
            keys.append(int(max(last, 0.0) // width))
        i = 0
        while i < n:
            j = i
            while j < n and keys[j] == keys[i]:
                j += 1
            out.append(
                Window(len(out), "time", keys[i] * width, (keys[i] + 1) * width, utt_turn[i], utt_turn[j - 1] + 1, i, j)
            )
            i = j
        return out
    # turn-based
    turn_first_utt, k = [], 0
    for t in session.turns:
        turn_first_utt.append(k)
        k += len(t.utterances)
    turn_first_utt.append(k)
    for a in range(0, len(session.turns), turns):
        b = min(a + turns, len(session.turns))
        ts = [x for t in session.turns[a:b] for x in (t.start, t.end) if x is not None]
        out.append(
            Window(
                len(out),
                "turns",
                min(ts) if ts else None,
                max(ts) if ts else None,
                a,
                b,
                turn_first_utt[a],
                turn_first_utt[b],
            )
        )
    return out
