"""The review app (`alliance-nlp review`): the JSON API, its security (token, cookie, CSRF, Host, sizes,
escaping, CSP), the corrections file (appended, fsynced, latest wins, reviewers apart, torn lines),
reviewer agreement, the command line, and an end-to-end review in headless Chromium.

One real analysis of the shipped example per module; every test works on its own copy of the results."""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
from lxml import html as lhtml

pytest.importorskip("starlette", reason="starlette not installed (pip install -e '.[test]')")
from starlette.testclient import TestClient  # noqa: E402

from alliance_nlp.cli import build_parser, main  # noqa: E402
from alliance_nlp.ingest import read  # noqa: E402
from alliance_nlp.labels import LABELS  # noqa: E402
from alliance_nlp.outputs import write_outputs  # noqa: E402
from alliance_nlp.pipeline import Pipeline  # noqa: E402
from alliance_nlp.resources import DEFAULT_MODEL_NAME  # noqa: E402
from alliance_nlp.review import store as store_mod  # noqa: E402
from alliance_nlp.review.app import bind, create_app, host_warning  # noqa: E402
from alliance_nlp.review.store import CORRECTIONS_FILE, read_corrections  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "data" / "examples" / "session_cbt.txt"
ARTIFACTS = ROOT / "out" / "test-artifacts"
TOKEN = "t0k3n-" + "A" * 30
PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WRITE = {"X-Alliance-Review": "1"}
HOSTILE_TEXT = '<script>alert("pwned")</script> "><img src=x onerror=alert(1)> </script><!--'
HOSTILE_NAME = '"><img src=y onerror=alert(2)>'
HOSTILE_ID = 'hostile"><img src=z onerror=alert(3)>'
CBT = "/api/sessions/session_cbt"


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """The shipped example analysed by the real pipeline (the one model run here), and a hostile copy."""
    out = tmp_path_factory.mktemp("analysed")
    s = Pipeline.from_names()(read(EXAMPLE))
    write_outputs(s, out / "session_cbt")
    h = copy.deepcopy(s)
    h.id = HOSTILE_ID
    h.turns[1].utterances[0].text = HOSTILE_TEXT
    h.speakers[h.turns[1].speaker].name = HOSTILE_NAME
    write_outputs(h, out / "hostile")
    return out


@pytest.fixture
def results(analysed, tmp_path):
    dst = tmp_path / "results"
    shutil.copytree(analysed, dst)
    return dst


def client(results, reviewer="alice", host="127.0.0.1") -> TestClient:
    app = create_app(results, token=TOKEN, port=PORT, host=host, reviewer=reviewer)
    return TestClient(app, base_url=BASE, raise_server_exceptions=False)


def post(c: TestClient, body, sid="session_cbt", headers=None, **kw):
    return c.post(
        f"/api/sessions/{quote(sid, safe='')}/corrections", json=body, headers={**AUTH, **(headers or {})}, **kw
    )


def lines(results) -> list[dict]:
    f = results / CORRECTIONS_FILE
    return [json.loads(x) for x in f.read_text().splitlines()] if f.exists() else []


def assert_json_error(r, status):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json")
    assert isinstance(r.json().get("error"), str) and r.json()["error"]
    assert "Traceback" not in r.text and 'File "' not in r.text


# ---- the token --------------------------------------------------------------------------------
ROUTES = [
    ("GET", "/"),
    ("GET", "/sessions/session_cbt"),
    ("GET", "/api/sessions"),
    ("GET", CBT),
    ("POST", CBT + "/corrections"),
    ("GET", "/nope"),
    ("GET", "/favicon.ico"),
    ("DELETE", CBT),
]


@pytest.mark.parametrize("method,path", ROUTES)
def test_every_request_needs_the_token(results, method, path):
    c = client(results)
    body = {"json": {"utterance": 0, "labels": []}} if method == "POST" else {}
    for kw in (
        {},
        {"headers": {"Authorization": "Bearer wrong"}},
        {"params": {"token": "wrong"}},
        {"headers": {"Authorization": f"Basic {TOKEN}"}},
        {"cookie": "wrong"},
        {"cookie": TOKEN + "x"},
    ):
        c.cookies.clear()
        if "cookie" in kw:
            c.cookies.set(f"alliance_review_{PORT}", kw.pop("cookie"))
        r = c.request(method, path, **body, **kw)
        assert_json_error(r, 401)
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert not (results / CORRECTIONS_FILE).exists()


def test_token_in_the_url_sets_a_strict_httponly_cookie_and_leaves_the_address_bar(results):
    c = client(results)
    r = c.get("/", params={"token": TOKEN}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"alliance_review_{PORT}={TOKEN};")
    for attr in ("HttpOnly", "SameSite=Strict", "Path=/"):
        assert attr in cookie
    r = c.get("/sessions/session_cbt", params={"token": TOKEN, "reviewer": "bob"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/sessions/session_cbt?reviewer=bob"
    r = c.get(f"{BASE}//evil.example/x", params={"token": TOKEN}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/evil.example/x"  # no open redirect
    c.cookies.set(f"alliance_review_{PORT}", TOKEN)
    assert c.get("/").status_code == 200
    assert c.get("/api/sessions").status_code == 200
    # the API answers a token in the URL directly (scripts), and sets the cookie too
    c.cookies.clear()
    r = c.get("/api/sessions", params={"token": TOKEN})
    assert r.status_code == 200 and "HttpOnly" in r.headers["set-cookie"]


def test_each_start_has_its_own_random_token(results, monkeypatch):
    from alliance_nlp.review import app as app_mod

    seen = []
    monkeypatch.setattr(app_mod.secrets, "token_urlsafe", lambda n: seen.append(n) or "x" * 43)
    monkeypatch.setattr(app_mod, "bind", lambda host, port: (_ for _ in ()).throw(SystemExit(0)))
    with pytest.raises(SystemExit):
        app_mod.serve(results)
    assert seen == [32]  # 32 random bytes from the secrets module, before anything else


# ---- the API ----------------------------------------------------------------------------------
def test_api_lists_sessions_with_estimates_and_progress(results):
    r = client(results).get("/api/sessions", headers=AUTH)
    assert r.status_code == 200
    d = r.json()
    assert d["reviewer"] == "alice"
    byid = {s["id"]: s for s in d["sessions"]}
    assert set(byid) == {"session_cbt", HOSTILE_ID}
    s = byid["session_cbt"]
    assert s["utterances"] == 63 and s["reviewed"] == 0 and s["reviewers"] == {}
    assert s["estimates"]["total"]["estimate"] is not None and s["ruptures"]["episodes"] >= 1
    assert s["model"]["name"] == DEFAULT_MODEL_NAME and re.fullmatch(r"[0-9a-f]{16}", s["model"]["fingerprint"])


def test_api_session_has_text_roles_probabilities_markers_and_labels(results):
    d = client(results).get(CBT, headers=AUTH).json()
    assert d["progress"] == {"reviewed": 0, "total": 63}
    u = d["utterances"]
    assert len(u) == 63 and [x["index"] for x in u] == list(range(63))
    assert u[0]["text"].startswith("Hi, come on in") and u[0]["role"] == "therapist" and u[0]["speaker"] == "T"
    for x in u:
        assert set(x["probabilities"]) == set(LABELS) and all(0 <= p <= 1 for p in x["probabilities"].values())
        assert x["labels"] == x["markers"] and not x["reviewed"]
        assert x["markers"] == [lab for lab in LABELS if x["probabilities"][lab] >= d["thresholds"][lab]]
    assert sorted(x["rank"] for x in u) == list(range(63))
    # informative first: nearest a threshold first (no reviews yet, so no disagreement)
    ranked = sorted(u, key=lambda x: x["rank"])
    assert [x["margin"] for x in ranked] == sorted(x["margin"] for x in u)


def test_corrections_are_appended_fsynced_and_survive_a_restart(results, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(store_mod.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    c = client(results)
    u = c.get(CBT, headers=AUTH).json()["utterances"]
    r = post(c, {"utterance": 2, "labels": ["goal", "task"], "note": "agenda and aim"})
    assert r.status_code == 201 and r.json()["progress"] == {"reviewed": 1, "total": 63}
    assert post(c, {"utterance": 5, "labels": []}).status_code == 201
    assert post(c, {"utterance": 2, "labels": ["task"], "note": "on second thoughts"}).status_code == 201
    assert len(synced) >= 3
    recs = lines(results)
    assert len(recs) == 3  # appended, never rewritten
    first = recs[0]
    assert first["session"] == "session_cbt" and first["utterance"] == 2 and first["labels"] == ["goal", "task"]
    assert first["reviewer"] == first["coder"] == "alice" and first["speaker"] == u[2]["role"]
    assert first["model"]["name"] == DEFAULT_MODEL_NAME and first["model"]["fingerprint"]
    assert first["model_labels"] == u[2]["markers"] and first["source"] == u[2]["source"]
    assert first["source_file"].endswith("session_cbt.txt") and first["session_file"] == "session_cbt/session.json"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"]) and "text" not in first
    # a restart (a new app over the same folder) shows every saved correction, the latest winning
    d = client(results).get(CBT, headers=AUTH).json()
    got = {x["index"]: (x["labels"], x["note"], x["reviewed"]) for x in d["utterances"] if x["reviewed"]}
    assert got == {2: (["task"], "on second thoughts", True), 5: ([], "", True)}
    assert d["progress"]["reviewed"] == 2


def test_two_reviewers_are_kept_apart_and_their_disagreement_comes_first(results):
    alice, bob = client(results, "alice"), client(results, "bob")
    assert post(alice, {"utterance": 7, "labels": ["bond"]}).status_code == 201
    assert post(bob, {"utterance": 7, "labels": ["bond", "repair"]}).status_code == 201
    assert post(bob, {"utterance": 9, "labels": ["goal"]}).status_code == 201
    a = alice.get(CBT, headers=AUTH).json()
    b = bob.get(CBT, headers=AUTH).json()
    assert a["utterances"][7]["labels"] == ["bond"] and b["utterances"][7]["labels"] == ["bond", "repair"]
    assert a["utterances"][7]["others"] == {"bob": ["bond", "repair"]} and a["utterances"][7]["disagreement"]
    assert not a["utterances"][9]["reviewed"] and b["utterances"][9]["reviewed"]
    assert a["utterances"][7]["rank"] == 0 and b["utterances"][7]["rank"] == 0
    assert not a["utterances"][9]["disagreement"]  # one reviewer: nothing to disagree about
    assert a["progress"]["reviewed"] == 1 and b["progress"]["reviewed"] == 2
    # a script can act for a named reviewer
    assert alice.get(CBT, params={"reviewer": "bob"}, headers=AUTH).json()["utterances"][9]["labels"] == ["goal"]
    s = {x["id"]: x for x in alice.get("/api/sessions", headers=AUTH).json()["sessions"]}["session_cbt"]
    assert s["reviewers"] == {"alice": 1, "bob": 2} and s["disagreements"] == 1 and s["reviewed"] == 1


BAD = [
    ("unknown session", "nope", {"utterance": 0, "labels": []}, 404),
    ("control character", "nul\x00byte", {"utterance": 0, "labels": []}, 400),
    ("backslash", "a\\b", {"utterance": 0, "labels": []}, 400),
    ("unknown label", "session_cbt", {"utterance": 0, "labels": ["goal", "rapport"]}, 400),
    ("label twice", "session_cbt", {"utterance": 0, "labels": ["goal", "goal"]}, 400),
    ("labels not a list", "session_cbt", {"utterance": 0, "labels": "goal"}, 400),
    ("labels missing", "session_cbt", {"utterance": 0}, 400),
    ("utterance out of range", "session_cbt", {"utterance": 63, "labels": []}, 404),
    ("negative utterance", "session_cbt", {"utterance": -1, "labels": []}, 404),
    ("utterance a string", "session_cbt", {"utterance": "3", "labels": []}, 400),
    ("utterance a bool", "session_cbt", {"utterance": True, "labels": []}, 400),
    ("note too long", "session_cbt", {"utterance": 0, "labels": [], "note": "x" * 2001}, 400),
    ("note not text", "session_cbt", {"utterance": 0, "labels": [], "note": 5}, 400),
    ("unknown field", "session_cbt", {"utterance": 0, "labels": [], "text": "x"}, 400),
    ("bad reviewer", "session_cbt", {"utterance": 0, "labels": [], "reviewer": "../x"}, 400),
    ("not an object", "session_cbt", [0, []], 400),
]


@pytest.mark.parametrize("why,sid,body,status", BAD, ids=[b[0] for b in BAD])
def test_bad_writes_get_a_json_4xx_and_write_nothing(results, why, sid, body, status):
    assert_json_error(post(client(results), body, sid=sid), status)
    assert lines(results) == []


def test_bad_requests_get_a_json_4xx(results):
    c = client(results)
    big = json.dumps({"utterance": 0, "labels": [], "note": "x" * 20000})
    assert_json_error(
        c.post(CBT + "/corrections", content=big, headers={**AUTH, "Content-Type": "application/json"}), 413
    )

    def chunks():  # no Content-Length: the cap applies while reading
        yield b'{"utterance": 0, "labels": [], "note": "'
        for _ in range(40):
            yield b"x" * 1000
        yield b'"}'

    assert_json_error(
        c.post(CBT + "/corrections", content=chunks(), headers={**AUTH, "Content-Type": "application/json"}), 413
    )
    assert_json_error(
        c.post(CBT + "/corrections", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"}), 400
    )
    assert_json_error(
        c.post(CBT + "/corrections", content=b"\xff\xfe", headers={**AUTH, "Content-Type": "application/json"}), 400
    )
    assert_json_error(
        c.post(
            CBT + "/corrections",
            content=b'{"utterance": 0, "labels": []}',
            headers={**AUTH, "Content-Type": "text/plain"},
        ),
        415,
    )
    assert_json_error(c.get("/api/sessions/..%2F..%2Fetc%2Fpasswd", headers=AUTH), 404)
    assert_json_error(c.get("/api/sessions/%2E%2E", headers=AUTH), 400)
    assert_json_error(c.get("/sessions/nope", headers=AUTH), 404)
    assert_json_error(c.get(CBT, params={"reviewer": "a/b"}, headers=AUTH), 400)
    assert_json_error(c.delete(CBT, headers=AUTH), 405)
    assert_json_error(c.get("/static/../../etc/passwd", headers=AUTH), 404)
    assert lines(results) == []


def test_an_internal_error_is_a_json_500_without_a_traceback(results, monkeypatch):
    from alliance_nlp.review import app as app_mod

    def boom(*a, **k):
        raise RuntimeError("secret internals /home/x")

    monkeypatch.setattr(app_mod, "detail", boom)
    r = client(results).get(CBT, headers=AUTH)
    assert_json_error(r, 500)
    assert "secret internals" not in r.text
    assert r.headers["x-content-type-options"] == "nosniff"


# ---- CSRF and Host ----------------------------------------------------------------------------
def test_writes_are_csrf_safe(results):
    c = client(results)
    c.cookies.set(f"alliance_review_{PORT}", TOKEN)
    body = {"utterance": 1, "labels": ["bond"]}
    url = CBT + "/corrections"
    # the cookie alone, as a cross-site form or fetch would send it, is not enough
    assert_json_error(c.post(url, json=body), 403)
    assert_json_error(c.post(url, json=body, headers={**WRITE, "Origin": "http://evil.example"}), 403)
    assert_json_error(c.post(url, json=body, headers={**WRITE, "Origin": "null"}), 403)
    assert_json_error(c.post(url, json=body, headers={**WRITE, "Sec-Fetch-Site": "cross-site"}), 403)
    assert_json_error(c.post(url, json=body, headers={**WRITE, "Sec-Fetch-Site": "same-site"}), 403)
    assert_json_error(c.post(url, json=body, headers={**AUTH, "Origin": "http://evil.example"}), 403)
    assert lines(results) == []
    # what the page sends: cookie + custom header (+ same Origin), or a script's bearer token
    assert c.post(url, json=body, headers={**WRITE, "Origin": BASE, "Sec-Fetch-Site": "same-origin"}).status_code == 201
    c.cookies.clear()
    assert c.post(url, json=body, headers=AUTH).status_code == 201
    # a CORS preflight gets no permission
    r = c.options(
        url,
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-alliance-review",
        },
    )
    assert r.status_code in (401, 405) and "access-control-allow-origin" not in r.headers
    assert len(lines(results)) == 2


def test_host_header_must_be_this_computer(results):
    c = client(results)
    assert_json_error(c.get("/api/sessions", headers={**AUTH, "Host": "evil.example"}), 400)
    assert_json_error(c.get("/api/sessions", headers={**AUTH, "Host": f"attacker.test:{PORT}"}), 400)
    for host in (f"localhost:{PORT}", f"127.0.0.1:{PORT}", f"[::1]:{PORT}"):
        assert c.get("/api/sessions", headers={**AUTH, "Host": host}).status_code == 200, host
    # an explicit other address accepts other Host names (the token still applies) and comes with a warning
    other = client(results, host="0.0.0.0")
    assert other.get("/api/sessions", headers={**AUTH, "Host": "lab-pc.local:8765"}).status_code == 200
    assert other.get("/api/sessions", headers={"Host": "lab-pc.local:8765"}).status_code == 401
    assert host_warning("127.0.0.1") is None and host_warning("::1") is None and host_warning("localhost") is None
    assert "not encrypted" in host_warning("0.0.0.0") and host_warning("192.168.1.20")
    args = build_parser().parse_args(["review", "out"])
    assert args.host == "127.0.0.1" and args.port == 0 and not args.open
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.getsockname()[0] == "127.0.0.1"
    finally:
        sock.close()


# ---- pages: escaping, CSP, nothing external ---------------------------------------------------
def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.mark.parametrize("path", ["/", "/sessions/" + quote(HOSTILE_ID, safe="")])
def test_pages_escape_transcripts_pin_their_scripts_and_load_nothing(results, path):
    r = client(results).get(path, headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    text = r.text
    for raw in ("<script>alert", "<img"):  # only ever as escaped text
        assert raw not in text, raw
    doc = lhtml.document_fromstring(text.encode())
    scripts = doc.xpath("//script")
    inline = [s for s in scripts if s.get("type") != "application/json"]
    assert len(inline) == 1 and not doc.xpath("//*[@src] | //link[@href] | //*[@onerror] | //*[@onclick] | //img")
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp
    assert _sha(inline[0].text) in csp and _sha(doc.xpath("//style")[0].text) in csp
    meta = doc.xpath("//meta[@http-equiv='Content-Security-Policy']/@content")[0]
    assert "connect-src 'self'" in meta and _sha(inline[0].text) in meta
    for h, v in (
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
    ):
        assert r.headers[h] == v
    if path != "/":
        assert HOSTILE_TEXT in doc.get_element_by_id("u-1").text_content()
        assert json.loads(doc.get_element_by_id("report-data").text)["session"] == HOSTILE_ID
    else:
        assert HOSTILE_ID in doc.text_content()


def test_the_page_script_never_parses_data_as_html():
    from alliance_nlp.review.pages import static

    js = static("review.js")
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        'setAttribute("on',
        "http://",
        "https://",
    ):
        assert sink not in js, sink
    assert "textContent" in js


def test_the_api_returns_hostile_text_as_json_data(results):
    r = client(results).get("/api/sessions/" + quote(HOSTILE_ID, safe=""), headers=AUTH)
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-security-policy"].startswith("default-src 'none'")
    assert r.json()["utterances"][1]["text"] == HOSTILE_TEXT


# ---- the corrections file ----------------------------------------------------------------------
def test_a_torn_last_line_is_skipped_and_kept_apart(results):
    c = client(results)
    assert post(c, {"utterance": 3, "labels": ["task"]}).status_code == 201
    with open(results / CORRECTIONS_FILE, "a") as fh:  # a crash in the middle of a write
        fh.write('{"session": "session_cbt", "utterance": 4, "lab')
    c2 = client(results)
    d = c2.get(CBT, headers=AUTH).json()
    assert d["utterances"][3]["labels"] == ["task"] and not d["utterances"][4]["reviewed"]
    assert post(c2, {"utterance": 6, "labels": ["bond"]}).status_code == 201
    latest, info = read_corrections([results / CORRECTIONS_FILE])
    assert {(k[1], k[2]): v["labels"] for k, v in latest.items()} == {
        ("session_cbt", 3): ["task"],
        ("session_cbt", 6): ["bond"],
    }
    assert info["files"][0]["damaged"] == 1 and info["files"][0]["lines"] == 2
    assert client(results).get(CBT, headers=AUTH).json()["utterances"][6]["labels"] == ["bond"]


def test_review_agreement_reports_kappa_per_label(results, tmp_path, capsys):
    from sklearn.metrics import cohen_kappa_score

    alice, bob = client(results, "alice"), client(results, "bob")
    a_labels = {i: (["task"] if i % 2 else []) + (["bond"] if i % 3 == 0 else []) for i in range(12)}
    b_labels = {
        i: (["task"] if i % 2 or i == 4 else []) + (["bond"] if i % 3 == 0 and i != 9 else []) for i in range(12)
    }
    for i in range(12):
        assert post(alice, {"utterance": i, "labels": a_labels[i]}).status_code == 201
        assert post(bob, {"utterance": i, "labels": b_labels[i]}).status_code == 201
    out = tmp_path / "agreement.json"
    assert main(["review-agreement", str(results), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "alice ~ bob" in printed and "Reviewer vs model" in printed
    rep = json.loads(out.read_text())
    pair = rep["pairs"][0]
    assert pair["reviewers"] == ["alice", "bob"] and pair["utterances"] == 12
    for lab in ("task", "bond"):
        want = cohen_kappa_score(
            [int(lab in a_labels[i]) for i in range(12)], [int(lab in b_labels[i]) for i in range(12)]
        )
        assert pair["labels"][lab]["kappa"] == pytest.approx(want)
    assert pair["labels"]["repair"]["kappa"] is None  # nobody used it: undefined, not 1 or 0
    model = {m["reviewer"]: m for m in rep["model"]}
    shown = {i: u["markers"] for i, u in enumerate(alice.get(CBT, headers=AUTH).json()["utterances"])}
    want = cohen_kappa_score(
        [int("task" in a_labels[i]) for i in range(12)], [int("task" in shown[i]) for i in range(12)]
    )
    assert model["alice"]["labels"]["task"]["kappa"] == pytest.approx(want) and model["alice"]["utterances"] == 12
    assert main(["review-agreement", str(tmp_path / "nothing")]) == 2


# ---- the command ------------------------------------------------------------------------------
def test_review_command_prints_its_url_first_and_serves(results):
    proc = subprocess.Popen(
        [sys.executable, "-m", "alliance_nlp", "review", str(results), "--reviewer", "carol"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        first = proc.stdout.readline().strip()
        m = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/\?token=([A-Za-z0-9_-]{40,})", first)
        assert m, first
        port, token = m.groups()
        url = f"http://127.0.0.1:{port}/api/sessions"
        deadline = time.time() + 20
        while True:
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"}), timeout=5
                ) as resp:
                    data = json.load(resp)
                break
            except (urllib.error.URLError, ConnectionError):
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        assert data["reviewer"] == "carol" and len(data["sessions"]) == 2
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url, timeout=5)
        assert err.value.code == 401
    finally:
        proc.send_signal(2)  # Ctrl+C
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    err_text = proc.stderr.read()
    assert "corrections go to" in err_text and "Traceback" not in err_text


def test_review_command_refuses_a_folder_without_sessions(tmp_path, capsys):
    assert main(["review", str(tmp_path)]) == 2
    assert "no analysed session" in capsys.readouterr().err


# ---- in a real browser ------------------------------------------------------------------------
try:  # the browser fixtures and checks of tests/test_browser.py (skipped there without Chromium/selenium)
    from tests.test_browser import BROWSER, DRIVER, _console_errors, _no_alert, _requests, driver  # noqa: F401
except BaseException:  # noqa: B036  (pytest's skip is a BaseException)
    BROWSER = DRIVER = None


@contextlib.contextmanager
def serving(results, reviewer="trainer"):
    """The app on a free loopback port, served by uvicorn in a thread."""
    import uvicorn

    sock = bind("127.0.0.1", 0)
    port = sock.getsockname()[1]
    app = create_app(results, token=TOKEN, port=port, reviewer=reviewer)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 15
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _wait(driver, script: str, timeout: float = 15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = driver.execute_script(script)
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {script}")


def _pressed(driver, i: int) -> list[str]:
    return driver.execute_script(
        f"return [...document.querySelectorAll('#u-{i} .rv .lab[aria-pressed=true]')].map(b => b.dataset.label)"
    )


@pytest.mark.skipif(
    not (BROWSER and DRIVER), reason="Chromium, chromedriver or selenium missing (scripts/install_browser.sh)"
)
def test_review_in_chromium(driver, results, tmp_path):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.select import Select

    model = client(results).get(CBT, headers=AUTH).json()["utterances"]
    with serving(results) as base:
        driver.get_log("browser"), driver.get_log("performance")
        driver.get(f"{base}/?token={TOKEN}")
        assert driver.current_url == f"{base}/"  # the token left the address bar
        assert "session_cbt" in driver.find_element(By.ID, "sessions").text
        driver.find_element(By.LINK_TEXT, "session_cbt").click()
        _wait(driver, "return document.body.dataset.reviewReady")
        assert driver.find_element(By.ID, "rv-progress").text == "0 of 63 utterances reviewed by you"
        assert _pressed(driver, 2) == model[2]["markers"]

        # 1. keyboard: focus an utterance, add `goal` with key 1
        a = next(i for i, u in enumerate(model) if "goal" not in u["markers"] and i > 3)
        row = driver.find_element(By.ID, f"u-{a}")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus()", row)
        driver.switch_to.active_element.send_keys("1")
        # 2. mouse: remove a label the model gave
        b = next(i for i, u in enumerate(model) if u["markers"] and i > a)
        removed = model[b]["markers"][0]
        btn = driver.find_element(By.CSS_SELECTOR, f"#u-{b} .rv .lab.{removed}")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", btn)
        btn.click()
        # 3. keyboard: next utterance with the arrow key, add `repair` (key 6), write a note, accept
        row = driver.find_element(By.ID, f"u-{b}")
        driver.execute_script("arguments[0].focus()", row)
        driver.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
        c = b + 1
        assert driver.execute_script("return document.activeElement.id") == f"u-{c}"
        want_c = sorted(set(model[c]["markers"]) ^ {"repair"}, key=LABELS.index)
        driver.switch_to.active_element.send_keys("6")
        driver.switch_to.active_element.send_keys("n")
        assert driver.execute_script("return document.activeElement.classList.contains('note')")
        driver.switch_to.active_element.send_keys("client's complaint <b>not</b> taken up", Keys.ENTER)
        assert driver.execute_script("return document.activeElement.id") == f"u-{c}"
        _wait(
            driver,
            "return document.querySelectorAll('.rv .st.done').length === 3 && "
            "![...document.querySelectorAll('.rv .st')].some(s => s.textContent.indexOf('saving') >= 0)",
        )
        assert driver.find_element(By.ID, "rv-progress").text == "3 of 63 utterances reviewed by you"
        assert driver.find_element(By.ID, "rv-error").get_attribute("hidden") is not None

        # reload: everything is still there
        driver.refresh()
        _wait(driver, "return document.body.dataset.reviewReady")
        assert _pressed(driver, a) == sorted(set(model[a]["markers"]) | {"goal"}, key=LABELS.index)
        assert _pressed(driver, b) == [x for x in model[b]["markers"] if x != removed]
        assert _pressed(driver, c) == want_c
        assert (
            driver.execute_script(f"return document.querySelector('#u-{c} .note').value")
            == "client's complaint <b>not</b> taken up"
        )
        assert driver.find_element(By.ID, "rv-progress").text == "3 of 63 utterances reviewed by you"

        # informative first: the page follows the API's ranks, reviewed utterances last
        Select(driver.find_element(By.ID, "rv-order")).select_by_value("informative")
        order = driver.execute_script("return [...document.querySelectorAll('#utts > li.u')].map(r => +r.id.slice(2))")
        ranks = {u["index"]: u["rank"] for u in client(results, "trainer").get(CBT, headers=AUTH).json()["utterances"]}
        assert order == sorted(ranks, key=ranks.get) and order[-3:] == sorted([a, b, c], key=ranks.get)
        driver.execute_script("window.scrollTo(0, 0)")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(ARTIFACTS / "review_session.png"))
        Select(driver.find_element(By.ID, "rv-order")).select_by_value("transcript")
        el = driver.find_element(By.ID, f"u-{max(a - 2, 0)}")
        driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", el)
        driver.save_screenshot(str(ARTIFACTS / "review_corrected.png"))

        _no_alert(driver)
        assert _console_errors(driver) == []
        requested = _requests(driver)
        assert requested and all(u.startswith(base + "/") for u in requested), requested

    # the corrections file: one line per change, the latest per utterance as shown
    recs = lines(results)
    assert all(r["reviewer"] == "trainer" and r["session"] == "session_cbt" for r in recs)
    latest = {r["utterance"]: r for r in recs}
    assert set(latest) == {a, b, c}
    assert latest[a]["labels"] == sorted(set(model[a]["markers"]) | {"goal"}, key=LABELS.index)
    assert latest[b]["labels"] == [x for x in model[b]["markers"] if x != removed]
    assert latest[c]["labels"] == want_c and latest[c]["note"] == "client's complaint <b>not</b> taken up"
    assert all(r["model_labels"] == model[r["utterance"]]["markers"] for r in recs)


def test_redacted_review_shows_no_identifier_and_keeps_its_corrections_apart(results):
    from alliance_nlp.session import Session

    f = results / "session_cbt" / "session.json"
    s = Session.load(f)
    u = s.turns[1].utterances[0]
    u.text = "My brother Tobias Quenneville phoned from Dunmore on 07700 900456."
    s.save(f)
    app = create_app(results, token=TOKEN, port=PORT, reviewer="alice", redact=True)
    c = TestClient(app, base_url=BASE, raise_server_exceptions=False)
    listing = c.get("/api/sessions", headers=AUTH)
    assert listing.status_code == 200
    ids = [x["id"] for x in listing.json()["sessions"]]
    assert "session_cbt" not in ids and all(i.startswith("session-") for i in ids)
    pages = [listing.text] + [c.get(f"/api/sessions/{i}", headers=AUTH).text for i in ids]
    pages += [c.get(f"/sessions/{i}", headers=AUTH).text for i in ids]
    for page in pages:
        for ident in ("Tobias", "Quenneville", "Dunmore", "07700 900456"):
            assert ident not in page
    assert any("[NAME_" in p for p in pages)
    sid = next(i for i in ids if "[NAME_" in c.get(f"/api/sessions/{i}", headers=AUTH).text)
    r = post(c, {"utterance": 0, "labels": ["task"]}, sid=sid)
    assert r.status_code in (200, 201), r.text
    assert not (results / CORRECTIONS_FILE).exists()
    assert (results / "corrections.redacted.jsonl").read_text().count(sid) == 1
