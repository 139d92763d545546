"""SIGTERM as Ctrl-C: the first stops the command's work, later ones cannot cut its output."""

import os
import signal
import subprocess
import sys
import textwrap


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
