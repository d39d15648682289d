"""Self-contained HTML reports: `report.html` for one analysed session and `index.html` for a batch.

Why self-contained: transcripts are clinical data, so a report must open from disk on an offline machine
and never fetch anything. Styles and scripts are inline and pinned by a Content-Security-Policy that
allows only their SHA-256 hashes (nothing can load from the network, and an injected script would not
run even if escaping failed); plots are inline SVG drawn here, not a plotting library. Transcript text,
speaker names and file names are untrusted: every string goes through `html.escape`, and the JSON copy
of the summary is embedded with `<`, `>` and `&` escaped so `</script>` cannot end its block.

Colours follow the Okabe-Ito palette (distinguishable with the common colour-vision deficiencies), and
no marker is shown by colour alone: chips carry the label, plot rows are labelled, lines differ by dash.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import html
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from . import __version__
from .files import atomic_write
from .labels import LABELS
from .session import Session, Utterance

SCALES = ("goal", "task", "bond", "total")
MODEL_CARD = "models/alliance-markers-v2/README.md"
MODEL_CARD_SECTION = "Limits and known failure modes"

# Okabe-Ito: colour, light tint (for backgrounds), dash pattern (for lines, so print in grey still works)
PALETTE: dict[str, str] = {
    "goal": "#0072B2",
    "task": "#009E73",
    "bond": "#CC79A7",
    "rupture_withdrawal": "#E69F00",
    "rupture_confrontation": "#D55E00",
    "repair": "#56B4E9",
    "total": "#000000",
}
TINT: dict[str, str] = {
    "goal": "#e3eff7",
    "task": "#e0f3ee",
    "bond": "#f8ebf3",
    "rupture_withdrawal": "#fcefd6",
    "rupture_confrontation": "#fae3d6",
    "repair": "#e4f3fb",
}
DASH: dict[str, str] = {"goal": "", "task": "6 3", "bond": "2 3", "total": ""}
SHORT: dict[str, str] = {
    "goal": "goal",
    "task": "task",
    "bond": "bond",
    "rupture_withdrawal": "withdrawal",
    "rupture_confrontation": "confrontation",
    "repair": "repair",
}


# ---- small helpers ----------------------------------------------------------------------------------
def _e(value: Any) -> str:
    """HTML-escape anything (text and attribute values alike)."""
    return html.escape("" if value is None else str(value), quote=True)


def _num(x: Any, nd: int = 2) -> str:
    return "–" if not isinstance(x, (int, float)) or isinstance(x, bool) or math.isnan(x) else f"{x:.{nd}f}"


def _f(x: float) -> str:
    """Compact SVG coordinate."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = int(max(seconds, 0.0))  # floor, as the .txt export does: 59.7 s is still in second 59
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _duration(seconds: float | None) -> str:
    if not seconds:
        return "–"
    m = int(round(seconds / 60))
    return f"{m // 60} h {m % 60:02d} min" if m >= 60 else f"{m} min"


def safe_json(obj: Any) -> str:
    """JSON for an inline `<script type="application/json">` block: `<`, `>`, `&` and the JS line
    separators are \\u-escaped, so no string can close the block or open a comment."""
    text = json.dumps(obj, ensure_ascii=False, default=str, allow_nan=False)
    for ch, rep in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e"), ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(ch, rep)
    return text


def _clean_json(obj: Any) -> Any:
    """NaN/inf -> None, so the embedded copy is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): _clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_json(v) for v in obj]
    return obj


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def page_csp(css: str, js: str, extra: str = "") -> str:
    """The Content-Security-Policy of a page: only its own inline style and script (by SHA-256), data:
    images, nothing else; `extra` adds directives (the review app adds `connect-src 'self'`)."""
    csp = (
        f"default-src 'none'; script-src {_sha(js)}; style-src {_sha(css)}; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
    return f"{csp}; {extra}" if extra else csp


def _page(title: str, body: str, css: str, js: str, data: Any = None, csp_extra: str = "") -> str:
    """The shared page shell: CSP pinned to the exact inline style and script, no external anything."""
    csp = page_csp(css, js, csp_extra)
    data_block = (
        ""
        if data is None
        else f'<script type="application/json" id="report-data">{safe_json(_clean_json(data))}</script>\n'
    )
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n<meta name="robots" content="noindex">\n'
        f"<title>{_e(title)}</title>\n<style>{css}</style>\n</head>\n<body>\n{body}\n{data_block}"
        f"<script>{js}</script>\n</body>\n</html>\n"
    )


def _write_atomic(path: Path, text: str) -> Path:
    with atomic_write(path, newline="\n") as fh:
        fh.write(text)
    return path


def classifier_info(session: Session, summary: Mapping[str, Any]) -> dict[str, Any]:
    """What the classify step recorded (model name, encoder, thresholds); {} when it did not run."""
    for src in (
        (summary.get("pipeline") or {}).get("classify"),
        session.provenance.get("classify") if isinstance(getattr(session, "provenance", None), Mapping) else None,
        session.meta.get("classifier"),
    ):
        if isinstance(src, Mapping) and src:
            return dict(src)
    return {}


def _estimate(summary: Mapping[str, Any], key: str) -> dict[str, Any]:
    """{estimate, low, high} of one scale, each a number or None, whatever the summary holds."""
    v = summary.get(key)
    if not isinstance(v, Mapping):
        return {"estimate": None, "low": None, "high": None}
    return {k: (v.get(k) if isinstance(v.get(k), (int, float)) else None) for k in ("estimate", "low", "high")}


def _ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """'Nice' axis ticks between lo and hi."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


# ---- styles and scripts (constant, so their CSP hashes are stable) -----------------------------------
def _marker_css() -> str:
    rules = []
    for lab in LABELS:
        rules.append(
            f".chip.{lab}{{border-color:{PALETTE[lab]};background:{TINT[lab]}}}"
            f".u.p-{lab}{{border-left-color:{PALETTE[lab]};background:{TINT[lab]}}}"
            f".sw.{lab}{{background:{PALETTE[lab]}}}"
        )
    return "".join(rules)


BASE_CSS = (
    """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Liberation Sans","DejaVu Sans",Arial,sans-serif;
color:#1b1b1b;background:#fff}
a{color:#005a8c}
a:focus-visible,button:focus-visible,select:focus-visible,input:focus-visible,.u:focus-visible{outline:3px solid #0072B2;outline-offset:2px}
svg a:focus-visible{outline:none}
svg a:focus-visible>*{stroke:#1b1b1b;stroke-width:2.5}
.skip{position:absolute;left:-9999px;top:0}
.skip:focus{left:12px;top:8px;background:#fff;padding:6px 10px;z-index:20;border:2px solid #0072B2}
.wrap{max-width:1120px;margin:0 auto;padding:0 22px}
header.top{background:#f4f4f1;border-bottom:1px solid #dcdcd6;padding:18px 0 10px}
h1{font-size:1.55rem;margin:0 0 4px;line-height:1.25;overflow-wrap:anywhere}
h2{font-size:1.2rem;margin:34px 0 10px;padding-bottom:4px;border-bottom:2px solid #1b1b1b}
h3{font-size:1rem;margin:0 0 6px}
.meta{color:#4d4d4d;margin:2px 0;font-size:.92rem;overflow-wrap:anywhere}
nav.sections{margin-top:10px;display:flex;flex-wrap:wrap;gap:4px 16px;font-size:.92rem}
.muted{color:#5c5c5c}
.small{font-size:.86rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:12px}
.card{border:1px solid #d4d4d0;border-radius:6px;padding:12px 14px;background:#fff;break-inside:avoid}
.card.total{border:2px solid #1b1b1b}
.card .big{font-size:2rem;font-weight:700;line-height:1.1;margin:2px 0}
.card .ci{margin:0 0 4px;color:#3d3d3d;font-size:.9rem}
.card svg{display:block;width:100%;height:auto}
.method{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:14px 0 0;font-size:.92rem}
.method dt{font-weight:600}
.method dd{margin:0;overflow-wrap:anywhere}
.caveat{border-left:5px solid #E69F00;background:#fdf6e6;padding:10px 14px;margin:16px 0 0;font-size:.93rem}
.caveat p{margin:0 0 6px}.caveat p:last-child{margin:0}
code{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.88em;background:#efefec;padding:0 3px;border-radius:3px}
figure{margin:0}
figure svg{display:block;width:100%;height:auto;max-width:100%}
figcaption{font-size:.86rem;color:#4d4d4d;margin-top:4px}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:.86rem;margin:6px 0 0;padding:0;list-style:none}
.legend li{display:flex;align-items:center;gap:6px}
.legend svg{width:28px;height:10px}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;background:#999}
details.data{margin-top:6px;font-size:.88rem}
table{border-collapse:collapse;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f1}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;font-size:.78rem;font-weight:600;padding:0 7px;border-radius:10px;border:1.5px solid #777;
margin-left:4px;white-space:nowrap;vertical-align:1px}
.badge.yes{border-color:#009E73;color:#005c43}
.badge.no{border-color:#D55E00;color:#9a3b00}
.badge.unk{border-color:#888;color:#555}
.episode{border:1px solid #d4d4d0;border-left:5px solid #D55E00;border-radius:6px;padding:10px 14px;margin:0 0 12px;break-inside:avoid}
.episode.withdrawal{border-left-color:#E69F00}
.episode .facts{margin:0 0 6px;font-size:.9rem;color:#3d3d3d}
.jump{font-size:.9rem;font-weight:600}
ol.utts{list-style:none;margin:0;padding:0}
.u{position:relative;display:grid;grid-template-columns:5.2em 9em 1fr;gap:0 10px;padding:5px 8px;
border-left:5px solid transparent;border-bottom:1px solid #ececea}
.u .t{color:#5c5c5c;font-variant-numeric:tabular-nums;font-size:.85rem;padding-top:1px}
.u .t a{color:inherit;text-decoration:none}
.u .sp{font-weight:600;overflow-wrap:anywhere}
.u .sp .role{font-weight:400;font-size:.76rem;color:#5c5c5c;margin-left:6px}
.u.cont .sp{visibility:hidden}
.u .tx{overflow-wrap:anywhere;white-space:pre-wrap}
.u .chips{display:inline}
.chip{display:inline-block;font-size:.74rem;line-height:1.35;padding:0 6px;margin:0 0 0 6px;border:1.5px solid #999;
border-radius:9px;white-space:nowrap;vertical-align:1px;color:#1b1b1b}
.eplink{font-size:.74rem;margin-left:8px;white-space:nowrap}
.u.hit{outline:3px solid #0072B2;outline-offset:-3px}
.u:target{outline:3px solid #0072B2;outline-offset:-3px}
.probs{display:none;position:absolute;z-index:5;right:8px;top:calc(100% - 4px);background:#fff;border:1px solid #888;
border-radius:6px;box-shadow:0 3px 10px rgba(0,0,0,.18);padding:6px 10px;font-size:.8rem;min-width:240px}
.u:hover .probs,.u:focus .probs,.u:focus-within .probs{display:block}
.probs>b{display:block;font-size:.75rem;color:#4d4d4d;margin-bottom:2px}
.probs i{display:grid;grid-template-columns:7.5em 1fr 2.6em;align-items:center;gap:6px;font-style:normal}
.probs i b{display:block;height:7px;background:#ececea;border-radius:2px;overflow:hidden}
.probs i b::after{content:"";display:block;height:100%;background:#6b6b6b}
.probs i.on{font-weight:700}
.probs i.on b::after{background:#1b1b1b}
"""
    + "".join(f".b{k}::after{{width:{k * 5}%}}" for k in range(21))
    + """
.filters{display:flex;flex-wrap:wrap;gap:10px 22px;align-items:flex-end;background:#f4f4f1;border:1px solid #dcdcd6;
border-radius:6px;padding:10px 14px;margin:0 0 10px;position:sticky;top:0;z-index:8}
.filters fieldset{border:0;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:4px 12px;align-items:center}
.filters legend{font-weight:600;font-size:.88rem;padding:0;margin-bottom:2px;float:left;width:100%}
.filters label{font-size:.88rem;display:inline-flex;align-items:center;gap:4px;cursor:pointer}
.filters select{font:inherit;font-size:.9rem;padding:2px 4px}
.filters button,.sortable button{font:inherit}
.filters button{font-size:.88rem;padding:2px 10px;cursor:pointer}
#f-count{font-size:.88rem;color:#3d3d3d}
.kbd{font-size:.82rem;color:#5c5c5c;margin:0 0 8px}
footer.bottom{margin-top:40px;border-top:1px solid #dcdcd6;padding:12px 22px 28px;font-size:.84rem;color:#5c5c5c}
.empty{color:#5c5c5c;font-style:italic}
.sortable th button{background:none;border:0;padding:0;font-weight:700;cursor:pointer;text-align:inherit;color:inherit}
.sortable th[aria-sort=ascending] button::after{content:" \\25B2"}
.sortable th[aria-sort=descending] button::after{content:" \\25BC"}
.sortable td .ci{color:#5c5c5c;font-size:.82rem;white-space:nowrap}
.tablewrap{overflow-x:auto;max-width:100%}
table.sortable{width:100%}
table.sortable tbody th{background:none;font-weight:600;overflow-wrap:break-word;min-width:7em}
h3.failed-h{margin-top:18px}
ul.failures{margin:0;padding-left:1.2em;font-size:.9rem;overflow-wrap:anywhere}
ul.failures li{margin:2px 0}
.grid2{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:14px}
.grid2 figure svg{max-width:480px}
.failed td{background:#fdf0ea}
@media (max-width:700px){.u{grid-template-columns:4.4em 1fr}.u .tx{grid-column:1 / -1}}
@media print{
*{-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{font-size:10pt}
.skip,nav.sections,.filters,.probs,.kbd,.jump,.eplink,.noprint{display:none!important}
header.top{background:none;border-bottom:2px solid #000}
.wrap{max-width:none;padding:0}
h2{break-after:avoid}
.u{break-inside:avoid;border-bottom-color:#ddd}
.u:target,.eplink{font-size:.74rem;margin-left:8px;white-space:nowrap}
.u.hit{outline:none}
.u.cont .sp{visibility:visible}
a{color:inherit;text-decoration:none}
.card,.episode,figure{break-inside:avoid}
}
"""
)

REPORT_JS = r"""
(function () {
  "use strict";
  var list = document.getElementById("utts");
  if (!list) { return; }
  var rows = Array.prototype.slice.call(list.querySelectorAll("li.u"));
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[name=marker]"));
  var sel = document.getElementById("f-speaker");
  var count = document.getElementById("f-count");
  var last = null;
  function visible() {  // in document order, which a page may rearrange (the review app does)
    return Array.prototype.filter.call(list.querySelectorAll("li.u"), function (r) { return !r.hidden; });
  }
  function apply() {
    var want = boxes.filter(function (b) { return b.checked; }).map(function (b) { return b.value; });
    var sp = sel ? sel.value : "";
    var n = 0;
    rows.forEach(function (r) {
      var ms = (r.getAttribute("data-m") || "").split(" ");
      var ok = (!sp || r.getAttribute("data-s") === sp) &&
        (!want.length || want.some(function (m) { return ms.indexOf(m) >= 0; }));
      r.hidden = !ok;
      if (ok) { n += 1; }
    });
    if (count) { count.textContent = n + " of " + rows.length + " utterances shown"; }
    var vis = visible();
    if (vis.length && !vis.some(function (r) { return r.tabIndex === 0; })) { setTab(vis[0]); }
  }
  function reset() {
    boxes.forEach(function (b) { b.checked = false; });
    if (sel) { sel.value = ""; }
    apply();
  }
  function setTab(el) {
    rows.forEach(function (r) { r.tabIndex = -1; });
    el.tabIndex = 0;
  }
  function go(id) {
    var el = document.getElementById(id);
    if (!el || !el.classList.contains("u")) { return false; }
    if (el.hidden) { reset(); }
    setTab(el);
    if (last) { last.classList.remove("hit"); }
    el.classList.add("hit");
    last = el;
    el.scrollIntoView({block: "center"});
    el.focus({preventScroll: true});
    return true;
  }
  boxes.forEach(function (b) { b.addEventListener("change", apply); });
  if (sel) { sel.addEventListener("change", apply); }
  var rb = document.getElementById("f-reset");
  if (rb) { rb.addEventListener("click", reset); }
  document.addEventListener("click", function (ev) {
    var a = ev.target && ev.target.closest ? ev.target.closest("a") : null;
    if (!a) { return; }
    var href = a.getAttribute("href") || "";
    if (href.indexOf("#u-") !== 0) { return; }
    if (go(href.slice(1))) {
      ev.preventDefault();
      try { history.replaceState(null, "", href); } catch (e) { /* file: URLs may refuse; harmless */ }
    }
  });
  list.addEventListener("keydown", function (ev) {
    var r = ev.target;
    if (!r.classList || !r.classList.contains("u")) { return; }
    var vis = visible();
    var i = vis.indexOf(r);
    var j = null;
    if (ev.key === "ArrowDown" || ev.key === "j") { j = Math.min(vis.length - 1, i + 1); }
    else if (ev.key === "ArrowUp" || ev.key === "k") { j = Math.max(0, i - 1); }
    else if (ev.key === "Home") { j = 0; }
    else if (ev.key === "End") { j = vis.length - 1; }
    if (j === null || j < 0) { return; }
    ev.preventDefault();
    setTab(vis[j]);
    vis[j].focus();
  });
  apply();
  if (location.hash.indexOf("#u-") === 0) { go(location.hash.slice(1)); }
}());
"""

INDEX_JS = r"""
(function () {
  "use strict";
  var table = document.getElementById("sessions");
  if (!table) { return; }
  var heads = Array.prototype.slice.call(table.querySelectorAll("thead th"));
  heads.forEach(function (th, col) {
    var b = th.querySelector("button");
    if (!b) { return; }
    b.addEventListener("click", function () {
      var asc = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var num = th.getAttribute("data-type") === "num";
      function key(r) {
        var c = r.cells[col];
        var v = c ? (c.getAttribute("data-v") || c.textContent) : "";
        if (num) { var x = parseFloat(v); return isNaN(x) ? null : x; }
        return v.toLowerCase();
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === y) { return 0; }
        if (x === null) { return 1; }
        if (y === null) { return -1; }
        return (x < y ? -1 : 1) * (asc ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
}());
"""


def _css() -> str:
    return BASE_CSS + _marker_css()


def page_css() -> str:
    """The report's style sheet (layout, Okabe-Ito marker colours, transcript rows), for other pages."""
    return _css()


def page(title: str, body: str, js: str, css: str = "", data: Any = None, csp_extra: str = "") -> str:
    """A page in the report's shell and style (`page_css()` plus `css`), pinned by its CSP."""
    return _page(title, body, _css() + css, js, data=data, csp_extra=csp_extra)


# ---- session report -------------------------------------------------------------------------------
def render_report(session: Session, summary: Mapping[str, Any] | None = None) -> str:
    """The whole report for one analysed session as one HTML string (see the module docstring).

    `summary` is the content of summary.json (`alliance_nlp.outputs.summarize(session)`); computed here
    when not given. Missing parts (no classifier run, no estimates, no times) are reported, not errors.
    """
    if summary is None:
        from .outputs import summarize

        summary = summarize(session)
    sid = summary.get("session") or session.id
    utts = session.utterances
    sp_index = {sp_id: i for i, sp_id in enumerate(session.speakers)}
    for u in utts:  # a speaker without a record still gets a filter entry
        if u.speaker not in sp_index:
            sp_index[u.speaker] = len(sp_index)
    classified = any(u.probabilities for u in utts)
    episodes = [e for e in (summary.get("episodes") or []) if isinstance(e, Mapping)]
    ep_of_utt: dict[int, int] = {}
    for e in episodes:
        for i in range(int(e.get("start_utterance", 0)), int(e.get("end_utterance", -1)) + 1):
            ep_of_utt.setdefault(i, int(e.get("index", 0)))

    parts = [
        '<a class="skip" href="#transcript">Skip to transcript</a>',
        _report_header(session, summary, sid),
        '<main class="wrap">',
        _estimates_section(session, summary),
        _trajectory_section(summary),
        _timeline_section(session, sp_index, episodes, classified),
        _episodes_section(session, episodes, sp_index),
        _transcript_section(session, sp_index, classified, ep_of_utt),
        "</main>",
        f'<footer class="bottom wrap">Written by alliance-nlp {_e(__version__)}. This file is self-contained: '
        "it loads nothing from the network. It contains the full transcript; store and share it as you would "
        "the transcript itself.</footer>",
    ]
    return _page(f"Alliance report: {sid}", "\n".join(parts), _css(), REPORT_JS, data={"summary": summary})


def write_report(session: Session, path: str | os.PathLike, summary: Mapping[str, Any] | None = None) -> Path:
    """Write `report.html` (atomically). `path` is the file, or a folder to write report.html into."""
    p = Path(path)
    if p.suffix.lower() not in (".html", ".htm"):
        p = p / "report.html"
    return _write_atomic(p, render_report(session, summary))


def _speaker_label(session: Session, speaker_id: str) -> tuple[str, str]:
    sp = session.speakers.get(speaker_id)
    name = (sp.name or sp.id) if sp else speaker_id
    return name, (sp.role if sp else "unknown")


def _report_header(session: Session, summary: Mapping[str, Any], sid: str) -> str:
    counts = summary.get("counts") or {}
    src = summary.get("source_path") or session.source_path
    fmt = summary.get("source_format") or session.source_format
    sps = []
    for sp in summary.get("speakers") or []:
        if not isinstance(sp, Mapping):
            continue
        conf = sp.get("role_confidence")
        share = sp.get("talk_share")
        sps.append(
            f"{_e(sp.get('name') or sp.get('id'))} ({_e(sp.get('role'))}"
            + (f", role confidence {_num(conf)}" if isinstance(conf, (int, float)) else "")
            + (f", {round(100 * share)}% of words" if isinstance(share, (int, float)) else "")
            + ")"
        )
    header_lines = session.meta.get("header") if isinstance(session.meta.get("header"), list) else []
    bits = [
        f"{counts.get('utterances', len(session.utterances))} utterances",
        f"{counts.get('turns', len(session.turns))} turns",
    ]
    if summary.get("duration_seconds"):
        bits.append(_duration(summary.get("duration_seconds")))
    return (
        '<header class="top"><div class="wrap">'
        f"<h1>Alliance report: {_e(sid)}</h1>"
        + (f'<p class="meta">Source: <code>{_e(src)}</code>' + (f" ({_e(fmt)})" if fmt else "") + "</p>" if src else "")
        + f'<p class="meta">{" · ".join(_e(b) for b in bits)}</p>'
        + (f'<p class="meta">Speakers: {"; ".join(sps)}</p>' if sps else "")
        + (
            f'<p class="meta small">Transcript header: {_e(" | ".join(map(str, header_lines)))}</p>'
            if header_lines
            else ""
        )
        + '<nav class="sections" aria-label="Sections"><a href="#estimates">Estimates</a>'
        '<a href="#trajectory">Trajectory</a><a href="#timeline">Marker timeline</a>'
        '<a href="#episodes">Rupture-repair episodes</a><a href="#transcript">Transcript</a></nav>'
        "</div></header>"
    )


def _scale_svg(est: Mapping[str, float | None], label: str) -> str:
    """A 1-5 axis with the interval as a bar and the estimate as a dot."""
    w, h, x0, x1 = 220, 34, 10, 210

    def x(v: float) -> float:
        return x0 + (min(max(v, 1.0), 5.0) - 1) / 4 * (x1 - x0)

    out = [
        f'<svg viewBox="0 0 {w} {h}" role="img" aria-label="{_e(label)}" focusable="false">',
        f'<line x1="{x0}" y1="14" x2="{x1}" y2="14" stroke="#bbb" stroke-width="1"/>',
    ]
    for t in range(1, 6):
        out.append(
            f'<line x1="{_f(x(t))}" y1="10" x2="{_f(x(t))}" y2="18" stroke="#999"/>'
            f'<text x="{_f(x(t))}" y="31" font-size="10" text-anchor="middle" fill="#555">{t}</text>'
        )
    if est["low"] is not None and est["high"] is not None:
        out.append(
            f'<line x1="{_f(x(est["low"]))}" y1="14" x2="{_f(x(est["high"]))}" y2="14" stroke="#1b1b1b" '
            'stroke-width="5" stroke-linecap="round" opacity=".35"/>'
        )
    if est["estimate"] is not None:
        out.append(
            f'<circle cx="{_f(x(est["estimate"]))}" cy="14" r="6" fill="#1b1b1b" stroke="#fff" stroke-width="1.5"/>'
        )
    out.append("</svg>")
    return "".join(out)


def _estimates_section(session: Session, summary: Mapping[str, Any]) -> str:
    method: Mapping[str, Any] = (
        summary["estimate_method"] if isinstance(summary.get("estimate_method"), Mapping) else {}
    )
    interval = method.get("interval") or "95%"
    scale = method.get("scale") or "WAI-SR item mean (1-5)"
    cards = []
    any_est = False
    for k in SCALES:
        est = _estimate(summary, k)
        name = k.capitalize()
        if est["estimate"] is None:
            cards.append(
                f'<div class="card {k}"><h3>{name}</h3><p class="big">–</p><p class="ci">not estimated</p></div>'
            )
            continue
        any_est = True
        ci = (
            f"{interval} interval {_num(est['low'])}–{_num(est['high'])}"
            if est["low"] is not None and est["high"] is not None
            else "no interval"
        )
        raw = summary.get(k)
        bound = raw.get("bound") if isinstance(raw, Mapping) else None
        if bound in ("low", "high", "both"):
            ci += {"low": ", cut at 1", "high": ", cut at 5", "both": ", cut at 1 and 5"}[bound]
        aria = f"{name}: {_num(est['estimate'])} on the 1 to 5 scale, {ci}"
        cards.append(
            f'<div class="card {k}"><h3>{name}</h3><p class="big">{_num(est["estimate"])}</p>'
            f'<p class="ci">{_e(ci)}</p>{_scale_svg(est, aria)}</div>'
        )
    clf = classifier_info(session, summary)
    rows = [
        ("Scale", scale if any_est else "–"),
        (
            "Interval",
            f"{interval}: error of the mapping plus within-session (block bootstrap) uncertainty" if any_est else "–",
        ),
        (
            "Mapping (markers to WAI-SR)",
            method.get("mapping") or method.get("calibration") or ("–" if not any_est else "unknown"),
        ),
        (
            "Marker model",
            (str(clf.get("model")) + (f" (encoder {clf.get('base_model')})" if clf.get("base_model") else ""))
            if clf.get("model")
            else ("unknown" if any(u.probabilities for u in session.utterances) else "not run"),
        ),
        ("Written by", f"alliance-nlp {__version__}"),
    ]
    ruptures = summary.get("ruptures") if isinstance(summary.get("ruptures"), Mapping) else None
    if ruptures:
        rows.insert(
            4,
            (
                "Rupture episodes",
                f"{ruptures.get('episodes', 0)} ({ruptures.get('repaired', 0)} repaired, "
                f"{ruptures.get('unrepaired', 0)} unrepaired, "
                f"{ruptures.get('resolved', 0)} resolved)",
            ),
        )
    dl = "".join(f"<dt>{_e(a)}</dt><dd>{_e(b)}</dd>" for a, b in rows)
    missing = (
        ""
        if any_est
        else '<p class="empty">No Goal/Task/Bond/Total estimates in this result: the '
        "aggregate step did not run (or the classifier did not, which it needs).</p>"
    )
    caveat = (
        '<aside class="caveat" aria-label="How far to trust these numbers">'
        "<p><strong>Read these numbers as a screen, not a measurement.</strong> They are model estimates of "
        "what the client might report on the WAI-SR, not ratings anyone gave. The markers come from a text "
        "classifier that misses and mislabels many utterances (rupture and repair labels most of all), and the "
        "mapping from markers to scores was fitted on other people's conversations, so for your setting the "
        "estimates can be biased, not only noisy; that is why the intervals are wide.</p>"
        "<p>Read the flagged passages yourself before drawing conclusions, do not use this report for decisions "
        "about a person, and check the estimates against your own ratings (<code>alliance-nlp check-ratings</code>; "
        "<code>alliance-nlp fit-mapping</code> refits the mapping to them) before using them in research. What the model was trained on and "
        f"where it fails: the model card, <code>{_e(MODEL_CARD)}</code>, section "
        f"“{_e(MODEL_CARD_SECTION)}”.</p></aside>"
    )
    return (
        f'<section id="estimates" aria-labelledby="h-est"><h2 id="h-est">Session estimates</h2>'
        f'<div class="cards">{"".join(cards)}</div>{missing}{_indices_table(summary)}'
        f'<dl class="method">{dl}</dl>{caveat}</section>'
    )


INDEX_NAMES = {"goal": "Goal", "task": "Task", "bond": "Bond", "rupture": "Rupture", "repair": "Repair"}


def _indices_table(summary: Mapping[str, Any]) -> str:
    """The transparent marker indices: markers per 100 utterances, with this session's interval."""
    idx = summary.get("indices")
    if not isinstance(idx, Mapping) or not idx:
        return ""
    rows = []
    for k, name in INDEX_NAMES.items():
        v = idx.get(k)
        if not isinstance(v, Mapping):
            continue
        rows.append(
            f'<tr><th scope="row">{_e(name)}</th><td>{_num(v.get("value"), 1)}</td>'
            f"<td>{_num(v.get('low'), 1)}–{_num(v.get('high'), 1)}</td>"
            f"<td>{_num(v.get('therapist'), 1)}</td><td>{_num(v.get('client'), 1)}</td></tr>"
        )
    return (
        '<table class="indices"><caption>Marker indices: expected markers per 100 utterances (no ratings '
        'needed; the interval is this session\'s sampling uncertainty only)</caption><thead><tr><th scope="col">'
        'index</th><th scope="col">all</th><th scope="col">95% interval</th><th scope="col">therapist</th>'
        f'<th scope="col">client</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def _trajectory_section(summary: Mapping[str, Any]) -> str:
    traj: Mapping[str, Any] = summary["trajectory"] if isinstance(summary.get("trajectory"), Mapping) else {}
    windows = [
        w
        for w in (traj.get("windows") or [])
        if isinstance(w, Mapping) and _estimate(w, "total")["estimate"] is not None
    ]
    head = '<section id="trajectory" aria-labelledby="h-traj"><h2 id="h-traj">Within-session trajectory</h2>'
    if not windows:
        return head + '<p class="empty">No trajectory in this result (the aggregate step did not run).</p></section>'
    by_time = traj.get("by") == "time"
    W, H, ml, mr, mt, mb = 760, 250, 42, 14, 12, 44

    def xval(w: Mapping[str, Any], which: str) -> float:
        """Minutes on the clock, or turn number for turn windows (whose start/end may be None)."""
        if by_time:
            return float(w.get(which) or 0.0) / 60.0
        turn = w.get(f"turn_{which}")
        return float(turn if turn is not None else (w.get(which) or 0.0))

    lo = min(xval(w, "start") for w in windows)
    hi = max(xval(w, "end") for w in windows)
    if hi <= lo:
        hi = lo + 1
    pw, ph = W - ml - mr, H - mt - mb

    def X(v: float) -> float:
        return ml + (v - lo) / (hi - lo) * pw

    def Y(v: float) -> float:
        return mt + (5 - min(max(v, 1.0), 5.0)) / 4 * ph

    mids = [(xval(w, "start") + xval(w, "end")) / 2 for w in windows]
    unit = "minutes" if by_time else "turns"
    out = [
        f'<svg viewBox="0 0 {W} {H}" role="img" aria-labelledby="traj-title" focusable="false">'
        f'<title id="traj-title">Estimates per {"5-minute" if by_time else "block of turns"} window; '
        "select a point to go to the window's first utterance</title>"
    ]
    for level in range(1, 6):
        out.append(
            f'<line x1="{ml}" x2="{W - mr}" y1="{_f(Y(level))}" y2="{_f(Y(level))}" stroke="#e2e2de"/>'
            f'<text x="{ml - 8}" y="{_f(Y(level) + 4)}" font-size="11" text-anchor="end" fill="#555">'
            f"{level}</text>"
        )
    for tick in _ticks(lo, hi, 8):
        out.append(
            f'<line x1="{_f(X(tick))}" x2="{_f(X(tick))}" y1="{mt + ph}" y2="{mt + ph + 5}" stroke="#777"/>'
            f'<text x="{_f(X(tick))}" y="{mt + ph + 17}" font-size="11" text-anchor="middle" fill="#555">'
            f"{_f(tick)}</text>"
        )
    out.append(
        f'<text x="{ml + pw / 2:.0f}" y="{H - 6}" font-size="11" text-anchor="middle" fill="#333">'
        f"{'minutes into the session' if by_time else 'turn'}</text>"
    )
    # interval band of the total
    tot = [_estimate(w, "total") for w in windows]
    if all(t["low"] is not None and t["high"] is not None for t in tot):
        if len(windows) == 1:
            x = X(mids[0])
            out.append(
                f'<rect x="{_f(x - 6)}" width="12" y="{_f(Y(tot[0]["high"]))}" '
                f'height="{_f(Y(tot[0]["low"]) - Y(tot[0]["high"]))}" fill="#000" opacity=".12"/>'
            )
        else:
            band = [f"{_f(X(m))},{_f(Y(t['high']))}" for m, t in zip(mids, tot)]
            band += [f"{_f(X(m))},{_f(Y(t['low']))}" for m, t in reversed(list(zip(mids, tot)))]
            out.append(f'<polygon points="{" ".join(band)}" fill="#000" opacity=".10"/>')
    for k in ("goal", "task", "bond", "total"):
        pts = [
            (X(m), Y(_estimate(w, k)["estimate"]))
            for m, w in zip(mids, windows)
            if _estimate(w, k)["estimate"] is not None
        ]
        if len(pts) > 1:
            dash = f' stroke-dasharray="{DASH[k]}"' if DASH[k] else ""
            out.append(
                f'<polyline points="{" ".join(f"{_f(a)},{_f(b)}" for a, b in pts)}" fill="none" '
                f'stroke="{PALETTE[k]}" stroke-width="{3 if k == "total" else 1.8}"{dash}/>'
            )
    for m, w in zip(mids, windows):
        te = _estimate(w, "total")
        span = (
            f"{_hms(w.get('start'))}–{_hms(w.get('end'))}"
            if by_time
            else f"turns {w.get('turn_start', w.get('start'))}–{w.get('turn_end', w.get('end'))}"
        )
        nr = int(w.get("ruptures") or 0)
        label = (
            f"Window {int(w.get('index', 0)) + 1} ({span}): total {_num(te['estimate'])} "
            f"[{_num(te['low'])}, {_num(te['high'])}], goal {_num(_estimate(w, 'goal')['estimate'])}, "
            f"task {_num(_estimate(w, 'task')['estimate'])}, bond {_num(_estimate(w, 'bond')['estimate'])}; "
            f"{nr} rupture episode{'s' if nr != 1 else ''}"
        )
        out.append(
            f'<a href="#u-{int(w.get("utt_start") or 0)}" aria-label="{_e(label)}"><title>{_e(label)}</title>'
            f'<circle cx="{_f(X(m))}" cy="{_f(Y(te["estimate"]))}" r="5.5" fill="#000" stroke="#fff" '
            'stroke-width="1.5"/></a>'
        )
        if nr:
            x, y = X(m), mt + ph - 4
            out.append(
                f'<path d="M{_f(x - 6)},{_f(y)} L{_f(x + 6)},{_f(y)} L{_f(x)},{_f(y - 10)} Z" '
                f'fill="{PALETTE["rupture_confrontation"]}"/><text x="{_f(x + 8)}" y="{_f(y)}" '
                f'font-size="10" fill="#9a3b00">{nr}</text>'
            )
    out.append("</svg>")
    legend = "".join(
        f'<li><svg viewBox="0 0 28 10" aria-hidden="true"><line x1="0" y1="5" x2="28" y2="5" stroke="{PALETTE[k]}" '
        f'stroke-width="{3 if k == "total" else 2}"'
        + (f' stroke-dasharray="{DASH[k]}"' if DASH[k] else "")
        + f"/></svg>{k.capitalize()}</li>"
        for k in ("total", "goal", "task", "bond")
    )
    legend += (
        '<li><svg viewBox="0 0 28 10" aria-hidden="true"><rect width="28" height="10" fill="#000" '
        'opacity=".12"/></svg>Total interval</li>'
        f'<li><svg viewBox="0 0 28 10" aria-hidden="true"><path d="M8,10 L20,10 L14,0 Z" '
        f'fill="{PALETTE["rupture_confrontation"]}"/></svg>Rupture episodes starting in the window</li>'
    )
    table = "".join(
        f"<tr><td>{int(w.get('index', 0)) + 1}</td><td>"
        + (
            _e(f"{_hms(w.get('start'))}–{_hms(w.get('end'))}")
            if by_time
            else _e(f"{w.get('turn_start', w.get('start'))}–{w.get('turn_end', w.get('end'))}")
        )
        + f'</td><td><a href="#u-{int(w.get("utt_start") or 0)}">{int(w.get("utt_start") or 0)}</a></td>'
        + "".join(f'<td class="n">{_num(_estimate(w, k)["estimate"])}</td>' for k in SCALES)
        + f'<td class="n">{_num(_estimate(w, "total")["low"])}–{_num(_estimate(w, "total")["high"])}</td>'
        f'<td class="n">{int(w.get("ruptures") or 0)}</td></tr>'
        for w in windows
    )
    return (
        head + f'<figure>{"".join(out)}<ul class="legend">{legend}</ul>'
        f"<figcaption>Each point is one {'5-minute window' if by_time else 'block of turns'} "
        f"(x: {unit}); estimates from a short stretch of talk are much less certain than the session's. "
        "Select a point to read that stretch of the transcript.</figcaption></figure>"
        '<details class="data"><summary>Trajectory as a table</summary><table><thead><tr><th>Window</th>'
        f'<th>{"Time" if by_time else "Turns"}</th><th>First utterance</th><th class="n">Goal</th>'
        '<th class="n">Task</th><th class="n">Bond</th><th class="n">Total</th><th class="n">Total interval</th>'
        f'<th class="n">Ruptures</th></tr></thead><tbody>{table}</tbody></table></details></section>'
    )


def _utt_times(session: Session) -> list[float] | None:
    """Start time per utterance, untimed ones carried forward; None when the session has no times."""
    utts = session.utterances
    if not any(u.start is not None for u in utts):
        return None
    last = next(u.start for u in utts if u.start is not None)
    out = []
    for u in utts:
        last = u.start if u.start is not None else last
        out.append(float(last))
    return out


def _timeline_section(session: Session, sp_index: dict[str, int], episodes: list, classified: bool) -> str:
    head = '<section id="timeline" aria-labelledby="h-tl"><h2 id="h-tl">Marker timeline by speaker</h2>'
    utts = session.utterances
    if not classified or not utts:
        return head + '<p class="empty">No markers in this result (the classifier did not run).</p></section>'
    times = _utt_times(session)
    n = len(utts)
    if times is not None:
        ends = [(u.end if u.end is not None else t) for u, t in zip(utts, times)]
        lo, hi = min(times), max(max(ends), max(times))
        if hi <= lo:
            hi = lo + 1
    else:
        ends, lo, hi = [], 0.0, float(max(n, 1))
    ids = sorted(sp_index, key=lambda sid: sp_index[sid])
    names = {sid: _speaker_label(session, sid) for sid in ids}
    lane, gap, ml, mr, mt = 12, 10, 168, 12, 8
    W = 860
    rows_y: dict[tuple[str, str], float] = {}
    y = mt
    for sid in ids:
        for lab in LABELS:
            rows_y[(sid, lab)] = y
            y += lane
        y += gap
    ph = y - gap
    H = ph + 36
    pw = W - ml - mr

    def X(v: float) -> float:
        return ml + (v - lo) / (hi - lo) * pw

    out = [
        f'<svg viewBox="0 0 {W} {H:.0f}" role="img" aria-labelledby="tl-title" focusable="false">'
        '<title id="tl-title">Where each marker occurs, one row per speaker and marker; select a mark to go to '
        "its utterance</title>"
    ]
    for e in episodes:  # episode spans as background bands, linking to the episode
        a, b = int(e.get("start_utterance", 0)), int(e.get("end_utterance", 0))
        if not (0 <= a < n):
            continue
        b = min(max(a, b), n - 1)
        x0 = X(times[a]) if times else X(a)
        x1 = X(max(ends[b], times[b])) if times else X(b + 1)
        lab = f"Rupture episode {int(e.get('index', 0)) + 1} ({e.get('type', '')})"
        out.append(
            f'<a href="#ep-{int(e.get("index", 0))}" aria-label="{_e(lab)}"><title>{_e(lab)}</title>'
            f'<rect x="{_f(x0)}" y="{mt - 4}" width="{_f(max(x1 - x0, 3))}" height="{_f(ph - mt + 8)}" '
            f'fill="{TINT["rupture_confrontation"]}" stroke="{PALETTE["rupture_confrontation"]}" '
            'stroke-width=".6" stroke-dasharray="3 2"/></a>'
        )
    for sid in ids:
        name, role = names[sid]
        y0 = rows_y[(sid, LABELS[0])]
        out.append(
            f'<text x="4" y="{_f(y0 + 10)}" font-size="11.5" font-weight="700" fill="#1b1b1b">'
            f"{_e(name[:18])}</text>"
            f'<text x="4" y="{_f(y0 + 23)}" font-size="10" fill="#555">{_e(role)}</text>'
        )
        for lab in LABELS:
            yy = rows_y[(sid, lab)]
            out.append(
                f'<line x1="{ml}" x2="{W - mr}" y1="{_f(yy + lane / 2)}" y2="{_f(yy + lane / 2)}" '
                'stroke="#ececea"/>'
                f'<text x="{ml - 6}" y="{_f(yy + 9)}" font-size="9.5" text-anchor="end" fill="#444">'
                f"{SHORT[lab]}</text>"
            )
    for i, u in enumerate(utts):
        if not u.markers:
            continue
        if times is not None:
            x0, x1 = X(times[i]), X(max(ends[i], times[i]))
        else:
            x0, x1 = X(i), X(i + 1)
        w = max(x1 - x0, 2.5)
        who = names.get(u.speaker, (u.speaker, ""))[0]
        for lab in u.markers:
            if (u.speaker, lab) not in rows_y:
                continue
            p = u.probabilities.get(lab)
            tip = f"#{i} {who}: {SHORT.get(lab, lab)}" + (f" (p {p:.2f})" if isinstance(p, (int, float)) else "")
            out.append(
                f'<a href="#u-{i}"><title>{_e(tip)}</title><rect x="{_f(x0)}" y="{_f(rows_y[(u.speaker, lab)] + 1)}" '
                f'width="{_f(w)}" height="{lane - 2}" fill="{PALETTE[lab]}"/></a>'
            )
    for t in _ticks(lo / 60 if times else lo, hi / 60 if times else hi, 10):
        x = X(t * 60 if times else t)
        out.append(
            f'<line x1="{_f(x)}" x2="{_f(x)}" y1="{_f(ph + 2)}" y2="{_f(ph + 7)}" stroke="#777"/>'
            f'<text x="{_f(x)}" y="{_f(ph + 19)}" font-size="10.5" text-anchor="middle" fill="#555">'
            f"{_f(t)}</text>"
        )
    out.append(
        f'<text x="{ml + pw / 2:.0f}" y="{H - 3:.0f}" font-size="11" text-anchor="middle" fill="#333">'
        f"{'minutes into the session' if times else 'utterance'}</text></svg>"
    )
    legend = "".join(f'<li><span class="sw {lab}"></span>{_e(SHORT[lab])}</li>' for lab in LABELS)
    legend += (
        f'<li><svg viewBox="0 0 28 10" aria-hidden="true"><rect x="1" y="1" width="26" height="8" '
        f'fill="{TINT["rupture_confrontation"]}" stroke="{PALETTE["rupture_confrontation"]}" '
        'stroke-dasharray="3 2"/></svg>rupture-repair episode</li>'
    )
    axis = "time from the transcript" if times else "utterance order (the transcript has no times)"
    return (
        head + f'<figure>{"".join(out)}<ul class="legend">{legend}</ul><figcaption>One mark per utterance '
        f"that carries the marker, placed by {axis}. Select a mark to read the utterance, or a shaded band "
        "to read the episode.</figcaption></figure></section>"
    )


def _utt_row(
    session: Session,
    i: int,
    u: Utterance,
    sp_index: dict[str, int],
    classified: bool,
    *,
    anchor: bool,
    cont: bool = False,
    extra_class: str = "",
    episode: int | None = None,
) -> str:
    """One utterance as a list item; `anchor` rows are the transcript's (with ids), others are context copies."""
    name, role = _speaker_label(session, u.speaker)
    marks = [m for m in LABELS if m in u.markers]
    cls = ["u"]
    if marks:
        primary = max(marks, key=lambda m: u.probabilities.get(m, 0.0))
        cls.append(f"p-{primary}")
    if cont:
        cls.append("cont")
    if extra_class:
        cls.append(extra_class)
    t = _hms(u.start) if u.start is not None else f"#{i}"
    chips = "".join(f'<span class="chip {m}">{_e(SHORT[m])}</span>' for m in marks)
    if episode is not None:  # back from the transcript to the episode this utterance belongs to
        chips += f'<a class="eplink" href="#ep-{episode}">episode {episode + 1}</a>'
    probs = ""
    if classified:
        lines = []
        for lab in LABELS:
            p = u.probabilities.get(lab)
            if not isinstance(p, (int, float)):
                continue
            on = ' class="on"' if lab in marks else ""
            lines.append(f'<i{on}>{SHORT[lab]}<b class="b{int(round(min(max(p, 0.0), 1.0) * 20))}"></b>{p:.2f}</i>')
        probs = f'<span class="probs" role="note"><b>#{i} marker probabilities</b>{"".join(lines)}</span>'
    attrs = (
        f' id="u-{i}" tabindex="-1" data-s="{sp_index.get(u.speaker, 0)}" data-m="{" ".join(marks)}"' if anchor else ""
    )
    link = f'<a href="#u-{i}" title="Go to utterance #{i} in the transcript">{_e(t)}</a>' if not anchor else _e(t)
    return (
        f'<li class="{" ".join(cls)}"{attrs}><span class="t">{link}</span>'
        f'<span class="sp">{_e(name)}<span class="role">{_e(role)}</span></span>'
        f'<span class="tx">{_e(u.text)}{chips}</span>{probs}</li>'
    )


def _episodes_section(session: Session, episodes: list, sp_index: dict[str, int]) -> str:
    head = (
        '<section id="episodes" aria-labelledby="h-ep"><h2 id="h-ep">Rupture-repair episodes</h2>'
        '<p class="small muted">A rupture episode is a run of utterances tagged as withdrawal or '
        "confrontation. <em>Repaired</em>: a repair marker inside the run or within a few utterances after "
        "it. <em>Resolved</em>: the client's next utterances after it carry collaborative markers and no "
        "rupture marker.</p>"
    )
    if not episodes:
        has = any(u.probabilities for u in session.utterances)
        return head + (
            f'<p class="empty">{"No rupture episodes found." if has else "No markers in this result."}</p></section>'
        )
    utts = session.utterances
    n = len(utts)
    items = []
    for e in episodes:
        k = int(e.get("index", 0))
        a, b = int(e.get("start_utterance", 0)), int(e.get("end_utterance", 0))
        rep = e.get("repair_utterance")
        hi = max(b, rep if isinstance(rep, int) else b)
        kind = str(e.get("type", ""))
        repaired = bool(e.get("repaired"))
        resolved = e.get("resolved")
        badges = (
            f'<span class="badge {"yes" if repaired else "no"}">{"repaired" if repaired else "not repaired"}'
            "</span>"
            + (
                '<span class="badge yes">resolved</span>'
                if resolved is True
                else '<span class="badge no">not resolved</span>'
                if resolved is False
                else '<span class="badge unk">resolution unknown</span>'
            )
        )
        when = ""
        if e.get("start") is not None:
            when = f" · {_hms(e.get('start'))}" + (f"–{_hms(e.get('end'))}" if e.get("end") is not None else "")
        facts = (
            f"Utterances {a}–{b}{when} · by {_e(', '.join(map(str, e.get('by') or [])) or 'unknown')}"
            f" · peak rupture probability {_num(e.get('peak_probability'))}"
            + (f' · repair at <a href="#u-{rep}">utterance {rep}</a>' if isinstance(rep, int) else "")
            + ("" if resolved is not None else " · the session ends before the client says enough to tell")
        )
        ctx = []
        prev_speaker = None
        for i in range(max(0, a - 2), min(n, hi + 3)):
            u = utts[i]
            extra = "in-ep" if a <= i <= b else ("rep" if i == rep else "")
            ctx.append(
                _utt_row(
                    session, i, u, sp_index, False, anchor=False, cont=(u.speaker == prev_speaker), extra_class=extra
                )
            )
            prev_speaker = u.speaker
        items.append(
            f'<article class="episode {_e(kind)}" id="ep-{k}" aria-labelledby="ep-{k}-h">'
            f'<h3 id="ep-{k}-h">Episode {k + 1}: {_e(kind)} {badges}</h3><p class="facts">{facts}</p>'
            f'<ol class="utts ctx" aria-label="Utterances {max(0, a - 2)} to {min(n, hi + 3) - 1}">{"".join(ctx)}</ol>'
            f'<p><a class="jump" href="#u-{a}">Go to utterance {a} in the transcript</a></p></article>'
        )
    return head + "".join(items) + "</section>"


def _speaker_index(session: Session) -> dict[str, int]:
    sp_index = {sp_id: i for i, sp_id in enumerate(session.speakers)}
    for u in session.utterances:  # a speaker without a record still gets a filter entry
        if u.speaker not in sp_index:
            sp_index[u.speaker] = len(sp_index)
    return sp_index


def _episode_dicts(summary: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [e for e in (summary.get("episodes") or []) if isinstance(e, Mapping)]


def transcript_html(session: Session, summary: Mapping[str, Any]) -> str:
    """The report's transcript section (filters, one escaped row per utterance with id `u-<index>`), for
    pages that build on it; REPORT_JS drives its filters and keyboard navigation."""
    ep_of_utt: dict[int, int] = {}
    for e in _episode_dicts(summary):
        for i in range(int(e.get("start_utterance", 0)), int(e.get("end_utterance", -1)) + 1):
            ep_of_utt.setdefault(i, int(e.get("index", 0)))
    classified = any(u.probabilities for u in session.utterances)
    return _transcript_section(session, _speaker_index(session), classified, ep_of_utt)


def episodes_html(session: Session, summary: Mapping[str, Any]) -> str:
    """The report's rupture-repair episodes section."""
    return _episodes_section(session, _episode_dicts(summary), _speaker_index(session))


def _transcript_section(session: Session, sp_index: dict[str, int], classified: bool, ep_of_utt: dict[int, int]) -> str:
    utts = session.utterances
    counts = {lab: sum(lab in u.markers for u in utts) for lab in LABELS}
    boxes = (
        "".join(
            f'<label><input type="checkbox" name="marker" value="{lab}"><span class="sw {lab}"></span>'
            f"{_e(SHORT[lab])} ({counts[lab]})</label>"
            for lab in LABELS
        )
        if classified
        else ""
    )
    opts = "".join(
        f'<option value="{i}">{_e(_speaker_label(session, sid)[0])} ({_e(_speaker_label(session, sid)[1])})</option>'
        for sid, i in sorted(sp_index.items(), key=lambda kv: kv[1])
    )
    filters = (
        '<div class="filters" role="group" aria-label="Filter the transcript">'
        + (
            f"<fieldset><legend>Show utterances tagged with (none ticked: all)</legend>{boxes}</fieldset>"
            if classified
            else ""
        )
        + f'<label>Speaker <select id="f-speaker"><option value="">all speakers</option>{opts}</select></label>'
        '<button type="button" id="f-reset">Show all</button>'
        f'<span id="f-count" role="status" aria-live="polite">{len(utts)} of {len(utts)} utterances shown</span></div>'
    )
    rows = []
    prev = None
    for i, (ti, _turn, u) in enumerate(session.iter_utterances()):
        rows.append(
            _utt_row(session, i, u, sp_index, classified, anchor=True, cont=(prev == ti), episode=ep_of_utt.get(i))
        )
        prev = ti
    note = (
        ""
        if classified
        else '<p class="empty">The classifier did not run: the transcript is shown without markers.</p>'
    )
    return (
        '<section id="transcript" aria-labelledby="h-tr"><h2 id="h-tr">Transcript</h2>'
        + note
        + filters
        + '<p class="kbd">Hover over or focus an utterance for its marker probabilities (bold: tagged). In the list, '
        "<kbd>↑</kbd>/<kbd>↓</kbd> (or <kbd>k</kbd>/<kbd>j</kbd>) move between utterances.</p>"
        + f'<ol class="utts" id="utts" aria-label="Utterances">{"".join(rows)}</ol></section>'
    )


# ---- batch index ------------------------------------------------------------------------------------
def collect_entries(
    outdir: str | os.PathLike, folders: Iterable[str | os.PathLike] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Sessions (`*/summary.json`, with report.html beside it when present) and failures
    (`batch_report.json`) of a results folder, as `write_index` takes them. `folders` limits the
    sessions to those output folders (say, the `outputs` of this run's batch report), so results left
    in `outdir` by an earlier run are not listed."""
    root = Path(outdir)
    entries = []
    found = (
        sorted(root.rglob("summary.json"))
        if folders is None
        else [Path(d) / "summary.json" for d in folders if (Path(d) / "summary.json").is_file()]
    )
    for f in found:
        try:
            summary = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        try:
            rel = f.parent.resolve().relative_to(root.resolve())
        except ValueError:  # a folder outside outdir: link by absolute path
            rel = f.parent.resolve()
        report = f.parent / "report.html"
        entries.append(
            {
                "session": summary.get("session") or f.parent.name,
                "name": rel.as_posix() if str(rel) != "." else (summary.get("session") or f.parent.name),
                "href": (rel / "report.html").as_posix()
                if report.is_file() and not rel.is_absolute()
                else report.resolve().as_uri()
                if report.is_file()
                else None,
                "summary": summary,
            }
        )
    failures: list[dict[str, Any]] = []
    batch = root / "batch_report.json"
    if batch.is_file():
        try:
            failures = list(json.loads(batch.read_text(encoding="utf-8")).get("failed") or [])
        except (OSError, ValueError):
            failures = []
    return entries, failures


def read_clients(path: str | os.PathLike) -> dict[str, tuple[str, str]]:
    """session -> (client, order) from a CSV with `session`, `client` and optional `order` columns
    (the file `alliance-nlp course --clients` reads)."""
    out: dict[str, tuple[str, str]] = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        for row in csv.DictReader(fh):
            if row.get("session") and row.get("client"):
                out[row["session"]] = (row["client"], row.get("order") or row["session"])
    return out


def render_index(
    entries: Iterable[Mapping[str, Any]],
    failures: Iterable[Mapping[str, Any]] = (),
    clients: Mapping[str, Any] | str | os.PathLike | None = None,
    title: str = "Alliance results",
) -> str:
    """The batch index as HTML: a sortable table of sessions linking to their reports, distribution plots,
    and a course plot per client with several sessions.

    entries: dicts with `session` (id), `summary` (summary.json content), optional `href` (report link,
    relative to the index) and `name` (folder). failures: `{"file", "error"}` dicts (batch_report.json).
    clients: session -> client, or session -> (client, order), or a CSV path (see `read_clients`);
    without it no course is drawn, since sessions of different clients must not be joined into one line.
    """
    ents = [dict(e) for e in entries]
    fails = [dict(f) for f in failures]
    mapping = read_clients(clients) if clients is not None and not isinstance(clients, Mapping) else clients
    body = [
        '<a class="skip" href="#sessions">Skip to the table</a>',
        '<header class="top"><div class="wrap">'
        f"<h1>{_e(title)}</h1>"
        f'<p class="meta">{len(ents)} session{"s" if len(ents) != 1 else ""} analysed'
        + (f", {len(fails)} failed" if fails else "")
        + "</p>"
        '<nav class="sections" aria-label="Sections"><a href="#table">Sessions</a>'
        '<a href="#distributions">Distributions</a><a href="#courses">Courses</a></nav></div></header>',
        '<main class="wrap">',
        _index_table(ents, fails),
        _distributions(ents),
        _courses(ents, mapping),
        _index_caveat(),
        "</main>",
        f'<footer class="bottom wrap">Written by alliance-nlp {_e(__version__)}; self-contained (loads nothing '
        "from the network).</footer>",
    ]
    data = {
        "sessions": [
            {
                "session": e.get("session"),
                "href": e.get("href"),
                **{k: _estimate(e.get("summary") or {}, k) for k in SCALES},
                "ruptures": (e.get("summary") or {}).get("ruptures"),
            }
            for e in ents
        ],
        "failed": fails,
    }
    return _page(title, "\n".join(body), _css(), INDEX_JS, data=data)


def write_index(
    outdir: str | os.PathLike,
    entries: Iterable[Mapping[str, Any]] | None = None,
    failures: Iterable[Mapping[str, Any]] | None = None,
    clients: Mapping[str, Any] | str | os.PathLike | None = None,
    folders: Iterable[str | os.PathLike] | None = None,
) -> Path:
    """Write `outdir/index.html`. Entries and failures default to what `collect_entries(outdir, folders)`
    finds; `clients` as in `render_index`."""
    out = Path(outdir)
    if entries is None or failures is None:
        found, failed = collect_entries(out, folders)
        entries = found if entries is None else entries
        failures = failed if failures is None else failures
    return _write_atomic(out / "index.html", render_index(entries, failures, clients))


def _index_table(entries: list[dict], failures: list[dict]) -> str:
    def th(label: str, kind: str = "num", cls: str = "n") -> str:
        return f'<th scope="col" class="{cls}" data-type="{kind}"><button type="button">{_e(label)}</button></th>'

    head = (
        th("Session", "text", "")
        + th("Utterances")
        + th("Minutes")
        + "".join(th(k.capitalize()) for k in SCALES)
        + th("Rupture episodes")
        + th("Repaired")
        + th("Status", "text", "")
    )
    rows = []
    for e in entries:
        s = e.get("summary") or {}
        sid = e.get("session") or e.get("name")
        name = (
            _e(sid)
            if not e.get("name") or e.get("name") == sid
            else f'{_e(sid)} <span class="muted small">({_e(e["name"])})</span>'
        )
        link = f'<a href="{_e(e["href"])}">{name}</a>' if e.get("href") else name
        cells = [
            f'<th scope="row" data-v="{_e(sid)}">{link}</th>',
            f'<td class="n">{_e((s.get("counts") or {}).get("utterances", ""))}</td>',
        ]
        dur = s.get("duration_seconds")
        cells.append(f'<td class="n" data-v="{dur / 60 if dur else ""}">{_num(dur / 60, 0) if dur else "–"}</td>')
        for k in SCALES:
            est = _estimate(s, k)
            ci = (
                f' <span class="ci">[{_num(est["low"])}, {_num(est["high"])}]</span>'
                if est["low"] is not None and est["high"] is not None
                else ""
            )
            cells.append(
                f'<td class="n" data-v="{"" if est["estimate"] is None else est["estimate"]}">'
                f"{_num(est['estimate'])}{ci}</td>"
            )
        r = s.get("ruptures") or {}
        for k in ("episodes", "repaired"):
            cells.append(f'<td class="n">{_e(r.get(k, "–"))}</td>')
        status = "ok" if _estimate(s, "total")["estimate"] is not None else "no estimates"
        cells.append(f"<td>{status}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    for n, f in enumerate(failures):
        fname = Path(str(f.get("file", ""))).name or str(f.get("file", ""))
        rows.append(
            f'<tr class="failed"><th scope="row" data-v="{_e(fname)}">{_e(fname)}</th>'
            + '<td class="n">–</td>' * 8
            + f'<td><a href="#failed-{n}">failed</a></td></tr>'
        )
    if not rows:
        rows.append('<tr><td colspan="10" class="empty">No sessions found.</td></tr>')
    return (
        '<section id="table" aria-labelledby="h-tab"><h2 id="h-tab">Sessions</h2>'
        '<p class="small muted">Estimates on the WAI-SR metric (1-5) with their intervals in brackets. Select a '
        "column heading to sort; select a session to open its report.</p>"
        f'<div class="tablewrap"><table class="sortable" id="sessions"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{_failures(failures)}</section>"
    )


def _failures(failures: list[dict]) -> str:
    if not failures:
        return ""
    items = "".join(
        f'<li id="failed-{k}"><code>{_e(f.get("file", ""))}</code>: {_e(f.get("error", ""))}</li>'
        for k, f in enumerate(failures)
    )
    return (
        f'<h3 class="failed-h">Inputs that failed ({len(failures)}, from batch_report.json)</h3>'
        f'<ul class="failures">{items}</ul>'
    )


def _strip_svg(entries: list[dict], key: str) -> str:
    """Dot strip of one scale's session estimates on 1-5, intervals as faint bars, median marked."""
    pts = [(e, _estimate(e.get("summary") or {}, key)) for e in entries]
    pts = [(e, est) for e, est in pts if est["estimate"] is not None]
    W, H, ml, mr = 340, 110, 14, 14
    pw = W - ml - mr

    def X(v: float) -> float:
        return ml + (min(max(v, 1.0), 5.0) - 1) / 4 * pw

    out = [
        f'<svg viewBox="0 0 {W} {H}" role="img" aria-label="{_e(key.capitalize())} estimates of '
        f'{len(pts)} sessions on the 1 to 5 scale" focusable="false">'
    ]
    for t in range(1, 6):
        out.append(
            f'<line x1="{_f(X(t))}" x2="{_f(X(t))}" y1="8" y2="{H - 24}" stroke="#e2e2de"/>'
            f'<text x="{_f(X(t))}" y="{H - 10}" font-size="11" text-anchor="middle" fill="#555">{t}</text>'
        )
    rows = max(1, min(len(pts), 12))
    for i, (e, est) in enumerate(sorted(pts, key=lambda p: p[1]["estimate"])):
        y = 14 + (i % rows) * ((H - 44) / rows)
        label = f"{e.get('session')}: {key} {_num(est['estimate'])}" + (
            f" [{_num(est['low'])}, {_num(est['high'])}]" if est["low"] is not None else ""
        )
        dot = (
            f"<title>{_e(label)}</title>"
            + (
                f'<line x1="{_f(X(est["low"]))}" x2="{_f(X(est["high"]))}" y1="{_f(y)}" y2="{_f(y)}" '
                f'stroke="{PALETTE[key]}" stroke-width="1.5" opacity=".35"/>'
                if est["low"] is not None and est["high"] is not None
                else ""
            )
            + f'<circle cx="{_f(X(est["estimate"]))}" cy="{_f(y)}" r="4.5" fill="{PALETTE[key]}" '
            'stroke="#fff" stroke-width="1"/>'
        )
        out.append(
            f'<a href="{_e(e["href"])}" aria-label="{_e(label)}">{dot}</a>' if e.get("href") else f"<g>{dot}</g>"
        )
    if pts:
        vals = sorted(est["estimate"] for _, est in pts)
        med = vals[len(vals) // 2] if len(vals) % 2 else (vals[len(vals) // 2 - 1] + vals[len(vals) // 2]) / 2
        right = X(med) > W - 90
        out.append(
            f'<line x1="{_f(X(med))}" x2="{_f(X(med))}" y1="6" y2="{H - 24}" stroke="#1b1b1b" '
            f'stroke-width="2" stroke-dasharray="4 3"/><text x="{_f(X(med) + (-4 if right else 4))}" y="9" '
            f'font-size="10.5" fill="#1b1b1b" text-anchor="{"end" if right else "start"}">median {_num(med)}'
            "</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _distributions(entries: list[dict]) -> str:
    head = '<section id="distributions" aria-labelledby="h-dist"><h2 id="h-dist">Distributions across sessions</h2>'
    if not any(_estimate(e.get("summary") or {}, "total")["estimate"] is not None for e in entries):
        return head + '<p class="empty">No session estimates to plot.</p></section>'
    figs = "".join(f"<figure><h3>{k.capitalize()}</h3>{_strip_svg(entries, k)}</figure>" for k in SCALES)
    counts = [
        int((e.get("summary") or {}).get("ruptures", {}).get("episodes", 0) or 0)
        for e in entries
        if isinstance((e.get("summary") or {}).get("ruptures"), Mapping)
    ]
    hist = ""
    if counts:
        top = max(counts)
        bins = [counts.count(i) for i in range(top + 1)]
        W, H, ml, mb = 340, 130, 30, 30
        bw = (W - ml - 10) / len(bins)
        peak = max(bins)
        bars = []
        for i, c in enumerate(bins):
            h = (H - mb - 10) * c / peak if peak else 0
            x = ml + i * bw
            bars.append(
                f'<rect x="{_f(x + 1)}" y="{_f(H - mb - h)}" width="{_f(max(bw - 2, 1))}" height="{_f(h)}" '
                f'fill="{PALETTE["rupture_confrontation"]}"><title>{c} session{"s" if c != 1 else ""} with '
                f"{i} episode{'s' if i != 1 else ''}</title></rect>"
                + (
                    f'<text x="{_f(x + bw / 2)}" y="{H - mb + 14}" font-size="10" text-anchor="middle" '
                    f'fill="#555">{i}</text>'
                    if len(bins) <= 20 or i % 5 == 0
                    else ""
                )
            )
        hist = (
            f'<figure><h3>Rupture episodes per session</h3><svg viewBox="0 0 {W} {H}" role="img" '
            f'aria-label="Histogram of rupture episodes per session" focusable="false">{"".join(bars)}'
            f'<text x="{ml - 6}" y="{H - mb}" font-size="10" text-anchor="end" fill="#555">0</text>'
            f'<text x="{ml - 6}" y="18" font-size="10" text-anchor="end" fill="#555">{peak}</text>'
            f'<text x="4" y="{(H - mb) / 2:.0f}" font-size="10" fill="#555" transform="rotate(-90 10 '
            f'{(H - mb) / 2:.0f})" text-anchor="middle">sessions</text>'
            f'<text x="{(W + ml) / 2:.0f}" y="{H - 4}" font-size="11" text-anchor="middle" fill="#333">'
            "episodes in the session</text></svg></figure>"
        )
    return (
        head + f'<div class="grid2">{figs}{hist}</div><p class="small muted">Dots: one session each (faint bar: '
        "its interval; dashed line: the median). Select a dot to open that report.</p></section>"
    )


def _courses(entries: list[dict], clients: Mapping[str, Any] | None) -> str:
    from .course import course_shape, natural_key

    head = '<section id="courses" aria-labelledby="h-course"><h2 id="h-course">Course across sessions</h2>'
    if not clients:
        return head + (
            '<p class="empty">No client mapping was given, so no courses are drawn (sessions of different '
            "clients must not be joined into one line). Give a CSV with <code>session</code>, "
            "<code>client</code> and optional <code>order</code> columns.</p></section>"
        )
    by_client: dict[str, list[tuple[str, dict]]] = {}
    for e in entries:
        c = clients.get(str(e.get("session"))) or clients.get(str(e.get("name")))
        if c is None:
            continue
        client, order = c if isinstance(c, (tuple, list)) else (c, e.get("session"))
        by_client.setdefault(str(client), []).append((str(order), e))
    figs = []
    for client in sorted(by_client, key=natural_key):
        items = sorted(by_client[client], key=lambda t: natural_key(t[0]))
        ests = [_estimate(e.get("summary") or {}, "total") for _, e in items]
        items = [(o, e) for (o, e), t in zip(items, ests) if t["estimate"] is not None]
        ests = [t for t in ests if t["estimate"] is not None]
        if len(items) < 2:
            continue
        shape = course_shape([t["estimate"] for t in ests])
        figs.append(
            f"<figure><h3>{_e(client)}: {_e(shape)}</h3>{_course_svg(client, items, ests)}"
            f"<figcaption>{len(items)} sessions; shape by <code>course_shape</code> (Stiles et al. 2004; "
            "changes under 0.25 points treated as noise).</figcaption></figure>"
        )
    if not figs:
        return head + '<p class="empty">No client has two or more sessions with estimates.</p></section>'
    return head + f'<div class="grid2">{"".join(figs)}</div></section>'


def _course_svg(client: str, items: list[tuple[str, dict]], ests: list[dict]) -> str:
    W, H, ml, mr, mt, mb = 420, 200, 34, 14, 12, 40
    pw, ph = W - ml - mr, H - mt - mb
    n = len(items)

    def X(i: int) -> float:  # 12 px inside the frame, so end points are not cut
        return ml + 12 + (i / (n - 1) if n > 1 else 0.5) * (pw - 24)

    def Y(v: float) -> float:
        return mt + (5 - min(max(v, 1.0), 5.0)) / 4 * ph

    out = [
        f'<svg viewBox="0 0 {W} {H}" role="img" aria-label="{_e(client)}: total estimate per session" '
        'focusable="false">'
    ]
    for level in range(1, 6):
        out.append(
            f'<line x1="{ml}" x2="{W - mr}" y1="{_f(Y(level))}" y2="{_f(Y(level))}" stroke="#e2e2de"/>'
            f'<text x="{ml - 6}" y="{_f(Y(level) + 4)}" font-size="11" text-anchor="end" fill="#555">'
            f"{level}</text>"
        )
    if all(t["low"] is not None and t["high"] is not None for t in ests):
        pts = [f"{_f(X(i))},{_f(Y(t['high']))}" for i, t in enumerate(ests)]
        pts += [f"{_f(X(i))},{_f(Y(t['low']))}" for i, t in reversed(list(enumerate(ests)))]
        out.append(f'<polygon points="{" ".join(pts)}" fill="#000" opacity=".10"/>')
    line = " ".join(f"{_f(X(i))},{_f(Y(t['estimate']))}" for i, t in enumerate(ests))
    out.append(f'<polyline points="{line}" fill="none" stroke="#000" stroke-width="2.5"/>')
    for i, ((order, e), t) in enumerate(zip(items, ests)):
        label = f"{e.get('session')}: total {_num(t['estimate'])}" + (
            f" [{_num(t['low'])}, {_num(t['high'])}]" if t["low"] is not None else ""
        )
        dot = (
            f'<title>{_e(label)}</title><circle cx="{_f(X(i))}" cy="{_f(Y(t["estimate"]))}" r="5" fill="#000" '
            'stroke="#fff" stroke-width="1.5"/>'
        )
        out.append(f'<a href="{_e(e["href"])}" aria-label="{_e(label)}">{dot}</a>' if e.get("href") else dot)
        out.append(
            f'<text x="{_f(X(i))}" y="{H - mb + 16}" font-size="10" text-anchor="middle" fill="#555">'
            f"{_e(str(order)[:14])}</text>"
        )
    out.append(
        f'<text x="{ml + pw / 2:.0f}" y="{H - 6}" font-size="11" text-anchor="middle" fill="#333">session</text></svg>'
    )
    return "".join(out)


def _index_caveat() -> str:
    return (
        '<aside class="caveat" aria-label="How far to trust these numbers"><p><strong>Model estimates, not '
        "ratings.</strong> Each session's numbers come from a marker classifier and a mapping fitted on other "
        "people's conversations; compare sessions with their intervals in view, and check the estimates against "
        "your own ratings (<code>alliance-nlp check-ratings</code>, <code>alliance-nlp fit-mapping</code>) "
        f"before using them in research. Limits: the model card, <code>{_e(MODEL_CARD)}</code>, section "
        f"“{_e(MODEL_CARD_SECTION)}”.</p></aside>"
    )
