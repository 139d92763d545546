"""SIGTERM as Ctrl-C: the first stops the command's work, later ones cannot cut its output;
moments given on the command line."""

import argparse
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from botscore.cli.command import instant_ms


def test_a_second_sigterm_does_not_stop_the_final_output(project_root):
    script = textwrap.dedent(
        """
        import os, signal, time
        from botscore.cli.command import sigterm_as_ctrl_c
        try:
            with sigterm_as_ctrl_c():
                print("ready", flush=True)
                time.sleep(30)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        os.kill(os.getpid(), signal.SIGTERM)  # a parent's clean-up sending another
        time.sleep(0.2)
        print("figures", flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(project_root / "src")}
    process = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert (process.returncode, out) == (0, "interrupted\nfigures\n")


def test_without_a_sigterm_the_previous_handler_comes_back():
    from botscore.cli.command import sigterm_as_ctrl_c

    before = signal.getsignal(signal.SIGTERM)
    with sigterm_as_ctrl_c():
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1796256000000", 1_796_256_000_000),
        ("2026-12-04T10:00", 1_796_378_400_000),
        ("2026-12-04T10:00:00+00:00", 1_796_378_400_000),
        ("2026-12-04T11:00:00+01:00", 1_796_378_400_000),
        ("2026-12-04T10:00:00.250Z", 1_796_378_400_250),
    ],
)
def test_instant_ms_reads_iso_times_as_utc_and_milliseconds(text, expected):
    assert instant_ms(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "-5", "2026-13-01", ""])
def test_instant_ms_refuses_anything_else_naming_the_forms(text):
    with pytest.raises(argparse.ArgumentTypeError, match="ISO 8601"):
        instant_ms(text)


@pytest.mark.parametrize("text", ["1764950400000000", "1764950400000000000", "9" * 5000])
def test_instant_ms_refuses_microseconds_and_beyond_naming_them(text):
    with pytest.raises(argparse.ArgumentTypeError, match="microseconds or nanoseconds"):
        instant_ms(text)


@pytest.mark.parametrize(
    "text",
    [
        "1969-12-31T23:59:59Z",
        "0001-01-01T00:00",
        "0001-01-01T00:00+01:00",
        "9999-12-31T23:00-02:00",
    ],
)
def test_instant_ms_refuses_times_kafka_cannot_look_up(text):
    """Kafka's times start at the epoch; year 0 could not even be formatted in an error."""
    with pytest.raises(argparse.ArgumentTypeError, match="not between 1970 and the year 9999"):
        instant_ms(text)


def test_instant_ms_takes_the_epoch_and_the_last_millisecond_of_9999():
    assert instant_ms("1970-01-01T00:00Z") == 0
    assert instant_ms("9999-12-31T23:59:59.999Z") == 253_402_300_799_999
