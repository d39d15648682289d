"""Rupture-repair episodes (Safran, Muran & Eubanks' 3RS) from a session's thresholded markers."""

from __future__ import annotations

from .labels import RUPTURE_LABELS
from .session import Episode, Session, Utterance

COLLABORATIVE = ("goal", "task", "bond")


def repaired_share(episodes: list[Episode]) -> float:
    """Share of episodes repaired; 1.0 when there were none (nothing left unrepaired)."""
    return sum(e.repaired for e in episodes) / len(episodes) if episodes else 1.0


def rupture_episodes(
    session: Session, merge_gap: int = 2, repair_window: int = 5, resolve_client_turns: int = 3
) -> list[Episode]:
    """Runs of rupture markers (gaps of <= merge_gap utterances merged) with repair and resolution.

    repaired: a `repair` marker inside the run or within `repair_window` utterances after it.
    resolved: the client's next `resolve_client_turns` utterances after the run (after the repair,
    if any) carry no rupture marker and at least one collaborative marker (goal, task, bond);
    None when the session ends first.
    """
    utts: list[Utterance] = session.utterances
    rupt = [i for i, u in enumerate(utts) if any(lab in u.markers for lab in RUPTURE_LABELS)]
    runs: list[list[int]] = []
    for i in rupt:
        if runs and i - runs[-1][-1] <= merge_gap + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    episodes = []
    for k, run in enumerate(runs):
        start, end = run[0], run[-1]
        kinds = {lab for i in run for lab in RUPTURE_LABELS if lab in utts[i].markers}
        limit = min(len(utts), end + 1 + repair_window)
        if k + 1 < len(runs):
            limit = min(limit, runs[k + 1][0])
        repair_at = next((i for i in range(start, limit) if "repair" in utts[i].markers), None)
        after = (repair_at if repair_at is not None and repair_at > end else end) + 1
        client_next = [u for u in utts[after:] if session.role_of(u.speaker) == "client"][:resolve_client_turns]
        if len(client_next) < resolve_client_turns and not client_next:
            resolved = None
        else:
            resolved = not any(lab in u.markers for u in client_next for lab in RUPTURE_LABELS) and any(
                lab in u.markers for u in client_next for lab in COLLABORATIVE
            )
        episodes.append(
            Episode(
                index=k,
                type="mixed" if len(kinds) > 1 else next(iter(kinds)).replace("rupture_", ""),
                start_utterance=start,
                end_utterance=end,
                start=utts[start].start,
                end=utts[end].end,
                sources=tuple(sorted({s for i in run if (s := utts[i].source) is not None})),
                by=tuple(sorted({session.role_of(utts[i].speaker) for i in run})),
                peak_probability=round(
                    max(max(utts[i].probabilities.get(lab, 0.0) for lab in RUPTURE_LABELS) for i in run), 4
                ),
                repaired=repair_at is not None,
                repair_utterance=repair_at,
                resolved=resolved,
            )
        )
    return episodes
