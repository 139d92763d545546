import copy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from botscore.cli.main import EXIT_FAILURE, EXIT_OK, main
from botscore.errors import ConfigError
from botscore.observability.catalog import CATALOG, metric_for
from botscore.observability.datadog_assets import (
    Asset,
    AssetKind,
    grouped_tags,
    load_assets,
    metric_names,
    problems,
    push,
)

ASSETS = Path(__file__).resolve().parents[3] / "monitoring"
SHIPPED = load_assets(ASSETS)


def _dashboard(*widgets, **extra):
    return {
        "title": "t",
        "layout_type": "ordered",
        "widgets": list(widgets),
        "template_variables": [{"name": "env", "prefix": "env", "default": "*"}],
        **extra,
    }


def _timeseries(query):
    return {"definition": {"type": "timeseries", "requests": [{"q": query}]}}


GOOD_QUERY = "sum:botscore.classifier.scored{$env}.as_rate()"


def test_every_dashboard_and_monitor_is_shipped():
    kinds = sorted((a.kind.value, a.path.stem) for a in SHIPPED)
    assert [k for k, _ in kinds].count("dashboard") == 3
    assert [k for k, _ in kinds].count("monitor") >= 4


def test_every_declared_metric_is_on_a_dashboard_or_a_monitor():
    """A metric nobody graphs or watches is sent for nothing: each declared one (a
    histogram by any of its aggregates) appears in some shipped query."""
    queried = {
        "botscore.{}.{}".format(*metric_for(name)[:2])
        for asset in SHIPPED
        for name in metric_names(asset.body)
        if name.startswith("botscore.")
    }
    declared = {f"botscore.{c}.{what}" for c, metrics in CATALOG.items() for what in metrics}
    assert sorted(declared - queried) == []


@pytest.mark.parametrize("asset", SHIPPED, ids=[a.path.stem for a in SHIPPED])
def test_each_shipped_asset_passes_the_offline_check(asset):
    assert problems(asset) == []
    assert metric_names(asset.body), "an asset that graphs no metric"


def test_a_sound_dashboard_passes():
    assert (
        problems(Asset(AssetKind.DASHBOARD, Path("d.json"), _dashboard(_timeseries(GOOD_QUERY))))
        == []
    )


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (_dashboard({"definition": {"type": "sparkle", "q": 1}}), "not understood"),
        (_dashboard(_timeseries(GOOD_QUERY), titel="typo"), "titel: unknown field"),
        (
            _dashboard(
                {"definition": {"type": "timeseries", "requests": [{"q": GOOD_QUERY, "colour": 1}]}}
            ),
            "colour: unknown field",
        ),
        (
            _dashboard(_timeseries("sum:botscore.classifier.scorred{*}")),
            "botscore.classifier.scorred",
        ),
        (
            _dashboard(_timeseries("avg:botscore.classifier.predict_seconds{*}")),
            "no component sends",
        ),
        (_dashboard(_timeseries("avg:system.cpu.user{*}")), "neither ours"),
        (
            _dashboard(_timeseries("sum:botscore.classifier.scored{*} by {reason}")),
            "grouped by reason, a tag it is never sent with",
        ),
        ({"title": "t", "widgets": []}, "not a valid dashboard"),
        (_dashboard(_timeseries(GOOD_QUERY), layout_type="sideways"), "not understood"),
    ],
    ids=[
        "unknown-widget",
        "unknown-top-field",
        "unknown-nested-field",
        "misspelt-metric",
        "histogram-without-aggregate",
        "foreign-metric",
        "undeclared-group-tag",
        "missing-layout",
        "bad-enum",
    ],
)
def test_the_check_refuses_what_the_api_would_refuse_or_show_empty(body, said):
    found = problems(Asset(AssetKind.DASHBOARD, Path("d.json"), body))
    assert any(said in p for p in found), found


def test_a_monitor_with_an_unknown_option_is_refused():
    body = copy.deepcopy(next(a for a in SHIPPED if a.kind is AssetKind.MONITOR).body)
    body["options"]["thresholds"]["critcal"] = 1
    found = problems(Asset(AssetKind.MONITOR, Path("m.json"), body))
    assert any("critcal: unknown field" in p for p in found), found


def test_grouped_tags_reads_the_by_clauses():
    body = {"q": "sum:botscore.a.b{*} by {reason,model}.as_count(), sum:botscore.c.d{x:y}"}
    assert grouped_tags(body) == {"botscore.a.b": {"reason", "model"}, "botscore.c.d": set()}


def test_metric_names_reads_every_query_form():
    body = {
        "a": [{"q": "sum:botscore.x.y{*} by {reason}.as_count(), avg:kafka.consumer_lag{a:b}"}],
        "query": "sum(last_5m):sum:botscore.p.q{*}.as_count() + sum:botscore.r.s{env:x} > 3",
    }
    assert metric_names(body) == {
        "botscore.x.y",
        "kafka.consumer_lag",
        "botscore.p.q",
        "botscore.r.s",
    }


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"{", "not JSON"),
        (b"\xff\xfe{}", "not JSON"),
        (b"[1]", "the request body must be a JSON object"),
        (b"[" * 100_000 + b"]" * 100_000, "its JSON nests too deeply to read"),
    ],
)
def test_load_assets_says_which_file_is_not_a_json_object(tmp_path, content, says):
    (tmp_path / "dashboards").mkdir()
    (tmp_path / "dashboards" / "broken.json").write_bytes(content)
    with pytest.raises(ConfigError, match=rf"broken\.json: {says}"):
        load_assets(tmp_path)


def test_the_command_checks_offline_by_default(capsys):
    assert main(["datadog", "--assets", str(ASSETS)]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"{len(SHIPPED)} assets checked offline; nothing sent" in out


def test_the_command_fails_on_a_refused_asset(tmp_path, capsys):
    (tmp_path / "dashboards").mkdir()
    body = _dashboard(_timeseries("sum:botscore.nothing.here{*}"))
    (tmp_path / "dashboards" / "bad.json").write_text(json.dumps(body))
    assert main(["datadog", "--assets", str(tmp_path)]) == EXIT_FAILURE
    assert "REFUSED" in capsys.readouterr().out


def test_push_needs_both_keys(monkeypatch, capsys):
    monkeypatch.setenv("DD_API_KEY", "k")
    monkeypatch.delenv("DD_APP_KEY", raising=False)
    assert main(["datadog", "--assets", str(ASSETS), "--push"]) == EXIT_FAILURE
    assert "DD_APP_KEY" in capsys.readouterr().err


class _FakeDatadog(BaseHTTPRequestHandler):
    """Answers the four calls ``push`` makes, and records them."""

    calls: list[tuple[str, str, dict]] = []
    existing_dashboard = "botscore: edge loop"

    def _reply(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else {}
        self.calls.append((self.command, self.path.split("?")[0], body))
        assert self.headers["DD-API-KEY"] == "api" and self.headers["DD-APPLICATION-KEY"] == "app"
        return body

    def do_GET(self):
        self._record()
        if self.path.startswith("/api/v1/dashboard"):
            self._reply({"dashboards": [{"id": "abc-123", "title": self.existing_dashboard}]})
        else:
            self._reply([])

    def do_POST(self):
        body = self._record()
        self._reply({**body, "id": 7} if "monitor" in self.path else {**body, "id": "new-1"})

    def do_PUT(self):
        body = self._record()
        self._reply({**body, "id": "abc-123"})

    def log_message(self, *args):
        pass


def test_push_creates_new_assets_and_updates_those_with_the_same_title():
    _FakeDatadog.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeDatadog)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = push(SHIPPED, "api", "app", None, host=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert "updated dashboard botscore: edge loop" in done
    assert sum(line.startswith("created") for line in done) == len(SHIPPED) - 1
    writes = [(m, p) for m, p, _ in _FakeDatadog.calls if m != "GET"]
    assert ("PUT", "/api/v1/dashboard/abc-123") in writes
    sent = {b.get("title") or b.get("name") for m, _, b in _FakeDatadog.calls if m != "GET"}
    assert sent == {a.title for a in SHIPPED}


def test_the_consumer_lag_monitors_notice_a_consumer_that_stops_sending():
    """A hung or stopped consumer sends no lag at all rather than a growing one: without
    ``notify_no_data`` its monitor would stay as green as for a healthy one."""
    lag = [
        asset
        for asset in SHIPPED
        if asset.kind is AssetKind.MONITOR
        and any(name.endswith(".lag") for name in metric_names(asset.body))
    ]
    assert sorted(a.path.stem for a in lag) == ["aggregation_lag", "enforcer_lag", "scoring_lag"]
    for asset in lag:
        options = asset.body["options"]
        assert options["notify_no_data"] is True, asset.path
        assert options["no_data_timeframe"] >= 2, asset.path  # twice the last_1m window
        assert "{{#is_no_data}}" in asset.body["message"], asset.path
