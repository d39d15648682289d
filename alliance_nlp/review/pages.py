"""The review app's two pages, built from the session report's pieces (alliance_nlp.report): its page
shell and Content-Security-Policy, palette and style sheet, escaping, and its transcript rows, which
static/review.js turns into review rows (label toggles, notes) with data from the JSON API.

Everything from a transcript is escaped here by the report's `_e` (html.escape); what the script adds
later it adds with `textContent`, never as markup.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import quote

from ..labels import LABELS
from ..report import (
    INDEX_JS,
    PALETTE,
    REPORT_JS,
    SHORT,
    TINT,
    _e,
    _num,
    episodes_html,
    page,
    page_csp,
    page_css,
    transcript_html,
)
from .data import Entry

CSP_EXTRA = "connect-src 'self'"
HEADER_CSP_EXTRA = "frame-ancestors 'none'"  # not honoured in a <meta> policy, so sent as a header too


@cache
def static(name: str) -> str:
    return resources.files("alliance_nlp.review").joinpath("static").joinpath(name).read_text(encoding="utf-8")


def review_css() -> str:
    """static/review.css plus the label toggles in the report's Okabe-Ito colours."""
    return static("review.css") + "".join(
        f".rv .lab.{lab}{{border-color:{PALETTE[lab]}}}.rv .lab.{lab}[aria-pressed=true]{{background:{TINT[lab]}}}"
        for lab in LABELS
    )


def session_href(sid: str) -> str:
    return "/sessions/" + quote(sid, safe="")


def api_href(sid: str) -> str:
    return "/api/sessions/" + quote(sid, safe="")


def _csp(css: str, js: str) -> str:
    return f"{page_csp(page_css() + css, js, CSP_EXTRA)}; {HEADER_CSP_EXTRA}"


def _est_text(est: dict[str, Any]) -> str:
    if est.get("estimate") is None:
        return "–"
    ci = f" [{_num(est.get('low'))}, {_num(est.get('high'))}]" if est.get("low") is not None else ""
    return f"{_num(est['estimate'])}{ci}"


def list_page(rows: list[dict[str, Any]], reviewer: str, corrections_file: str) -> tuple[str, str]:
    """The session list: estimates, rupture counts and review progress per session. (html, csp)"""

    def th(label: str, kind: str = "num", cls: str = "n") -> str:
        return f'<th scope="col" class="{cls}" data-type="{kind}"><button type="button">{_e(label)}</button></th>'

    head = (
        th("Session", "text", "")
        + th("Utterances")
        + "".join(th(k.capitalize()) for k in ("goal", "task", "bond", "total"))
        + th("Rupture episodes")
        + th("Repaired")
        + th("Reviewed by you")
        + th("Other reviewers", "text", "")
        + th("Reviewers disagree")
    )
    body = []
    for r in rows:
        est = r["estimates"]
        rup = r.get("ruptures") or {}
        others = ", ".join(f"{name} ({n})" for name, n in r["reviewers"].items() if name != reviewer)
        share = r["reviewed"] / r["utterances"] if r["utterances"] else 0.0
        body.append(
            "<tr>"
            f'<th scope="row" data-v="{_e(r["id"])}"><a href="{_e(session_href(r["id"]))}">{_e(r["id"])}</a>'
            + (f'<div class="small muted">{_e(r["source_path"])}</div>' if r.get("source_path") else "")
            + "</th>"
            f'<td class="n">{r["utterances"]}</td>'
            + "".join(
                f'<td class="n" data-v="{"" if est[k]["estimate"] is None else est[k]["estimate"]}">'
                f"{_e(_est_text(est[k]))}</td>"
                for k in ("goal", "task", "bond", "total")
            )
            + f'<td class="n">{_e(rup.get("episodes", "–"))}</td><td class="n">{_e(rup.get("repaired", "–"))}</td>'
            f'<td class="n" data-v="{share:.4f}"><progress max="{r["utterances"]}" value="{r["reviewed"]}" '
            f'aria-label="{r["reviewed"]} of {r["utterances"]} reviewed"></progress> {r["reviewed"]} / {r["utterances"]}</td>'
            f'<td data-v="{_e(others)}">{_e(others) or "–"}</td>'
            f'<td class="n">{r["disagreements"]}</td></tr>'
        )
    if not body:
        body.append('<tr><td colspan="11" class="empty">No sessions.</td></tr>')
    total = sum(r["utterances"] for r in rows)
    done = sum(r["reviewed"] for r in rows)
    html_body = (
        '<a class="skip" href="#sessions">Skip to the table</a>'
        '<header class="top"><div class="wrap"><h1>Review alliance markers</h1>'
        f'<p class="meta">Reviewing as <strong>{_e(reviewer)}</strong> · {len(rows)} session'
        f"{'s' if len(rows) != 1 else ''} · {done} of {total} utterances reviewed by you</p>"
        f'<p class="meta small">Corrections are saved as you make them to <code>{_e(corrections_file)}</code>.</p>'
        "</div></header>"
        '<main class="wrap"><section id="table" aria-labelledby="h-tab"><h2 id="h-tab">Sessions</h2>'
        '<p class="small muted">Open a session to review its tags. Estimates on the WAI-SR metric (1-5), intervals '
        "in brackets. Select a column heading to sort.</p>"
        f'<div class="tablewrap"><table class="sortable" id="sessions"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div></section>"
        '<aside class="caveat" aria-label="What happens to the corrections"><p>Each correction is one line in the '
        "corrections file: who, when, which utterance, the labels. <code>alliance-nlp review-agreement</code> reports "
        "how far reviewers agree with each other and with the model; <code>alliance-nlp finetune --corrections "
        "…</code> turns them into a new model.</p></aside></main>"
    )
    css = review_css()
    return page("Review alliance markers", html_body, INDEX_JS, css=css, csp_extra=CSP_EXTRA), _csp(css, INDEX_JS)


def session_page(e: Entry, reviewer: str) -> tuple[str, str]:
    """One session to review: header, review controls, the episodes and the report's transcript. (html, csp)"""
    s, summary = e.session, e.summary
    est = summary
    bits = [f"{e.n} utterances"]
    if e.model.get("name"):
        bits.append(f"model {e.model['name']}" + (f" ({e.model['fingerprint']})" if e.model.get("fingerprint") else ""))
    ests = " · ".join(
        f"{k.capitalize()} {_est_text(est.get(k) or {})}"
        for k in ("goal", "task", "bond", "total")
        if isinstance(est.get(k), dict)
    )
    rup = summary.get("ruptures") if isinstance(summary.get("ruptures"), dict) else None
    n_ep = len([x for x in summary.get("episodes") or [] if isinstance(x, dict)])
    keys = [
        ("1 – 6", "add or remove " + ", ".join(f"{k + 1} {SHORT[lab]}" for k, lab in enumerate(LABELS))),
        ("a or Enter", "accept the labels shown and go to the next utterance"),
        ("n", "write a note (Enter saves it, Escape goes back)"),
        ("u", "next utterance you have not reviewed"),
        ("↑ ↓ or k j", "previous or next utterance; Home and End: first and last"),
    ]
    body = (
        '<a class="skip" href="#transcript">Skip to transcript</a>'
        '<header class="top"><div class="wrap"><p class="meta"><a href="/">← All sessions</a></p>'
        f"<h1>Review: {_e(e.id)}</h1>"
        + (f'<p class="meta">Source: <code>{_e(s.source_path)}</code></p>' if s.source_path else "")
        + f'<p class="meta">{" · ".join(_e(b) for b in bits)}</p>'
        + (
            f'<p class="meta">{_e(ests)}'
            + (f" · rupture episodes {_e(rup.get('episodes'))} ({_e(rup.get('repaired'))} repaired)" if rup else "")
            + "</p>"
            if ests
            else ""
        )
        + "</div></header>"
        '<main class="wrap review">'
        '<section id="review" aria-labelledby="h-rv"><h2 id="h-rv">Review</h2>'
        '<div class="rvbar" role="group" aria-label="Review controls">'
        f'<span>Reviewing as <strong id="rv-reviewer">{_e(reviewer)}</strong></span>'
        '<label>Order <select id="rv-order"><option value="transcript">transcript order</option>'
        '<option value="informative">informative first</option></select></label>'
        '<button type="button" id="rv-next">Next unreviewed (u)</button>'
        f'<span class="rvprog"><progress id="rv-bar" max="{e.n}" value="0"></progress> '
        f'<span id="rv-progress" role="status" aria-live="polite">loading…</span></span></div>'
        '<p class="small muted">Each utterance shows the model\'s probability for every label; pressed buttons '
        "(✓) are the labels you keep. Changes are saved at once. <em>Informative first</em> puts utterances "
        "where reviewers disagree, then those nearest a decision threshold, at the top.</p>"
        '<details class="keys"><summary>Keyboard</summary><dl>'
        + "".join(f"<dt><kbd>{_e(k)}</kbd></dt><dd>{_e(v)}</dd>" for k, v in keys)
        + "</dl><p>Tab moves through the current utterance's buttons and note.</p></details>"
        '<p id="rv-error" class="rv-error" role="alert" hidden></p></section>'
        f'<details class="episodes-box"><summary>Rupture-repair episodes ({n_ep})</summary>'
        f"{episodes_html(s, summary)}</details>"
        f"{transcript_html(s, summary)}</main>"
    )
    data = {
        "session": e.id,
        "reviewer": reviewer,
        "api": api_href(e.id),
        "labels": list(LABELS),
        "short": {lab: SHORT[lab] for lab in LABELS},
    }
    css = review_css()
    js = REPORT_JS + static("review.js")
    return (page(f"Review: {e.id}", body, js, css=css, data=data, csp_extra=CSP_EXTRA), _csp(css, js))
