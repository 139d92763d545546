"""`botscore top --http`'s page in a real headless browser (Debian's Chromium).

The figures come as DogStatsD datagrams from the project's own ``Metrics`` over real UDP to
a real `botscore top`; Chromium loads the page, runs its script and dumps the DOM it built.
"""

from __future__ import annotations

import html
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from botscore.metrics import Metrics
from botscore.settings import MetricsSettings
from botscore.vocabulary import Component

from .faults import free_port
from .harness import ROOT, stack_env

pytestmark = [pytest.mark.integration, pytest.mark.metrics, pytest.mark.browser]

ROW = re.compile(r'<tr data-title="([^"]*)"><td>[^<]*</td><td class="value">([^<]*)</td>')


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _browser_dom(url: str, profile: Path) -> str:
    """The DOM Chromium built after running the page's script for five virtual seconds."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("no chromium on PATH: stack/system-deps.sh installs Debian's (apt chromium)")
    done = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",  # as root, Chromium refuses to start with its sandbox
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _rows(dom: str) -> dict[str, str]:
    return {html.unescape(t): html.unescape(v) for t, v in ROW.findall(dom)}


def test_the_page_shows_the_figures_top_receives(tmp_path: Path) -> None:
    udp, http_port = _free_udp_port(), free_port()
    errors = (tmp_path / "top.err").open("wb")
    top = subprocess.Popen(
        ["bin/botscore", "top", "--port", str(udp), "--http", str(http_port), "--every", "0.5"],
        cwd=ROOT,
        env=stack_env(),
        stdout=subprocess.DEVNULL,
        stderr=errors,
    )
    try:
        deadline = time.monotonic() + 30
        while b"figures also on" not in (tmp_path / "top.err").read_bytes():
            assert top.poll() is None, (tmp_path / "top.err").read_text()
            assert time.monotonic() < deadline, "botscore top did not serve its page in 30 s"
            time.sleep(0.1)
        settings = MetricsSettings(statsd_port=udp)
        classifier = Metrics(settings, Component.CLASSIFIER, tags=["model:baseline:7"])
        gate = Metrics(settings, Component.EDGE)
        shipper = Metrics(settings, Component.LOG_SHIPPER)
        nimbus = Metrics(settings, Component.STORM)  # as `botscore storm --send` sends them
        for _ in range(10):
            classifier.count("scored", 40)
            gate.count("requests", 3, tags=["decision:allow", "answer:204"])
            gate.count("requests", 1, tags=["decision:block", "answer:403"])
            shipper.gauge("unshipped_bytes", 1234)
            nimbus.gauge("workers", 2, tags=["topology:scoring"])
            nimbus.gauge("capacity", 0.4, tags=["topology:scoring", "storm_component:classifier"])
            time.sleep(0.1)
        for metrics in (classifier, gate, shipper, nimbus):
            metrics.close()
        time.sleep(1.0)  # a screen or two of top's after the last datagram

        dom = _browser_dom(f"http://127.0.0.1:{http_port}/", tmp_path / "profile")
        rows = _rows(dom)
        assert re.fullmatch(r"[\d,.]+/s", rows["users scored"]), rows
        assert re.fullmatch(r"baseline:7 [\d,.]+/s", rows["live model (users scored)"]), rows
        assert re.fullmatch(r"204 [\d,.]+/s, 403 [\d,.]+/s", rows["nginx's gate answers"]), rows
        assert rows["access log not shipped (bytes)"] == "1,234"
        assert rows["Storm topologies (workers)"] == "scoring 2"
        assert rows["Storm component capacity"] == "classifier 0.4"
        assert rows["dead letters"] == "-"
        assert re.search(r'<p id="status" class="">last 10 s, at \d\d:\d\d:\d\d</p>', dom), dom
        # Each figure's line: at least two points (the page refreshed every 2 virtual s).
        table = dom.split('<tbody id="panels">', 1)[1].split("</tbody>", 1)[0]
        assert table.count("<polyline") == len(rows)
    finally:
        top.send_signal(signal.SIGTERM)
        top.wait(30)
