"""``botscore replay-log``: a simulated hour written as a combined access log reads back as
the requests an edge without the gate would send, and the report labels, decides and
compares what it should."""

from __future__ import annotations

import gzip
import json
import shutil
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from botscore.aggregation.user_agents import declares_bot
from botscore.cli.main import main
from botscore.errors import ConfigError, ModelError
from botscore.model.log_check import DECLARED_BOT, HIDDEN_FEATURE, UNDECLARED, check_log
from botscore.model.training import simulate, train_model
from botscore.simulator.spec import SimulationSpec
from botscore.v1.web_log_pb2 import TLS_FINGERPRINT_UNCHECKED, WebLog
from botscore.web_edge.access_log import Networks
from botscore.web_edge.log_files import OFFLINE_KEYS, read_log_files

TRAFFIC = SimulationSpec(users=200, bot_share=0.3, rate=15, duration_s=600, seed=11)


def _quoted(text: str) -> str:
    return "-" if not text else text.replace("\\", "\\\\").replace('"', '\\"')


def combined_line(log: WebLog) -> str:
    """``log`` as Apache's combined format writes it (UTC, whole seconds)."""
    when = datetime.fromtimestamp(log.time_unix_ms // 1000, UTC)
    return (
        f"{log.ip} - - [{when:%d/%b/%Y:%H:%M:%S} +0000] "
        f'"{log.method} {_quoted(log.path)} HTTP/1.1" {log.status} {log.response_bytes} '
        f'"{_quoted(log.referrer)}" "{_quoted(log.user_agent)}"'
    )


@pytest.fixture(scope="module")
def simulated() -> list[WebLog]:
    return simulate(TRAFFIC).logs


def _write(path: Path, logs: list[WebLog], extra: str = "") -> Path:
    text = "\n".join(combined_line(log) for log in logs) + "\n" + extra
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_a_simulation_reads_back_as_an_edge_without_the_gate_would_send_it(
    simulated: list[WebLog], tmp_path: Path
) -> None:
    half = len(simulated) // 2
    files = [
        _write(tmp_path / "access.log.1.gz", simulated[:half]),
        _write(tmp_path / "access.log", simulated[half:], extra="not a request\n\n"),
    ]
    read = read_log_files(files, "combined", Networks([]))
    assert (read.lines, len(read.logs), read.blocked) == (len(simulated) + 1, len(simulated), 0)
    assert dict(read.refused) == {"not_combined": 1}
    assert len(read.refusals) == 1
    assert read.refusals[0].startswith(f"{files[1]}:{len(simulated) - half + 1}: not_combined")
    for original, got in zip(simulated, read.logs, strict=True):
        assert got.time_unix_ms == original.time_unix_ms // 1000 * 1000
        assert (got.ip, got.method, got.path, got.status, got.response_bytes) == (
            original.ip,
            original.method,
            original.path,
            original.status,
            original.response_bytes,
        )
        assert (got.referrer, got.user_agent) == (original.referrer, original.user_agent)
        assert got.user_id == OFFLINE_KEYS.visitor(None, original.ip, original.user_agent).user_id
        # what only the edge's own format carries
        assert not got.js_check_passed and got.tls_fingerprint == TLS_FINGERPRINT_UNCHECKED
    assert len({log.request_id for log in read.logs}) == len(simulated)
    again = read_log_files(files, "combined", Networks([]))
    assert [log.request_id for log in again.logs] == [log.request_id for log in read.logs]


def test_requests_the_live_feature_stage_would_refuse_are_refused_with_its_reasons(
    tmp_path: Path,
) -> None:
    good = '192.0.2.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 {size} "-" "x"'
    log = tmp_path / "access.log"
    log.write_text(
        "\n".join(
            [
                good.format(size=1),
                good.format(size=2**60),
                good.replace("2024", "2500").format(size=1),
                # a year 10000 in UTC, once -1200 is taken off
                good.replace("01/Jan/2024:00:00:00 +0000", "31/Dec/9999:23:59:59 -1200").format(
                    size=1
                ),
            ]
        )
    )
    read = read_log_files([log], "combined", Networks([]))
    assert len(read.logs) == 1 and read.logs[0].response_bytes == 1
    assert dict(read.refused) == {"out_of_range": 1, "time_in_future": 2}
    assert read.refusals[0].startswith(f"{log}:2: out_of_range: response_bytes")
    assert read.refusals[1].startswith(f"{log}:3: time_in_future")


def test_a_log_that_cannot_be_read_is_one_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "access.log.gz"
    broken.write_bytes(b"not gzip")
    with pytest.raises(ConfigError, match=r"access\.log\.gz"):
        read_log_files([broken], "combined", Networks([]))
    with pytest.raises(ConfigError, match=r"missing\.log"):
        read_log_files([tmp_path / "missing.log"], "combined", Networks([]))


def test_the_report_labels_decides_and_compares(
    simulated: list[WebLog],
    small_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = _write(tmp_path / "access.log", simulated, extra='192.0.2.1 - - [x] "GET / HTTP/1.1"\n')
    out = tmp_path / "report"
    assert main(["replay-log", str(log), "--model", str(small_model_dir), "--out", str(out)]) == 0
    report = json.loads((out / "replay-log.json").read_text())
    assert report["lines"]["read"] == len(simulated) + 1
    assert report["lines"]["requests"] == len(simulated)
    assert report["lines"]["refused"] == {"not_combined": 1}
    assert f"{log}:{len(simulated) + 1}: not_combined" in report["lines"]["refusals"][0]
    # the weak labels, counted here from the simulation: one visitor per address and agent
    visitors = {(w.ip, w.user_agent) for w in simulated}
    declared = sum(1 for _, agent in visitors if declares_bot(agent))
    assert declared > 0
    assert report["users"] == {UNDECLARED: len(visitors) - declared, DECLARED_BOT: declared}
    assert report["undeclared"]["visitors"] == len(visitors) - declared
    assert report["declared_bots"]["bots"] == declared
    assert report["signals"] == {"javascript": 0.0, "tls_verdict": 0.0, "datacenter": 0.0}
    # the simulated humans run the edge's script, this log cannot say so: that shows first
    drift = report["drift"]
    assert drift[0]["name"] == "js_check_ratio_1h" and drift[0]["ks_distance"] > 0.9
    assert drift[0]["log_quantiles"] == [0.0, 0.0, 0.0]
    assert sorted(d["name"] for d in drift) == sorted(
        json.loads((small_model_dir / "manifest.json").read_text())["feature_names"]
    )
    # hiding the user agent can only lower a declared bot's block rate with this model
    hidden = report["declared_bots"]["with_user_agent_hidden"]
    assert hidden["bots"] == declared
    assert hidden["bots_blocked"] <= report["declared_bots"]["bots_blocked"]
    # at most any thresholds could block: the bots with a request while scored
    assert report["declared_bots"]["bots_blocked"] <= report["declared_bots"]["scored"] <= 1
    # the undeclared visitors flagged, counted here from the simulation's requests
    undeclared = report["undeclared"]
    flagged = report["flagged"]
    n = undeclared["visitors"]
    at_least = round(max(undeclared["challenged"], undeclared["blocked"]) * n)
    assert min(at_least, 20) <= len(flagged) <= 20 and flagged
    assert len(flagged) <= round((undeclared["challenged"] + undeclared["blocked"]) * n)
    counts = Counter((w.ip, w.user_agent) for w in simulated)
    for f in flagged:
        assert not declares_bot(f["user_agent"])
        assert f["requests"] == counts[(f["ip"], f["user_agent"])]
        assert f["decision"] in ("challenge", "block") and 0 <= f["highest_score"] <= 1
    assert [f["requests"] for f in flagged] == sorted(
        (f["requests"] for f in flagged), reverse=True
    )
    # no simulated visitor comes near the live classifier's rate ceiling
    assert report["rate_ceiling"] == {"block_requests_1m": 1200, "rows": 0, "visitors": 0}
    markdown = (out / "replay-log.md").read_text()
    assert "js_check_ratio_1h" in markdown and markdown.endswith("\n")
    assert "Rate ceiling: 0 visitors (0 rows) had more than 1200 requests in a minute" in markdown
    printed = capsys.readouterr()
    assert f"undeclared visitors: {len(visitors) - declared}" in printed.out
    assert f"replay-log: read {len(simulated) + 1} lines" in printed.err
    assert "replay-log: refused " in printed.err
    assert "replay-log: simulating the model's calibration traffic (seed 4)" in printed.err
    # the same arguments write the same bytes
    again = tmp_path / "again"
    assert main(["replay-log", str(log), "--model", str(small_model_dir), "--out", str(again)]) == 0
    assert (again / "replay-log.json").read_bytes() == (out / "replay-log.json").read_bytes()


def test_a_model_without_the_user_agent_feature_judges_hidden_bots_as_it_judges_them(
    simulated: list[WebLog], tmp_path: Path
) -> None:
    model = tmp_path / "model"
    features = ["requests_1m", "requests_1h", "distinct_paths_1h", "error_ratio_1h"]
    train_model(
        model,
        SimulationSpec(users=120, bot_share=0.4, rate=10, duration_s=300, seed=3),
        calibration_seeds=(4,),
        block_calibration_seeds=(),
        confidence=0,
        features=features,
    )
    assert HIDDEN_FEATURE not in features
    logs = read_log_files(
        [_write(tmp_path / "access.log", simulated)], "combined", Networks([])
    ).logs
    check = check_log(logs, model)
    assert check.hidden == check.visitors
    assert [d.name for d in check.drift] != [] and {d.name for d in check.drift} == set(features)


def test_requests_kept_serialized_read_back_whole_and_check_as_parsed_ones(
    simulated: list[WebLog], small_model_dir: Path, tmp_path: Path
) -> None:
    kept = read_log_files([_write(tmp_path / "access.log", simulated)], "combined", Networks([]))
    logs = kept.logs
    parsed = list(logs)
    assert len(logs) == len(parsed) == len(simulated)
    assert logs[3] == parsed[3] and logs[-1] == parsed[-1] and logs[2:5] == parsed[2:5]
    assert logs.times_ms.tolist() == [w.time_unix_ms for w in parsed]
    # In another order, as parsed objects: the same check (it sorts by time, stably).
    shuffled = parsed[len(parsed) // 2 :] + parsed[: len(parsed) // 2]
    assert check_log(logs, small_model_dir) == check_log(shuffled, small_model_dir)


def test_an_empty_log_is_one_clear_error(small_model_dir: Path) -> None:
    with pytest.raises(ModelError, match="no request"):
        check_log([], small_model_dir)


def _spread_logs(minute_of_hour: int | None) -> list[WebLog]:
    """Three hours of one reader's requests every 37 s; with ``minute_of_hour``, each time
    moved into that minute of its hour, as the public sample log's times were."""
    start = 1_431_856_800_000  # 2015-05-17 10:00 UTC
    logs = []
    for i in range(3 * 3600 // 37):
        time_ms = start + i * 37_000
        if minute_of_hour is not None:
            hour, second = time_ms // 3_600_000, (time_ms // 1000) % 60
            time_ms = (hour * 3600 + minute_of_hour * 60 + second) * 1000
        logs.append(_reader_request(time_ms, str(i), path=f"/p/{i}"))
    return logs


def _reader_request(time_ms: int, request_id: str, **fields: str) -> WebLog:
    """A browser's GET of ``/`` by user ``u1`` at 192.0.2.1, but for ``fields``."""
    defaults = {"user_id": "u1", "ip": "192.0.2.1", "path": "/", "user_agent": "Mozilla/5.0"}
    return WebLog(
        time_unix_ms=time_ms,
        method="GET",
        status=200,
        request_id=request_id,
        **(defaults | fields),
    )


def test_times_squeezed_into_one_minute_of_each_hour_are_called_rewritten(
    small_model_dir: Path,
) -> None:
    natural = check_log(_spread_logs(None), small_model_dir).time_shape
    assert natural is not None
    assert (natural.minutes_used, natural.whole_seconds) == (60, True)
    assert natural.busiest_minute_share < 0.03 and not natural.looks_rewritten
    squeezed = check_log(_spread_logs(5), small_model_dir).time_shape
    assert squeezed is not None
    assert (squeezed.minutes_used, squeezed.busiest_minute_share) == (1, 1.0)
    assert squeezed.looks_rewritten
    # too short to tell: the simulated ten minutes
    assert check_log(_spread_logs(None)[:10], small_model_dir).time_shape is None


def test_the_edge_s_own_format_reads_too_its_blocked_requests_left_out(tmp_path: Path) -> None:
    def line(request_id: str, decision: str) -> str:
        return json.dumps(
            {
                "time": "1796420083.157",
                "user": "u-1",
                "ip": "203.0.113.9",
                "request": "GET / HTTP/1.1",
                "uri": "/",
                "status": "200",
                "user_agent": "Mozilla/5.0",
                "referrer": "",
                "bytes": "10",
                "js": "1",
                "decision": decision,
                "request_id": request_id,
                "node": "edge-1",
                "cookie_user": "",
            }
        )

    log = tmp_path / "access.log"
    log.write_text(
        "\n".join([line("a", "allow"), line("b", "block"), "{}", line("c", "challenge")])
    )
    read = read_log_files([log], "botscore", Networks([]))
    assert [w.request_id for w in read.logs] == ["a", "c"]
    assert all(w.js_check_passed and w.user_id == "u-1" for w in read.logs)
    assert (read.lines, read.blocked, dict(read.refused)) == (4, 1, {"missing_field": 1})
    assert read.refusals[0].startswith(f"{log}:3: missing_field")


def test_a_visitor_that_ever_names_itself_a_bot_is_a_declared_one(small_model_dir: Path) -> None:
    logs = _spread_logs(None)[:20]
    for log in logs[:10]:
        log.user_agent = "curl/8.5.0"  # the same user id, naming itself only at first
    logs.append(_reader_request(logs[0].time_unix_ms, "other", user_id="u2", ip="192.0.2.2"))
    assert check_log(logs, small_model_dir).users == {UNDECLARED: 1, DECLARED_BOT: 1}


def test_arguments_that_cannot_work_are_one_line_before_any_reading(
    tmp_path: Path, small_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "access.log"
    log.write_text("")
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for argv, says, before_reading in (
        (["--model", str(tmp_path / "no-model")], "no-model", True),
        (["--model", str(small_model_dir), "--out", str(a_file)], "is not a directory", True),
        (["--model", str(small_model_dir), "--format", "botscore"], "no request", False),
    ):
        out = [] if "--out" in argv else ["--out", str(tmp_path / "out")]
        assert main(["replay-log", str(log), *out, *argv]) == 1
        err = capsys.readouterr().err
        assert err.splitlines()[-1].startswith("botscore: ") and says in err, err
        assert ("replay-log: read" not in err) == before_reading, err
    assert main(["replay-log", str(tmp_path / "missing.log"), "--out", str(tmp_path / "o")]) == 1
    assert "cannot read the access log" in capsys.readouterr().err


def _flood_and_reader() -> list[WebLog]:
    """A reader's three hours (one visitor), and a second visitor sending 30 requests a
    second for two minutes: 1,741 in the busiest minute a published row counts."""
    start = 1_431_856_800_000 + 3_600_000
    flood = [
        _reader_request(start + i * 1000 // 30, f"f{i}", ip="198.51.100.9", user_id="flood")
        for i in range(30 * 120)
    ]
    return _spread_logs(None) + flood


@pytest.fixture(scope="module")
def allowing_model_dir(small_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small model with thresholds no score reaches: whatever it decides, the ceiling did."""
    out = tmp_path_factory.mktemp("allowing") / "model"
    shutil.copytree(small_model_dir, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["thresholds"] = {"challenge": 1.0, "block": 1.0}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


@pytest.mark.parametrize(
    ("ceiling", "past"), [(0, False), (1200, True), (1740, True), (1741, False)]
)
def test_a_visitor_past_the_rate_ceiling_is_blocked_as_the_live_classifier_blocks_it(
    allowing_model_dir: Path, ceiling: int, past: bool
) -> None:
    check = check_log(_flood_and_reader(), allowing_model_dir, block_requests_1m=ceiling)
    model_only = check_log(_flood_and_reader(), allowing_model_dir, block_requests_1m=0)
    ceiling_applied = check.rate_ceiling
    assert (ceiling_applied.block_requests_1m, ceiling_applied.visitors) == (ceiling, int(past))
    assert (ceiling_applied.rows > 0) == past
    assert model_only.flagged == () and model_only.visitors.humans_blocked == 0
    if past:
        [flagged] = check.flagged
        assert (flagged.ip, flagged.decision) == ("198.51.100.9", "block")
        assert flagged.highest_score < 1  # the model's score, not the ceiling's decision
        assert check.visitors.humans_blocked == 0.5  # of the two undeclared visitors
    else:
        assert check.visitors == model_only.visitors and check.flagged == ()
    assert check.score_quantiles == model_only.score_quantiles
