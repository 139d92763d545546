"""The edge's external check: nginx asks it about every request (``auth_request``).

It names the request's user (``identity``), reads the user's decision from Redis through
``EdgeDecisions`` (cached for ``edge.decision_cache_ms``, failing open at once while Redis
is down or hung) and answers nginx with a status nginx acts on:

- 204 allow: nginx serves the request (so does a challenged user carrying the JavaScript
  token: a client that runs the edge's script passes the challenge);
- 401 challenge: nginx answers with this gate's challenge page, which runs the script;
- 403 block: nginx answers 403.

The answer's ``X-Botscore-*`` headers carry the user id, the token's presence and the
decision into nginx's access log, and a new visitor's signed cookie into the response.
It listens on loopback only: nginx sets the headers it reads (``X-Real-IP``) itself.
"""

from __future__ import annotations

import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from botscore.enforcement.edge import EdgeDecisions
from botscore.metrics import Metrics
from botscore.vocabulary import Decision
from botscore.web_edge.identity import JS_COOKIE, USER_COOKIE, EdgeKeys, Visitor, read_cookies

__all__ = ["Gate", "GateServer", "answer_status"]

log = logging.getLogger(__name__)

_COOKIE_ATTRIBUTES = "Path=/; HttpOnly; SameSite=Lax; Max-Age=31536000"

_CHALLENGE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Checking your browser</title></head>
<body><p>Checking your browser&hellip; this page reloads by itself.</p>
<noscript><p>This site needs JavaScript for this check.</p></noscript>
<script>{script}location.reload();</script></body></html>
"""


def answer_status(decision: Decision, ran_javascript: bool) -> HTTPStatus:
    """What nginx is told to do with a request of a user with ``decision``."""
    if decision is Decision.BLOCK:
        return HTTPStatus.FORBIDDEN
    if decision is Decision.CHALLENGE and not ran_javascript:
        return HTTPStatus.UNAUTHORIZED
    return HTTPStatus.NO_CONTENT


class Gate:
    """The answers, apart from HTTP: one lock, since ``EdgeDecisions`` is one cache."""

    def __init__(self, keys: EdgeKeys, decisions: EdgeDecisions, metrics: Metrics) -> None:
        self.keys = keys
        self._decisions = decisions
        self._metrics = metrics
        self._lock = threading.Lock()

    def visitor(self, cookie_header: str | None, ip: str, user_agent: str) -> Visitor:
        cookies = read_cookies(cookie_header)
        return self.keys.visitor(cookies.get(USER_COOKIE), ip, user_agent)

    def check(
        self, cookie_header: str | None, ip: str, user_agent: str
    ) -> tuple[HTTPStatus, dict[str, str]]:
        """nginx's answer for one request, and the headers it logs and passes on."""
        cookies = read_cookies(cookie_header)
        visitor = self.keys.visitor(cookies.get(USER_COOKIE), ip, user_agent)
        ran_js = self.keys.ran_javascript(cookies.get(JS_COOKIE), visitor.user_id)
        with self._lock:
            decision = self._decisions.decision_for(visitor.user_id)
        status = answer_status(decision, ran_js)
        self._metrics.count("requests", tags=[f"decision:{decision}", f"answer:{status.value}"])
        headers = {
            "X-Botscore-User": visitor.user_id,
            "X-Botscore-Js": "1" if ran_js else "0",
            "X-Botscore-Decision": str(decision),
            "X-Botscore-Set-Cookie": self.new_visitor_cookie(visitor),
        }
        return status, headers

    def new_visitor_cookie(self, visitor: Visitor) -> str:
        """A ``Set-Cookie`` value naming a visitor without the edge's cookie; else empty."""
        if visitor.from_cookie:
            return ""
        return f"{USER_COOKIE}={self.keys.user_cookie(visitor.user_id)}; {_COOKIE_ATTRIBUTES}"

    def script(self, visitor: Visitor) -> str:
        """JavaScript that sets the visitor's token (what every page of the site loads)."""
        token = self.keys.js_token(visitor.user_id)
        return f'document.cookie="{JS_COOKIE}={token}; path=/; SameSite=Lax";'

    def challenge_page(self, visitor: Visitor) -> str:
        return _CHALLENGE_PAGE.format(script=self.script(visitor))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # nginx keeps its connections to the gate open
    server: GateServer

    def _visitor_args(self) -> tuple[str | None, str, str]:
        return (
            self.headers.get("Cookie"),
            self.headers.get("X-Real-IP", self.client_address[0]),
            self.headers.get("User-Agent", ""),
        )

    def do_GET(self) -> None:
        gate = self.server.gate
        path = self.path.partition("?")[0]
        if path == "/check":
            status, headers = gate.check(*self._visitor_args())
            self._send(status, headers, b"")
        elif path in {"/check.js", "/challenge"}:
            visitor = gate.visitor(*self._visitor_args())
            headers = {"Cache-Control": "no-store"}
            cookie = gate.new_visitor_cookie(visitor)
            if cookie:
                headers["Set-Cookie"] = cookie
            if path == "/check.js":
                headers["Content-Type"] = "application/javascript"
                self._send(HTTPStatus.OK, headers, gate.script(visitor).encode())
            else:
                headers["Content-Type"] = "text/html; charset=utf-8"
                page = gate.challenge_page(visitor).encode()
                self._send(HTTPStatus.FORBIDDEN, headers, page)
        else:
            self._send(HTTPStatus.NOT_FOUND, {}, b"")

    def _send(self, status: HTTPStatus, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        try:
            self.end_headers()
            self.wfile.write(body)
        except ConnectionError as exc:
            # nginx stopped waiting (its proxy_read_timeout) and served the request unchecked:
            # one line, not http.server's traceback per request.
            log.warning("nginx left before the gate's answer to %s: %s", self.path, exc)
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """nginx logs every request; the gate logs only its own troubles."""


class GateServer(ThreadingHTTPServer):
    """The gate's HTTP server. Several gate processes may listen on one port
    (``SO_REUSEPORT``): run one per core and the kernel spreads nginx's connections over
    them; any one of them gone, the others go on answering."""

    daemon_threads = True
    allow_reuse_port = True

    def __init__(self, address: tuple[str, int], gate: Gate) -> None:
        super().__init__(address, _Handler)
        self.gate = gate
