"""The simulator's status line: rewritten on a terminal, a plain line now and then in a log."""

from __future__ import annotations

import io

from botscore.simulator.stats import SimulationStats
from botscore.simulator.status import StatusLine, status_text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_status_line_rewrites_itself_on_a_terminal():
    out = _Terminal()
    line = StatusLine(out)
    line.show("first")
    line.show("second")
    assert out.getvalue().startswith("\rfirst") and "\rsecond" in out.getvalue()
    assert "\n" not in out.getvalue()
    line.close()
    assert out.getvalue().endswith("\n")


def test_status_line_in_a_log_is_a_plain_line_now_and_then():
    out, clock = io.StringIO(), [0.0]
    line = StatusLine(out, plain_interval_s=10, clock=lambda: clock[0])
    for second in range(25):
        clock[0] = second
        line.show(f"at {second}")
    line.close()
    assert out.getvalue().splitlines() == ["at 0", "at 10", "at 20", "at 24"]
    assert "\r" not in out.getvalue()


def test_status_text_says_what_the_edge_does_to_bots_and_humans():
    stats = SimulationStats(sent=1300, confirmed=1234)
    for decision in ("block", "block", "allow"):
        stats.record(5, "c-b", "scraper", True, decision)
    stats.record(5, "c-h", "human", False, "challenge")
    text = status_text(stats, 3725, 201.4, 12)
    assert text.startswith("1:02:05  201 req/s  scored 12  bots blocked 1  ")
    assert "bot req blocked 2 allowed 1" in text
    # sent: what Kafka confirmed, not what is on its way
    assert "humans challenged 1 (1 req)" in text and text.endswith("sent 1,234")
    assert "scored -" in status_text(stats, 0, 0, None)


def test_status_text_says_how_many_weblogs_wait_to_be_sent_again():
    stats = SimulationStats(sent=3000, confirmed=1000)
    text = status_text(stats, 60, 0, None, resending=1500)
    assert text.endswith("sent 1,000 (1,500 to send again, Kafka did not confirm them)")
