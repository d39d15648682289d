"""The review web app: a Starlette app over the sessions in an `analyze` output folder, behind `Guard`.

Routes (all need the access token):

    GET  /                                   the session list (HTML)
    GET  /sessions/{id}                      one session to review (HTML)
    GET  /api/sessions                       JSON: sessions with estimates, rupture counts, review progress
    GET  /api/sessions/{id}                  JSON: utterances with text, speaker, role, probabilities, model
                                             markers and the reviewer's current labels
    POST /api/sessions/{id}/corrections      JSON {"utterance": INDEX, "labels": [...], "note": "..."}

`?reviewer=NAME` (GET) or `"reviewer"` (POST body) act for another reviewer than the server's own.
Errors are JSON `{"error": "..."}` with a 4xx status; an unexpected failure is a 500 with a generic
message (the traceback goes to the server's log, never into a response).

Security (`Guard`, wrapping the whole app):
- a random token per start (`secrets.token_urlsafe`); each request must carry it as `Authorization:
  Bearer TOKEN`, the HttpOnly SameSite=Strict cookie, or `?token=` (which sets the cookie; a page
  request is then redirected to the same URL without the token, so it does not stay in the address bar);
- writes are CSRF-safe: a cookie alone does not authorise one; it also needs the custom header
  `X-Alliance-Review: 1` (which a cross-site page cannot send without a CORS preflight, and this server
  answers no preflight), a JSON content type, an `Origin` (when sent) equal to the server's own, and no
  cross-site `Sec-Fetch-Site`;
- the Host header must name the address the server is bound to (DNS rebinding);
- request bodies are capped (`max_body`, 16 KiB by default) before they are read;
- every response says `no-store`, `nosniff`, `no-referrer`, may not be framed, and carries a
  Content-Security-Policy: pages may run only their own inline script and style (by hash) and connect only
  to this server; nothing loads from anywhere else.
"""

from __future__ import annotations

import asyncio
import getpass
import ipaddress
import json
import os
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from ..errors import UsageError
from .data import Entry, detail, load_entries, overview, safe_id
from .pages import list_page, session_page
from .store import CORRECTIONS_FILE, MAX_NOTE, CorrectionStore, check_reviewer, make_record

REDACTED_CORRECTIONS_FILE = "corrections.redacted.jsonl"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY = 16 * 1024
WRITE_HEADER = "x-alliance-review"
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
POST_FIELDS = {"utterance", "labels", "note", "reviewer"}


class ApiError(HTTPException):
    """A client error, answered as JSON {"error": detail}."""


def default_reviewer() -> str:
    try:
        name = getpass.getuser()
        return check_reviewer(name)
    except (ValueError, OSError, KeyError):
        return "reviewer"


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_warning(host: str) -> str | None:
    """The warning to print when serving on anything but the loopback interface (None for loopback)."""
    if is_loopback(host):
        return None
    return (
        f"serving on {host}, not only on this computer: anyone who can reach this address and has the "
        "printed URL can read these transcripts and write corrections, and the connection is not encrypted "
        "(plain HTTP). Use it only on a network you trust, and stop the server when you are done."
    )


def _hostname(host_header: str) -> str:
    """The host name of a Host header, without the port (IPv6 literals keep no brackets)."""
    h = host_header.strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else h
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def _json_error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class Guard:
    """Token, Host, CSRF and size checks in front of the app; security headers on every response."""

    def __init__(
        self, app: ASGIApp, *, token: str, cookie: str, allowed_hosts: set[str] | None, max_body: int = MAX_BODY
    ):
        self.app, self.token, self.cookie = app, token, cookie
        self.allowed_hosts, self.max_body = allowed_hosts, max_body

    def _valid(self, value: str | None) -> bool:
        return bool(value) and secrets.compare_digest(str(value).encode(), self.token.encode())

    def authenticate(self, scope: Scope, headers: Headers) -> str | None:
        """How the request proves the token: "bearer", "query" or "cookie"; None when it does not."""
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer " and self._valid(auth[7:].strip()):
            return "bearer"
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if self._valid(query.get("token")):
            return "query"
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == self.cookie and self._valid(value):
                return "cookie"
        return None

    def _cookie_header(self) -> str:
        return f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            await send({"type": "websocket.close", "code": 1008})
            return
        headers = Headers(scope=scope)
        set_cookie = False

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                h = MutableHeaders(scope=message)
                for k, v in SECURITY_HEADERS.items():
                    h[k] = v
                if "content-security-policy" not in h:
                    h["content-security-policy"] = DEFAULT_CSP
                if set_cookie:
                    h.append("set-cookie", self._cookie_header())
            await send(message)

        async def reply(resp: Response) -> None:
            await resp(scope, receive, send_secure)

        host = _hostname(headers.get("host", ""))
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            await reply(_json_error(400, "unexpected Host header (open the URL that `alliance-nlp review` printed)"))
            return
        cl = headers.get("content-length")
        if cl is not None and (not cl.strip().isdigit() or int(cl) > self.max_body):
            await reply(_json_error(413, f"request body too large (at most {self.max_body} bytes)"))
            return
        how = self.authenticate(scope, headers)
        if how is None:
            await reply(
                _json_error(
                    401,
                    "missing or wrong access token: open the URL that `alliance-nlp review` "
                    "printed, or send Authorization: Bearer TOKEN",
                    {"www-authenticate": 'Bearer realm="alliance-nlp review"'},
                )
            )
            return
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            origin = headers.get("origin")
            own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}".lower()
            if origin is not None and origin.lower() != own:
                await reply(_json_error(403, "cross-origin write refused (Origin does not match this server)"))
                return
            site = headers.get("sec-fetch-site")
            if site is not None and site not in ("same-origin", "none"):
                await reply(_json_error(403, f"cross-site write refused (Sec-Fetch-Site: {site[:20]})"))
                return
            if how != "bearer" and headers.get(WRITE_HEADER) != "1":
                await reply(
                    _json_error(
                        403,
                        "a write needs an Authorization: Bearer header, or the "
                        "X-Alliance-Review: 1 header with the session cookie",
                    )
                )
                return
        if how == "query":
            set_cookie = True
            if method in ("GET", "HEAD") and not scope["path"].startswith("/api/"):
                rest = [
                    (k, v)
                    for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
                    if k != "token"
                ]
                target = "/" + scope["path"].lstrip("/\\") + (f"?{urlencode(rest)}" if rest else "")  # never //host
                await reply(RedirectResponse(target, status_code=303))
                return
        await self.app(scope, receive, send_secure)


class ReviewApp:
    """The routes over one results folder, its sessions and its corrections file."""

    def __init__(
        self,
        results: str | os.PathLike,
        reviewer: str | None = None,
        model: str | os.PathLike | None = None,
        max_body: int = MAX_BODY,
        redact: bool = False,
    ):
        self.results = Path(results)
        redactor = None
        if redact:
            from ..redact import Redactor

            redactor = Redactor()
        self.entries, self.warnings = load_entries(self.results, model, redactor)
        # a redacted view's corrections are keyed by its opaque ids: kept apart, never read by finetune
        self.store = CorrectionStore(self.results / (REDACTED_CORRECTIONS_FILE if redact else CORRECTIONS_FILE))
        self.reviewer = check_reviewer(reviewer) if reviewer else default_reviewer()
        self.max_body = max_body

    # ---- helpers ----------------------------------------------------------------------------
    def _entry(self, request: Request) -> Entry:
        sid = request.path_params["sid"]
        if not safe_id(sid):
            raise ApiError(400, "invalid session id (it may not contain path characters)")
        e = self.entries.get(sid)
        if e is None:
            raise ApiError(404, f"unknown session {sid[:80]!r}")
        return e

    def _reviewer(self, request: Request) -> str:
        name = request.query_params.get("reviewer")
        if name is None:
            return self.reviewer
        try:
            return check_reviewer(name)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None

    async def _body(self, request: Request) -> Any:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(415, "send the correction as JSON (Content-Type: application/json)")
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > self.max_body:
                raise ApiError(413, f"request body too large (at most {self.max_body} bytes)")
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "the body is not valid JSON") from None

    # ---- pages ------------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        reviewer = self._reviewer(request)
        latest = await run_in_threadpool(self.store.latest)
        rows = [overview(e, latest, reviewer) for e in self.entries.values()]
        html, csp = list_page(rows, reviewer, str(self.store.path))
        return HTMLResponse(html, headers={"content-security-policy": csp})

    async def session(self, request: Request) -> Response:
        e = self._entry(request)
        html, csp = await run_in_threadpool(session_page, e, self._reviewer(request))
        return HTMLResponse(html, headers={"content-security-policy": csp})

    async def favicon(self, request: Request) -> Response:
        return Response(status_code=204)

    # ---- API --------------------------------------------------------------------------------
    async def api_sessions(self, request: Request) -> Response:
        reviewer = self._reviewer(request)
        latest = await run_in_threadpool(self.store.latest)
        return JSONResponse(
            {
                "reviewer": reviewer,
                "corrections_file": str(self.store.path),
                "sessions": [overview(e, latest, reviewer) for e in self.entries.values()],
            }
        )

    async def api_session(self, request: Request) -> Response:
        e = self._entry(request)
        reviewer = self._reviewer(request)
        latest = await run_in_threadpool(self.store.latest)
        return JSONResponse(await run_in_threadpool(detail, e, latest, reviewer))

    async def api_correct(self, request: Request) -> Response:
        e = self._entry(request)
        body = await self._body(request)
        if not isinstance(body, dict):
            raise ApiError(400, 'expected a JSON object {"utterance": INDEX, "labels": [...], "note": "..."}')
        extra = sorted(set(body) - POST_FIELDS)
        if extra:
            raise ApiError(400, f"unknown field(s): {', '.join(map(str, extra))[:200]}")
        utt = body.get("utterance")
        if not isinstance(utt, int) or isinstance(utt, bool):
            raise ApiError(400, "utterance: an integer index (as in utterances.csv)")
        if not 0 <= utt < e.n:
            raise ApiError(404, f"utterance {utt} out of range (this session has {e.n})")
        if "labels" not in body:
            raise ApiError(400, "labels: required (the full list of labels for the utterance; [] for none)")
        note = body.get("note", "")
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise ApiError(400, f"note: text of at most {MAX_NOTE} characters")
        try:
            reviewer = check_reviewer(body["reviewer"]) if "reviewer" in body else self.reviewer
            u = e.session.utterances[utt]
            rec = make_record(
                session=e.id,
                utterance=utt,
                labels=body["labels"],
                reviewer=reviewer,
                note=note,
                speaker=e.session.role_of(u.speaker),
                model=e.model,
                model_labels=list(u.markers),
                source=u.source,
                source_file=e.session.source_path,
                session_file=e.session_file,
            )
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        await run_in_threadpool(self.store.append, rec)
        done = sum(1 for (r, s, _u) in self.store.latest() if r == reviewer and s == e.id)
        return JSONResponse({"saved": rec, "progress": {"reviewed": done, "total": e.n}}, status_code=201)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "error"
    if exc.status_code == 404 and not isinstance(exc, ApiError):
        detail = "not found"
    elif exc.status_code == 405:
        detail = "method not allowed"
    return _json_error(exc.status_code, detail, dict(exc.headers or {}))


async def _server_error(request: Request, exc: Exception) -> Response:
    return _json_error(500, "internal error (see the server's log)")


def create_app(
    results: str | os.PathLike,
    *,
    token: str,
    port: int,
    host: str = "127.0.0.1",
    reviewer: str | None = None,
    model: str | os.PathLike | None = None,
    max_body: int = MAX_BODY,
    redact: bool = False,
) -> Guard:
    """The review app over `results`, guarded by `token`. `port` names the cookie (cookies ignore ports,
    so two servers on one machine must not share one); `host` decides which Host headers are accepted
    (loopback: 127.0.0.1, localhost and ::1; another address: any, the token still applies)."""
    ra = ReviewApp(results, reviewer=reviewer, model=model, max_body=max_body, redact=redact)
    routes = [
        Route("/", ra.index, methods=["GET"]),
        Route("/sessions/{sid}", ra.session, methods=["GET"]),
        Route("/favicon.ico", ra.favicon, methods=["GET"]),
        Route("/api/sessions", ra.api_sessions, methods=["GET"]),
        Route("/api/sessions/{sid}", ra.api_session, methods=["GET"]),
        Route("/api/sessions/{sid}/corrections", ra.api_correct, methods=["POST"]),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error, Exception: _server_error})
    app.state.review = ra
    allowed = LOOPBACK_NAMES if is_loopback(host) else None
    guard = Guard(app, token=token, cookie=f"alliance_review_{port}", allowed_hosts=allowed, max_body=max_body)
    guard.review = ra  # type: ignore[attr-defined]
    return guard


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), IPv4 or IPv6."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: cannot resolve ({exc.strerror})") from None
    family, stype, proto, _, addr = infos[0]
    sock = socket.socket(family, stype, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.listen(64)
    sock.set_inheritable(True)
    return sock


def url_for(host: str, port: int, token: str) -> str:
    h = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{h}:{port}/?token={token}"


def serve(
    results: str | os.PathLike,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    reviewer: str | None = None,
    model: str | os.PathLike | None = None,
    open_browser: bool = False,
    redact: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Start the review server; print its URL (with the token) as the first line of `out`, then serve until
    interrupted."""
    import uvicorn

    out, err = out or sys.stdout, err or sys.stderr
    if port < 0 or port > 65535:
        raise UsageError(f"--port {port}: must be 0-65535")
    if reviewer is not None:
        try:
            check_reviewer(reviewer)
        except ValueError as exc:
            raise UsageError(f"--reviewer {reviewer!r}: {exc}") from None
    token = secrets.token_urlsafe(32)
    sock = bind(host, port)
    port = sock.getsockname()[1]
    try:
        app = create_app(results, token=token, port=port, host=host, reviewer=reviewer, model=model, redact=redact)
    except BaseException:
        sock.close()
        raise
    ra: ReviewApp = app.review  # type: ignore[attr-defined]
    url = url_for(host, port, token)
    print(url, file=out, flush=True)
    warning = host_warning(host)
    if warning:
        print(f"alliance-nlp: warning: {warning}", file=err)
    for w in ra.warnings:
        print(f"alliance-nlp: warning: {w}", file=err)
    print(
        f"alliance-nlp review: {len(ra.entries)} session(s) from {ra.results}; reviewing as {ra.reviewer}; "
        f"corrections go to {ra.store.path}. Open the URL above; Ctrl+C stops the server.",
        file=err,
        flush=True,
    )
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        date_header=False,
        timeout_graceful_shutdown=3,
    )
    server = uvicorn.Server(config)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0
