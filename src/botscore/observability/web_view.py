"""`botscore top`'s figures as a web page, for operators used to the Storm UI.

The Storm UI cannot be installed here (its JavaScript comes from sites this project does
not reach), so `botscore top --http PORT` serves one page of its own on 127.0.0.1: the same
panels as the terminal, refreshed every two seconds from ``/figures.json``, each with a
line of its last minutes. Everything the page needs is in this module: no files, no
third-party scripts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botscore.observability.local_view import PANELS, UNIT, Figures, Panel

__all__ = ["PAGE", "ViewServer", "figures_document"]


def figures_document(
    figures: Figures, window_s: float, at_unix_s: float, panels: Sequence[Panel] = PANELS
) -> dict[str, Any]:
    """What ``/figures.json`` holds: each panel's values, in the terminal's order."""
    return {
        "at_unix_s": at_unix_s,
        "window_s": window_s,
        "panels": [
            {
                "title": panel.title,
                "unit": UNIT[panel.reduce].strip(),
                "by": panel.by,
                "values": dict(sorted(figures.get(panel.title, {}).items())),
            }
            for panel in panels
        ],
    }


PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>botscore</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; min-width: 44em; }
th, td { text-align: left; padding: 0.3em 0.8em; border-bottom: 1px solid #ddd; }
td.value { font-variant-numeric: tabular-nums; }
#status { color: #666; }
#status.stale { color: #b00; }
</style>
</head>
<body>
<h1>botscore</h1>
<p id="status">waiting for the first figures&hellip;</p>
<table>
<thead><tr><th>figure</th><th>now</th><th>last minutes</th></tr></thead>
<tbody id="panels"></tbody>
</table>
<script>
"use strict";
const kept = 150;  // points per line: five minutes at one every two seconds
const history = new Map();

function shown(panel) {
  const entries = Object.entries(panel.values);
  if (entries.length === 0) return "-";
  const text = (v) => v.toLocaleString("en", {maximumFractionDigits: 1}) +
    (panel.unit ? (panel.unit === "/s" ? "/s" : " " + panel.unit) : "");
  if (panel.by === null) return text(entries[0][1]);
  return entries.map(([group, v]) => group + " " + text(v)).join(", ");
}

function line(points) {
  if (points.length < 2) return "";
  const top = Math.max(...points, 1e-9);
  const xy = points.map((v, i) =>
    (i * 200 / (points.length - 1)).toFixed(1) + "," + (20 - 18 * v / top).toFixed(1));
  return '<svg width="200" height="22"><polyline fill="none" stroke="#36a" points="' +
    xy.join(" ") + '"/></svg>';
}

function draw(doc) {
  const rows = doc.panels.map((panel) => {
    const total = Object.values(panel.values).reduce((a, b) => a + b, 0);
    const points = history.get(panel.title) || [];
    points.push(total);
    if (points.length > kept) points.shift();
    history.set(panel.title, points);
    const row = document.createElement("tr");
    row.dataset.title = panel.title;
    row.innerHTML = "<td></td><td class=value></td><td>" + line(points) + "</td>";
    row.cells[0].textContent = panel.title;
    row.cells[1].textContent = shown(panel);
    return row;
  });
  document.getElementById("panels").replaceChildren(...rows);
  const status = document.getElementById("status");
  status.className = "";
  status.textContent = "last " + doc.window_s + " s, at " +
    new Date(doc.at_unix_s * 1000).toLocaleTimeString("en-GB");
}

async function refresh() {
  try {
    const response = await fetch("figures.json", {cache: "no-store"});
    if (!response.ok) throw new Error("HTTP " + response.status);
    const doc = await response.json();
    if (doc !== null) draw(doc);
  } catch (error) {
    const status = document.getElementById("status");
    status.className = "stale";
    status.textContent = "botscore top does not answer (" + error.message + "); retrying";
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"""


class _Handler(BaseHTTPRequestHandler):
    server: ViewServer

    def do_GET(self) -> None:
        path = self.path.partition("?")[0]
        if path == "/":
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", PAGE.encode())
        elif path == "/figures.json":
            self._send(HTTPStatus.OK, "application/json", self.server.latest())
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """The terminal shows the figures; a line per page load would scroll them away."""


class ViewServer(ThreadingHTTPServer):
    """The page and the latest figures (``null`` until the first screen), on loopback."""

    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self._lock = threading.Lock()
        self._latest = b"null"

    def publish(self, document: dict[str, Any]) -> None:
        encoded = json.dumps(document).encode()
        with self._lock:
            self._latest = encoded

    def latest(self) -> bytes:
        with self._lock:
            return self._latest
