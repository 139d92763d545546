"""A real edge: nginx in front of the demo shop, asking `botscore edge gate` about every
request and logging each one for `botscore edge ship`, with real HTTP clients.

nginx is Debian's, started by ``stack/nginx/nginx.sh`` from its template; the gate reads the
decisions the enforcer writes in the stack's Redis; the shipper sends the access log to
the real broker. The last test runs the whole loop behind nginx: a scripted client is
blocked seconds after its first request while a browser-like visitor never notices.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from kafka.consumer.fetcher import ConsumerRecord

from botscore.enforcement.decisions import decision_key
from botscore.settings import AggregationSettings, KafkaSettings
from botscore.v1.web_log_pb2 import WebLog
from botscore.web_edge.combined_log import line_request_id
from botscore.web_edge.identity import EdgeKeys
from botscore.web_edge.log_formats import MAX_LINE_BYTES
from tests.statsd import StatsdListener

from .faults import free_port
from .harness import (
    ROOT,
    delete_topics,
    empty_redis_db,
    enforcing,
    fresh_topics,
    new_run_id,
    read_topic,
    run_topics,
    sparse_run,
    stack_env,
    stack_script,
    wait_until_reading,
)
from .wire_proofs import WEB_SERVER_METRICS, missing_from

pytestmark = [pytest.mark.integration, pytest.mark.edge]

REDIS_DB = 13  # the stack's Redis, a database of this module's own
NGINX_SH = ROOT / "stack" / "nginx" / "nginx.sh"
SECRET = "an edge secret of the tests, 32 bytes or more"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SCRIPTED = "python-requests/2.32.3"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@dataclass
class Edge:
    """nginx and the gate, on ports of their own; ``env`` is what any process of it needs."""

    port: int
    access_log: Path
    env: dict[str, str]
    tmp: Path
    gate: subprocess.Popen | None = None  # the last one started
    gates: list[subprocess.Popen] = field(default_factory=list)

    def start_gate(self) -> subprocess.Popen:
        path = self.tmp / "gate.log"
        started = path.read_text().count("answering nginx") if path.exists() else 0
        log = path.open("ab")
        gate = subprocess.Popen(
            ["botscore", "edge", "gate"], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        self.gate = gate
        self.gates.append(gate)
        deadline = time.monotonic() + 30
        while path.read_text().count("answering nginx") == started:
            assert gate.poll() is None, (self.tmp / "gate.log").read_text()
            assert time.monotonic() < deadline, "the gate did not start within 30 s"
            time.sleep(0.1)
        return gate

    def stop_gate(self, sig: int = signal.SIGTERM) -> None:
        assert self.gate is not None
        self.gate.send_signal(sig)
        self.gate.wait(30)

    def ship(self, log_name: str) -> subprocess.Popen:
        log = (self.tmp / log_name).open("ab")
        return subprocess.Popen(
            ["botscore", "edge", "ship"], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )

    def logged(self) -> list[dict[str, str]]:
        """The access log's lines, rotated ones first."""
        rotated = self.access_log.with_name(self.access_log.name + ".1")
        lines: list[dict[str, str]] = []
        for path in (rotated, self.access_log):
            if path.exists():
                lines += [json.loads(line) for line in path.read_text().splitlines() if line]
        return lines


@dataclass
class Client:
    """An HTTP client from its own loopback address, keeping cookies as a browser does."""

    port: int
    address: str
    user_agent: str
    cookies: dict[str, str] = field(default_factory=dict)

    def get(self, path: str, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=10, source_address=(self.address, 0)
        )
        headers = {"User-Agent": self.user_agent}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            for value in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
            return response.status, response.read()
        finally:
            connection.close()

    def run_script(self, source: bytes) -> None:
        """What a browser makes of the edge's script: the cookie it sets."""
        match = re.search(rb'document.cookie="(\w+)=(\w+);', source)
        assert match, source
        self.cookies[match[1].decode()] = match[2].decode()


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Edge]:
    """nginx on a port of its own, its state under ``tmp_path``; stopped afterwards."""
    port, gate_port = free_port(), free_port()
    state = tmp_path / "state"
    env = stack_env(
        BOTSCORE_STATE=str(state),
        EDGE_PORT=str(port),
        BOTSCORE_EDGE_GATE_PORT=str(gate_port),
        BOTSCORE_EDGE_SECRET=SECRET,
        BOTSCORE_EDGE_ACCESS_LOG=str(state / "nginx" / "access.log"),
        BOTSCORE_REDIS_DB=str(REDIS_DB),
    )
    stack_script(NGINX_SH, "start", env=env)
    site = Edge(port, state / "nginx" / "access.log", env, tmp_path)
    try:
        yield site
    finally:
        for gate in site.gates:
            if gate.poll() is None:
                gate.terminate()
                gate.wait(30)
        stack_script(NGINX_SH, "stop", env=env)


@pytest.fixture
def decisions() -> Iterator[redis.Redis]:
    with empty_redis_db(REDIS_DB) as client:
        yield client


def test_nginx_serves_challenges_and_blocks_as_the_decisions_in_redis_say(
    edge: Edge, decisions: redis.Redis
) -> None:
    with StatsdListener() as metrics:
        edge.env["BOTSCORE_METRICS_STATSD_PORT"] = str(metrics.port)
        edge.start_gate()
        visitor = Client(edge.port, "127.0.0.2", BROWSER)
        status, page = visitor.get("/products/17")
        assert status == 200 and b"<h1>A product</h1>" in page
        user_cookie = visitor.cookies["bs_uid"]
        user = user_cookie.rpartition(".")[0]

        decisions.set(decision_key(user), "challenge")
        time.sleep(1.2)  # the gate's answers are at most edge.decision_cache_ms (1 s) old
        status, page = visitor.get("/products/18")
        assert status == 403 and b"Checking your browser" in page
        visitor.run_script(page)
        assert visitor.get("/products/18")[0] == 200  # the script's token passes it
        # A client that does not run scripts stays challenged.
        assert Client(edge.port, "127.0.0.2", BROWSER, {"bs_uid": user_cookie}).get("/")[0] == 403

        decisions.set(decision_key(user), "block")
        time.sleep(1.2)
        status, page = visitor.get("/")
        assert status == 403 and b"Access denied" in page
        # The script is no way around a block.
        assert visitor.get("/_botscore/check.js")[0] == 200
        assert visitor.get("/")[0] == 403
        # Nor is a cookie of its own making: unsigned, it names the same client as none.
        escaping = Client(edge.port, "127.0.0.2", BROWSER, {"bs_uid": f"u-fresh.{'0' * 32}"})
        assert escaping.get("/")[0] == 403

        # A sign-in (always refused by the demo shop) keeps its method in the log.
        other = Client(edge.port, "127.0.0.3", BROWSER)
        assert other.get("/login", "POST", b"user=a&password=b")[0] == 401

        # The gate down: nginx serves everyone (fails open), and logs them without a user.
        edge.stop_gate()
        assert visitor.get("/")[0] == 200
        time.sleep(0.5)
    received = metrics.tags_by_metric()

    logged = edge.logged()
    assert [(e["uri"], e["status"], e["decision"], e["js"]) for e in logged] == [
        ("/products/17", "200", "allow", "0"),
        ("/products/18", "403", "challenge", "0"),
        ("/products/18", "200", "challenge", "1"),
        ("/", "403", "challenge", "0"),
        ("/", "403", "block", "1"),
        ("/", "403", "block", "1"),
        ("/", "403", "block", "0"),
        ("/login", "401", "allow", "0"),
        ("/", "200", "", ""),
    ]
    assert {e["user"] for e in logged[:7]} == {user}
    assert logged[7]["request"] == "POST /login HTTP/1.1" and logged[7]["ip"] == "127.0.0.3"
    assert logged[-1]["user"] == ""
    assert {"decision:allow", "decision:challenge", "decision:block"} <= received.get(
        "botscore.edge.requests", set()
    )
    assert {"answer:204", "answer:401", "answer:403"} <= received["botscore.edge.requests"]


def _answered_block(client: Client, timeout_s: float) -> None:
    """Wait until a gate answers ``client``'s request with its block (nginx serves it while
    no gate answers), then every one of the next 20 must be."""
    deadline = time.monotonic() + timeout_s
    while client.get("/")[0] != 403:
        assert time.monotonic() < deadline, f"no gate blocked the client in {timeout_s:.0f} s"
        time.sleep(0.1)
    statuses = [client.get(f"/products/{i}")[0] for i in range(20)]
    assert statuses == [403] * 20, statuses


def test_gates_share_one_port_and_any_one_answers_alone(edge: Edge, decisions: redis.Redis):
    """One gate per core: a second `botscore edge gate` on the same port starts beside the
    first (SO_REUSEPORT), and with either one killed the other answers every request."""
    first, second = edge.start_gate(), edge.start_gate()
    client = Client(edge.port, "127.0.0.4", SCRIPTED)
    client.get("/")
    user = client.cookies["bs_uid"].rpartition(".")[0]
    decisions.set(decision_key(user), "block")
    _answered_block(client, timeout_s=5)
    for gone in (first, second):
        gone.kill()
        gone.wait(30)
        _answered_block(client, timeout_s=10)
        if gone is first:
            edge.start_gate()  # the first's place, for when the second goes


def _requests(client: Client, count: int) -> None:
    for i in range(count):
        assert client.get(f"/products/{i}")[0] == 200


def _ship_to_own_topics(
    edge: Edge, kafka_settings: KafkaSettings, name: str
) -> tuple[str, KafkaSettings]:
    """A web-logs topic and the run's topics of the test's own, for the edge's processes;
    127.0.0.4 is a data centre's address."""
    run = new_run_id()
    topic = f"it-edge-{name}-{run}"
    kafka = fresh_topics(kafka_settings, prefix="it-edge", run=run, also=(topic,))
    edge.env.update(
        BOTSCORE_AGGREGATION_WEB_LOGS_TOPIC=topic,
        BOTSCORE_KAFKA_DEAD_LETTER_TOPIC=kafka.dead_letter_topic,
        BOTSCORE_EDGE_DATACENTER_NETWORKS="127.0.0.4/32",
    )
    return topic, kafka


def _until_shipped(
    kafka: KafkaSettings, topic: str, wanted: int, shipper: subprocess.Popen, edge: Edge
) -> list[ConsumerRecord]:
    """The topic's records once ``wanted`` different ones arrived (or 60 s passed); then
    the shipper and the gate are stopped, the shipper cleanly."""
    deadline = time.monotonic() + 60
    while True:
        records = read_topic(kafka, topic)
        if len({r.value for r in records}) >= wanted or time.monotonic() > deadline:
            break
        time.sleep(1)
    shipper.send_signal(signal.SIGTERM)
    assert shipper.wait(30) == 0
    edge.stop_gate()
    return records


def test_the_access_log_reaches_the_topic_across_a_kill_a_rotation_a_bad_line_and_the_gate_down(
    edge: Edge, decisions: redis.Redis, kafka_settings: KafkaSettings
) -> None:
    topic, kafka = _ship_to_own_topics(edge, kafka_settings, "web-logs")
    with StatsdListener() as listener:
        edge.env["BOTSCORE_METRICS_STATSD_PORT"] = str(listener.port)
        edge.start_gate()
        humans = [Client(edge.port, f"127.0.0.{i}", BROWSER) for i in (2, 3)]
        bot = Client(edge.port, "127.0.0.4", SCRIPTED)
        try:
            shipper = edge.ship("ship-1.log")
            for client in (*humans, bot):
                _requests(client, 40)
            saved = edge.access_log.with_name("access.log.shipped")
            deadline = time.monotonic() + 60
            while not saved.exists():
                assert shipper.poll() is None, (edge.tmp / "ship-1.log").read_text()
                assert time.monotonic() < deadline, "the shipper saved no position within 60 s"
                time.sleep(0.1)
            for client in humans:
                _requests(client, 30)
            shipper.kill()  # kill -9 while it ships these: nothing saved past what Kafka has
            shipper.wait(10)
            # logrotate's way: rename, then nginx reopens its log.
            edge.access_log.rename(edge.access_log.with_name("access.log.1"))
            stack_script(NGINX_SH, "reopen", env=edge.env)
            deadline = time.monotonic() + 10
            while not edge.access_log.exists():
                assert time.monotonic() < deadline, "nginx did not reopen its log"
                time.sleep(0.1)
            with edge.access_log.open("ab") as log:
                log.write(b'{"not": "a request"}\n')
            decisions.set(decision_key(bot.cookies["bs_uid"].rpartition(".")[0]), "block")
            time.sleep(1.2)
            assert bot.get("/products/1")[0] == 403
            _requests(humans[0], 20)
            # A visitor whose address changed keeps the user its cookie names.
            traveller = Client(edge.port, "127.0.0.6", BROWSER)
            _requests(traveller, 1)
            traveller.address = "127.0.0.7"
            _requests(traveller, 3)
            # The gate down: nginx serves (fails open) and logs without the gate's answer.
            edge.stop_gate()
            _requests(traveller, 10)
            stranger = Client(edge.port, "127.0.0.5", BROWSER)
            _requests(stranger, 5)
            edge.start_gate()
            assert stranger.get("/")[0] == 200  # now the gate names it
            shipper = edge.ship("ship-2.log")
            wanted = [e for e in edge.logged() if e.get("decision") not in (None, "block")]
            shipped = {}
            for record in _until_shipped(kafka, topic, len(wanted), shipper, edge):
                web_log = WebLog.FromString(record.value)
                assert record.key == web_log.user_id.encode()
                shipped[web_log.request_id] = web_log
        finally:
            delete_topics(kafka, [topic, *run_topics(kafka)])
        received = listener.tags_by_metric()

    # What the dashboards graph of nginx's side, with the tags they group by.
    missing = missing_from(received, WEB_SERVER_METRICS)
    assert not missing, f"the gate and the shipper never sent {missing}"
    assert "outcome:unchecked" in received["botscore.log_shipper.lines"]
    assert len(wanted) == 3 * 40 + 2 * 30 + 20 + 1 + 3 + 10 + 5 + 1
    assert sum(e["user"] == "" for e in wanted) == 15
    # Whom the gate named at each address: the shipper must name the unanswered the same.
    named = {e["ip"]: e["user"] for e in wanted if e["user"]}
    assert named["127.0.0.7"] == named["127.0.0.6"]  # by its cookie, not its new address
    assert len(set(named.values())) == len(named) - 1 == 5
    missing = {e["request_id"] for e in wanted} - set(shipped)
    assert not missing, f"{len(missing)} of {len(wanted)} requests never reached the topic"
    assert set(shipped) == {e["request_id"] for e in wanted}, "requests nginx never logged"
    for entry in wanted:
        web_log = shipped[entry["request_id"]]
        assert (web_log.user_id, web_log.ip, web_log.path, web_log.status) == (
            entry["user"] or named[entry["ip"]],
            entry["ip"],
            entry["uri"],
            int(entry["status"]),
        )
        assert web_log.user_agent == (SCRIPTED if entry["ip"] == "127.0.0.4" else BROWSER)
        assert web_log.ip_is_datacenter == (entry["ip"] == "127.0.0.4")
    second = (edge.tmp / "ship-2.log").read_text()
    assert "is no request, not shipped: missing_field" in second, second
    assert "Traceback" not in second


def test_nginx_s_own_combined_log_reaches_the_topic_as_the_same_requests(
    edge: Edge, decisions: redis.Redis, kafka_settings: KafkaSettings
) -> None:
    """A server without the gate: nginx's default format, escapes and all, shipped."""
    topic, kafka = _ship_to_own_topics(edge, kafka_settings, "combined")
    combined_log = edge.access_log.with_name("access-combined.log")
    edge.env.update(
        BOTSCORE_EDGE_ACCESS_LOG=str(combined_log), BOTSCORE_EDGE_ACCESS_LOG_FORMAT="combined"
    )
    edge.start_gate()
    # nginx escapes a quote, a backslash and every byte outside printable ASCII as \xHH
    odd_agent = 'Odd "agent" \\ café/1.0'
    # http.client sends a header's characters as Latin-1: these are the agent's UTF-8 bytes
    odd = Client(edge.port, "127.0.0.3", odd_agent.encode().decode("latin-1"))
    browser, scripted = (
        Client(edge.port, "127.0.0.2", BROWSER),
        Client(edge.port, "127.0.0.4", SCRIPTED),
    )
    clients = [browser, odd, scripted]
    try:
        for client in clients:
            _requests(client, 15)
        assert browser.get("/login?next=%2F%22x", "POST", b"user=a&password=b")[0] == 401
        assert odd.get("/no-such-page")[0] == 404
        assert scripted.get("/", "HEAD")[0] == 200
        too_long = (
            b'127.0.0.9 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "'
            + b"a" * (MAX_LINE_BYTES + 1)
            + b'"'
        )
        with combined_log.open("ab") as log:
            log.write(b"a line no server writes\n" + too_long + b"\n")
        _requests(browser, 5)
        shipper = edge.ship("ship-combined.log")
        logged = edge.logged()
        wanted = len(logged)
        assert wanted == 3 * 15 + 3 + 5
        records = _until_shipped(kafka, topic, wanted, shipper, edge)
        shipped = [WebLog.FromString(r.value) for r in records]
    finally:
        delete_topics(kafka, [topic, *run_topics(kafka)])

    keys = EdgeKeys(SECRET)
    host = socket.gethostname()

    def as_logged(entry: dict[str, str]) -> tuple[object, ...]:
        """What the combined line of a request logged in botscore's format must become."""
        return (
            int(entry["time"].split(".")[0]) * 1000,
            keys.visitor(None, entry["ip"], entry["user_agent"]).user_id,
            entry["ip"],
            entry["ip"] == "127.0.0.4",
            entry["request"].split(" ")[0],
            entry["uri"],
            int(entry["status"]),
            entry["user_agent"],
            entry["referrer"],
            int(entry["bytes"]),
            host,
        )

    def got(w: WebLog) -> tuple[object, ...]:
        return (
            w.time_unix_ms,
            w.user_id,
            w.ip,
            w.ip_is_datacenter,
            w.method,
            w.path,
            w.status,
            w.user_agent,
            w.referrer,
            w.response_bytes,
            w.edge_node,
        )

    assert sorted(map(got, shipped)) == sorted(map(as_logged, logged))
    assert sum(w.user_agent == odd_agent for w in shipped) == 16
    assert not any(w.js_check_passed for w in shipped)
    # each line's id names its place in the file and its bytes: read again, counted once
    inode, end, ids = combined_log.stat().st_ino, 0, set()
    for line in combined_log.read_bytes().split(b"\n")[:-1]:
        end += len(line) + 1
        if line not in (b"a line no server writes", too_long):
            ids.add(line_request_id(f"{host}:{inode}:{end}", line))
    assert {w.request_id for w in shipped} == ids
    shipper_log = (edge.tmp / "ship-combined.log").read_text()
    assert "(combined format)" in shipper_log
    assert "is no request, not shipped: not_combined" in shipper_log, shipper_log
    assert "is no request, not shipped: too_long" in shipper_log, shipper_log
    assert "Traceback" not in shipper_log


def _first_status(client: Client, path: str, wanted: int, timeout_s: float) -> float | None:
    """Seconds until ``path`` first answered ``wanted``, requesting it every 0.5 s."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if client.get(path)[0] == wanted:
            return time.monotonic() - start
        time.sleep(0.5)
    return None


def _walk(client: Client, seconds: float, every_s: float) -> list[tuple[float, int, bytes]]:
    """The catalogue in order, one product each ``every_s``, until blocked or ``seconds``."""
    start, answers = time.monotonic(), []
    product = 1
    while time.monotonic() - start < seconds:
        status, body = client.get(f"/products/{product}")
        answers.append((time.monotonic() - start, status, body))
        if b"Access denied" in body:
            break
        product += 1
        time.sleep(every_s)
    return answers


def _when(answers: list[tuple[float, int, bytes]]) -> str:
    """When a walk was first challenged and blocked, in words."""
    challenged = next((t for t, _, b in answers if b"Checking your browser" in b), None)
    blocked = next((t for t, _, b in answers if b"Access denied" in b), None)
    return (
        f"{len(answers)} requests: first challenged "
        f"{'never' if challenged is None else f'{challenged:.1f} s'}, blocked "
        f"{'never' if blocked is None else f'{blocked:.1f} s'} after its first request"
    )


def test_behind_nginx_a_scripted_client_is_blocked_within_seconds_and_a_browser_is_not(
    edge: Edge, decisions: redis.Redis, kafka_settings: KafkaSettings, report_figure
) -> None:
    run = new_run_id()
    web_logs = f"it-edge-loop-web-logs-{run}"
    kafka = fresh_topics(kafka_settings, prefix="it-edge-loop", run=run, also=(web_logs,))
    aggregation = AggregationSettings(
        web_logs_topic=web_logs, consumer_group=f"it-edge-loop-agg-{run}"
    )
    loop_env = {
        "BOTSCORE_AGGREGATION_WEB_LOGS_TOPIC": aggregation.web_logs_topic,
        "BOTSCORE_AGGREGATION_CONSUMER_GROUP": aggregation.consumer_group,
        "BOTSCORE_REDIS_DB": str(REDIS_DB),
    }
    edge.env.update(loop_env, BOTSCORE_KAFKA_DEAD_LETTER_TOPIC=kafka.dead_letter_topic)
    tmp = edge.tmp
    try:
        with (
            sparse_run(kafka, tmp / "aggregation.log", topology="aggregation", **loop_env) as agg,
        ):
            wait_until_reading(agg, tmp / "aggregation.log")
            with (
                sparse_run(kafka, tmp / "scoring.log", topology="scoring", **loop_env) as scoring,
                enforcing(kafka, f"it-edge-loop-enforce-{run}", tmp / "enforce.log", **loop_env),
            ):
                wait_until_reading(scoring, tmp / "scoring.log")
                edge.start_gate()
                shipper = edge.ship("ship.log")
                try:
                    browser = Client(edge.port, "127.0.0.2", BROWSER)
                    statuses = []
                    for page in ("/", "/products/3", "/category/7"):
                        statuses.append(browser.get(page)[0])
                        for asset in ("/static/site.css", "/img/logo.svg", "/static/app.js"):
                            statuses.append(browser.get(asset)[0])
                        browser.run_script(browser.get("/_botscore/check.js")[1])
                        time.sleep(2)
                    bot = Client(edge.port, "127.0.0.3", SCRIPTED)
                    blocked_after_s = _first_status(bot, "/products/1", 403, timeout_s=60)
                    for page in ("/products/4", "/search?q=lamp", "/products/5"):
                        statuses.append(browser.get(page)[0])
                        time.sleep(3)
                    # A scraper behind a browser's user agent that runs no script: a figure.
                    scraper = Client(edge.port, "127.0.0.4", CHROME)
                    walked = _walk(scraper, seconds=40, every_s=0.5)
                finally:
                    shipper.send_signal(signal.SIGTERM)
                    shipper.wait(30)
                assert agg.poll() is None and scoring.poll() is None
    finally:
        delete_topics(kafka, [web_logs, *run_topics(kafka)])

    logged = edge.logged()
    bot_requests = [e for e in logged if e["ip"] == "127.0.0.3"]
    report_figure(
        f"behind nginx: a {SCRIPTED} client blocked "
        f"{'never' if blocked_after_s is None else f'{blocked_after_s:.1f} s'} after its first "
        f"request ({len(bot_requests)} requests, one each 0.5 s); the browser-like visitor's "
        f"{len(statuses)} requests answered {sorted(set(statuses))}"
    )
    report_figure(f"behind nginx: a scraper with Chrome's user agent, no script, {_when(walked)}")
    assert blocked_after_s is not None, "the scripted client was never blocked within 60 s"
    assert blocked_after_s < 30
    assert set(statuses) == {200}, "the browser-like visitor was challenged or blocked"
