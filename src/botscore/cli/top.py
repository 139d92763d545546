"""``botscore top``: the loop's key figures live in the terminal, from DogStatsD datagrams.

It listens where the components send their metrics (``metrics.statsd_port`` on
127.0.0.1, so no Datadog agent may hold that port; an agent forwards a copy of its
datagrams with ``statsd_forward_host`` and ``statsd_forward_port``), prints the figures
every ``--every`` seconds (with the consumers that stopped sending: silent past a bound
from ``kafka.lag_interval_ms``), with ``--http`` also serves them as a web page
(``observability.web_view``) and, with ``--png``, draws them over the run when it stops
(``--for`` seconds, or Ctrl-C).
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path

from botscore.cli.command import Subparsers, port, seconds, sigterm_as_ctrl_c
from botscore.errors import BotscoreError
from botscore.observability.local_view import LocalView, render, silent_after
from botscore.observability.statsd_lines import parse_datagram
from botscore.observability.web_view import ViewServer, figures_document
from botscore.settings import Settings
from botscore.vocabulary import Role

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("top", help="the loop's key figures live, without Datadog")
    parser.add_argument(
        "--port", type=port, help="UDP port to listen on (default: metrics.statsd_port)"
    )
    parser.add_argument("--every", type=_a_day_at_most, default=2.0, help="seconds between screens")
    parser.add_argument(
        "--window", type=_a_day_at_most, default=10.0, help="seconds each figure covers"
    )
    parser.add_argument(
        "--for",
        dest="duration",
        type=seconds,
        help="stop after this many seconds (default: Ctrl-C)",
    )
    parser.add_argument(
        "--png", type=png_path, help="when it stops, draw the figures over the run (a .png file)"
    )
    parser.add_argument(
        "--http",
        type=port,
        help="also serve the figures as a web page on http://127.0.0.1:PORT/ (default: none)",
    )
    parser.set_defaults(run=run, role=Role.ADMIN)


def _serve_page(http_port: int) -> ViewServer:
    try:
        page = ViewServer(http_port)
    except OSError as exc:
        raise BotscoreError(f"cannot serve the page on 127.0.0.1:{http_port} ({exc})") from None
    threading.Thread(target=page.serve_forever, name="page", daemon=True).start()
    print(f"figures also on http://127.0.0.1:{http_port}/", file=sys.stderr)
    return page


def _a_day_at_most(text: str) -> float:
    """Seconds for a screen's pace or window: past a day it is a typo, and past the clock's
    range a traceback."""
    value = seconds(text)
    if value > 86_400:
        raise argparse.ArgumentTypeError(f"must be at most a day (86400 s), not {text}")
    return value


def png_path(text: str) -> Path:
    """Where the graph goes, checked before the run rather than after it."""
    path = Path(text)
    if path.suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"must name a .png file, not {text!r}")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"no folder {str(path.parent)!r} to write {path.name} in")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder, not a file to write")
    return path


def run(settings: Settings, args: argparse.Namespace) -> int:
    port = args.port if args.port is not None else settings.metrics.statsd_port
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise BotscoreError(
            f"cannot listen on UDP 127.0.0.1:{port} ({exc}): is a Datadog agent there? "
            "Use --port, and set the agent's statsd_forward_host and statsd_forward_port "
            "to send it there"
        ) from None
    page = _serve_page(args.http) if args.http is not None else None
    view = LocalView(args.window, silent_after_s=silent_after(settings.kafka.lag_interval_ms))
    clear = "\x1b[H\x1b[2J" if sys.stdout.isatty() else ""
    started = time.monotonic()
    next_screen = started + args.every
    bad = 0
    try:
        # Stopped by its parent (`make run`) as by Ctrl-C: the graph is still drawn.
        with sigterm_as_ctrl_c():
            while args.duration is None or time.monotonic() - started < args.duration:
                wake = next_screen
                if args.duration is not None:  # no datagram may hold it past --for
                    wake = min(wake, started + args.duration)
                sock.settimeout(max(0.01, wake - time.monotonic()))
                try:
                    samples, unparsed = parse_datagram(sock.recv(65_535))
                    view.add(samples, time.monotonic())
                    bad += unparsed
                except TimeoutError:
                    pass
                if time.monotonic() >= next_screen:
                    figures = view.snapshot(time.monotonic())
                    note = f"  ({bad} lines unparsed)" if bad else ""
                    print(f"{clear}botscore top: UDP :{port}, last {args.window:.0f} s{note}")
                    print(render(figures), flush=True)
                    if page is not None:
                        page.publish(figures_document(figures, args.window, time.time()))
                    next_screen += args.every
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        if page is not None:
            page.shutdown()
            page.server_close()
    if args.png is not None:
        if not view.history:
            raise BotscoreError("no figures to draw: it stopped before the first screen")
        from botscore.observability.history_png import write_png  # matplotlib is slow to import

        try:
            write_png(view.history, args.png)
        except OSError as exc:  # the folder gone or the disk full since the start
            raise BotscoreError(f"cannot write {args.png}: {exc.strerror or exc}") from None
        print(f"wrote {args.png}")
    return 0
