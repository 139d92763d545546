"""The gate's answers to nginx, from a user's decision and cookies, over real HTTP.

Redis is a dict behind ``mget`` (``EdgeDecisions``'s only call); nginx's side is tested with
a real nginx in ``tests/integration/test_web_edge.py``.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http import HTTPStatus

import pytest

from botscore.enforcement.decisions import decision_key
from botscore.enforcement.edge import EdgeDecisions
from botscore.vocabulary import Component, Decision
from botscore.web_edge.gate import Gate, GateServer, answer_status
from botscore.web_edge.identity import EdgeKeys
from tests.unit.metrics_fakes import RecordingMetrics
from tests.unit.redis_fakes import KeyStore

KEYS = EdgeKeys("k" * 32)
IP, UA = "203.0.113.9", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"


@pytest.mark.parametrize(
    ("decision", "ran_js", "status"),
    [
        (Decision.ALLOW, False, HTTPStatus.NO_CONTENT),
        (Decision.ALLOW, True, HTTPStatus.NO_CONTENT),
        (Decision.CHALLENGE, False, HTTPStatus.UNAUTHORIZED),
        (Decision.CHALLENGE, True, HTTPStatus.NO_CONTENT),
        (Decision.BLOCK, False, HTTPStatus.FORBIDDEN),
        (Decision.BLOCK, True, HTTPStatus.FORBIDDEN),
    ],
)
def test_what_nginx_is_told(decision: Decision, ran_js: bool, status: HTTPStatus) -> None:
    assert answer_status(decision, ran_js) is status


def _gate(store: KeyStore) -> tuple[Gate, RecordingMetrics]:
    metrics = RecordingMetrics(Component.EDGE)
    decisions = EdgeDecisions(store, cache_ms=1000)  # type: ignore[arg-type]
    return Gate(KEYS, decisions, metrics), metrics


def test_a_new_visitor_is_allowed_and_given_its_signed_cookie() -> None:
    gate, metrics = _gate(KeyStore())
    status, headers = gate.check(None, IP, UA)
    user = KEYS.visitor(None, IP, UA).user_id
    assert status is HTTPStatus.NO_CONTENT
    assert headers == {
        "X-Botscore-User": user,
        "X-Botscore-Js": "0",
        "X-Botscore-Decision": "allow",
        "X-Botscore-Set-Cookie": f"bs_uid={KEYS.user_cookie(user)}; Path=/; HttpOnly; "
        "SameSite=Lax; Max-Age=31536000",
    }
    assert metrics.sent == [("count", "requests", 1, ("decision:allow", "answer:204"))]


def test_a_known_visitor_is_judged_by_its_cookie_s_user_and_its_token() -> None:
    store = KeyStore()
    store.values[decision_key("u-7")] = b"challenge"
    gate, _ = _gate(store)
    cookie = f"bs_uid={KEYS.user_cookie('u-7')}"
    status, headers = gate.check(cookie, IP, UA)
    assert status is HTTPStatus.UNAUTHORIZED
    assert headers["X-Botscore-User"] == "u-7" and headers["X-Botscore-Set-Cookie"] == ""
    status, headers = gate.check(f"{cookie}; bs_js={KEYS.js_token('u-7')}", IP, UA)
    assert status is HTTPStatus.NO_CONTENT
    assert headers["X-Botscore-Js"] == "1" and headers["X-Botscore-Decision"] == "challenge"
    # Another user's token is no token.
    status, _ = gate.check(f"{cookie}; bs_js={KEYS.js_token('u-8')}", IP, UA)
    assert status is HTTPStatus.UNAUTHORIZED


def test_the_gate_fails_open_while_redis_is_down() -> None:
    store = KeyStore()
    store.values[decision_key("u-7")] = b"block"
    store.down = True
    gate, _ = _gate(store)
    status, headers = gate.check(f"bs_uid={KEYS.user_cookie('u-7')}", IP, UA)
    assert status is HTTPStatus.NO_CONTENT and headers["X-Botscore-Decision"] == "allow"


@pytest.fixture
def served() -> Iterator[tuple[str, KeyStore]]:
    store = KeyStore()
    gate, _ = _gate(store)
    server = GateServer(("127.0.0.1", 0), gate)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", store
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"X-Real-IP": IP, "User-Agent": UA, **headers})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_over_http_a_blocked_user_gets_403_and_its_headers(served: tuple[str, KeyStore]) -> None:
    url, store = served
    user = KEYS.visitor(None, IP, UA).user_id
    store.values[decision_key(user)] = b"block"
    status, headers, body = _get(f"{url}/check")
    assert (status, body) == (403, b"")
    assert headers["X-Botscore-User"] == user and headers["X-Botscore-Decision"] == "block"


def test_the_script_sets_the_token_the_check_then_accepts(served: tuple[str, KeyStore]) -> None:
    url, store = served
    cookie = f"bs_uid={KEYS.user_cookie('u-7')}"
    store.values[decision_key("u-7")] = b"challenge"
    status, headers, body = _get(f"{url}/check.js", Cookie=cookie)
    assert status == 200 and headers["Content-Type"] == "application/javascript"
    token = KEYS.js_token("u-7")
    assert body.decode() == f'document.cookie="bs_js={token}; path=/; SameSite=Lax";'
    assert _get(f"{url}/check", Cookie=f"{cookie}; bs_js={token}")[0] == 204


def test_the_challenge_page_carries_the_script_and_names_a_new_visitor(
    served: tuple[str, KeyStore],
) -> None:
    url, _ = served
    status, headers, body = _get(f"{url}/challenge")
    user = KEYS.visitor(None, IP, UA).user_id
    assert status == 403 and headers["Cache-Control"] == "no-store"
    assert headers["Set-Cookie"].startswith(f"bs_uid={KEYS.user_cookie(user)};")
    assert f"bs_js={KEYS.js_token(user)}" in body.decode() and b"location.reload()" in body


@pytest.mark.parametrize(
    "cookie",
    ['bs_js="\u00e9"', 'bs_uid="u-7.\u00e9"', 'bs_uid="\u00e9.\u00e9"; bs_js="\u00ff\u00fe"'],
)
def test_cookies_holding_any_bytes_are_answered_as_no_cookie(
    served: tuple[str, KeyStore], cookie: str
) -> None:
    """A quoted cookie may hold any bytes, which reach the gate as text that is not ASCII."""
    url, store = served
    store.values[decision_key(KEYS.visitor(None, IP, UA).user_id)] = b"challenge"
    on_the_wire = cookie.encode().decode("latin-1")  # http.server reads headers so
    status, headers, _ = _get(f"{url}/check", Cookie=on_the_wire)
    assert (status, headers["X-Botscore-User"]) == (401, KEYS.visitor(None, IP, UA).user_id)


def test_anything_else_is_not_found(served: tuple[str, KeyStore]) -> None:
    url, _ = served
    assert _get(f"{url}/admin")[0] == 404


class _SlowStore(KeyStore):
    """Redis answering only once ``answer`` is set: slower than nginx waits for the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = threading.Event()

    def mget(self, keys: list[str]) -> list[bytes | None]:
        self.answer.wait(timeout=5)
        return super().mget(keys)


def test_nginx_gone_before_the_answer_is_one_log_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    store = _SlowStore()
    gate, _ = _gate(store)
    server = GateServer(("127.0.0.1", 0), gate)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_address[1]), timeout=5) as nginx:
            nginx.sendall(b"GET /check HTTP/1.1\r\nHost: gate\r\nX-Real-IP: 203.0.113.9\r\n\r\n")
            time.sleep(0.2)  # the gate is reading Redis; nginx gives up and closes
        store.answer.set()
        deadline = time.monotonic() + 2
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # a traceback after the line would show by now
    finally:
        store.answer.set()
        server.shutdown()
        server.server_close()
    assert "Traceback" not in capsys.readouterr().err
    assert [(r.levelname, r.getMessage().split(":")[0]) for r in caplog.records] == [
        ("WARNING", "nginx left before the gate's answer to /check")
    ]
