"""The web page of `botscore top --http`: its document of figures, and its server."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from botscore.observability.local_view import PANELS, LocalView, Panel, Reduce
from botscore.observability.statsd_lines import parse_line
from botscore.observability.web_view import PAGE, ViewServer, figures_document

PANELS_SHOWN = (
    Panel("users scored", "botscore.classifier.scored", Reduce.RATE),
    Panel("dead letters", "botscore.*.dead_lettered", Reduce.RATE, by="reason"),
    Panel("model call p99", "botscore.classifier.predict_seconds", Reduce.P99_MS),
    Panel("lag", "botscore.*.lag", Reduce.MAX_LATEST, by="component"),
)


def test_the_document_holds_every_panel_in_order_with_its_unit_and_groups() -> None:
    figures = {
        "users scored": {"": 812.5},
        "dead letters": {"undecodable": 0.5, "missing_feature": 1.0},
        "lag": {"classifier": 3.0},
    }
    document = figures_document(figures, 10.0, 1796420000.5, PANELS_SHOWN)
    assert document == {
        "at_unix_s": 1796420000.5,
        "window_s": 10.0,
        "panels": [
            {"title": "users scored", "unit": "/s", "by": None, "values": {"": 812.5}},
            {
                "title": "dead letters",
                "unit": "/s",
                "by": "reason",
                "values": {"missing_feature": 1.0, "undecodable": 0.5},
            },
            {"title": "model call p99", "unit": "ms", "by": None, "values": {}},
            {"title": "lag", "unit": "", "by": "component", "values": {"classifier": 3.0}},
        ],
    }
    assert list(document["panels"][1]["values"]) == ["missing_feature", "undecodable"]
    json.dumps(document)  # what the server sends


def test_by_default_the_document_has_the_terminal_s_panels() -> None:
    titles = [p["title"] for p in figures_document({}, 10.0, 0.0)["panels"]]
    assert titles == [panel.title for panel in PANELS]


def test_the_document_names_a_consumer_that_stopped_sending_and_for_how_long() -> None:
    """A hung enforcer is a row of its own on the page, not a name missing from the lag's."""
    view = LocalView(window_s=10, silent_after_s=12)
    view.add([parse_line("botscore.enforcer.lag:1031|g|#component:enforcer,partition:0")], 0.0)
    panels = figures_document(view.snapshot(45.0), 10.0, 1796420045.0)["panels"]
    silent = next(p for p in panels if p["title"] == "components silent")
    assert silent == {
        "title": "components silent",
        "unit": "s",  # the page shows "enforcer 45 s"
        "by": "component",
        "values": {"enforcer": 45.0},
    }
    assert [p["values"] for p in panels if p["title"].startswith("consumer lag")] == [{}]


@pytest.fixture
def served() -> Iterator[tuple[str, ViewServer]]:
    server = ViewServer(0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_the_page_and_the_latest_figures_are_served(served: tuple[str, ViewServer]) -> None:
    url, server = served
    status, content_type, body = _get(f"{url}/")
    assert (status, content_type) == (200, "text/html; charset=utf-8")
    assert body == PAGE.encode() and b'fetch("figures.json"' in body
    assert _get(f"{url}/figures.json")[2] == b"null"  # before the first screen
    server.publish(figures_document({"users scored": {"": 3.0}}, 10.0, 5.0))
    status, content_type, body = _get(f"{url}/figures.json?t=1")
    assert (status, content_type) == (200, "application/json")
    assert json.loads(body)["panels"][3] == {
        "title": "users scored",
        "unit": "/s",
        "by": None,
        "values": {"": 3.0},
    }
    assert _get(f"{url}/admin")[0] == 404
