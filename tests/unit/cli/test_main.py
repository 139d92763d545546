"""The `botscore` entry point: dispatch, exit codes, one-line errors."""

import json
import os
import subprocess
import sys

import pytest
import redis
from kafka.errors import KafkaTimeoutError

from botscore.cli import (
    dead_letters,
    enforce,
    feed,
    main,
    models,
    simulate,
    topics,
    train,
    watch,
)
from botscore.cli.main import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_USAGE
from botscore.errors import BotscoreError, SimulationSpecError, TopicMissing
from botscore.settings import Settings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))


@pytest.fixture
def config(tmp_path, monkeypatch) -> str:
    for name in list(os.environ):
        if name.startswith("BOTSCORE_"):
            monkeypatch.delenv(name)
    path = tmp_path / "config.json"
    options = {
        "botscore.kafka.bootstrap_servers": "kafka-a:9092,kafka-b:9092",
        "botscore.redis.host": "redis-x",
        "botscore.redis.port": 6380,
    }
    path.write_text(
        json.dumps(
            {
                "envs": {
                    "dev": {"options": options},
                    "prod": {"options": {"botscore.kafka.bootstrap_servers": "prod:9092"}},
                }
            }
        )
    )
    return str(path)


def replace_run(monkeypatch, module, behaviour=lambda settings, args: 0) -> list:
    calls = []

    def run(settings, args):
        calls.append((settings, args))
        return behaviour(settings, args)

    monkeypatch.setattr(module, "run", run)
    return calls


@pytest.mark.parametrize(
    ("argv", "module", "command"),
    [
        (["topics"], topics, "topics"),
        (["feed"], feed, "feed"),
        (["watch"], watch, "watch"),
        (["simulate"], simulate, "simulate"),
        (["enforce"], enforce, "enforce"),
        (["dead-letters", "list"], dead_letters, "dead-letters"),
        (["models", "list"], models, "models"),
    ],
)
def test_each_command_gets_the_project_settings(monkeypatch, config, argv, module, command):
    calls = replace_run(monkeypatch, module, lambda settings, args: 17)
    assert main.main(["--config", config, *argv]) == 17
    [(settings, args)] = calls
    assert settings.kafka.bootstrap_servers == "kafka-a:9092,kafka-b:9092"
    assert args.command == command


def test_the_environment_option_picks_the_settings(monkeypatch, config):
    calls = replace_run(monkeypatch, topics)
    main.main(["--config", config, "-e", "prod", "topics"])
    assert calls[0][0].kafka.bootstrap_servers == "prod:9092"


def test_train_runs_without_reading_the_config(monkeypatch, tmp_path):
    calls = replace_run(monkeypatch, train)
    assert main.main(["--config", str(tmp_path / "absent.json"), "train"]) == 0
    assert calls[0][0] == Settings()


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["feed", "--users", "many"],
        ["dead-letters"],
        ["dead-letters", "drop"],
        ["models"],
        ["models", "publish"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exited:
        main.main(argv)
    assert exited.value.code == EXIT_USAGE == 2
    assert "usage: botscore" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["top", "--port", "70000"], "argument --port: must be a port from 1 to 65535, not 70000"),
        (["top", "--port", "-1"], "must be a port"),
        (["top", "--every", "0"], "argument --every: must be a finite number of seconds above 0"),
        (["top", "--window", "nan"], "argument --window: must be a finite number"),
        (["top", "--for", "-1"], "argument --for: must be a finite number"),
        (["top", "--png", "graph.txt"], "argument --png: must name a .png file"),
        (["top", "--png", "/no/such/folder/graph.png"], "no folder '/no/such/folder'"),
        (["storm", "--every", "inf"], "argument --every: must be a finite number"),
        (["storm", "--window", "5"], "argument --window: invalid choice"),
        (["models", "compare", "--last", "abc"], "argument --last: must be a whole number"),
        (["models", "compare", "--last", "0"], "argument --last: must be 1 or more, not 0"),
        (["simulate", "--edge-cache-ms", "-5"], "argument --edge-cache-ms: must be 0 or more"),
        (["feed", "--users", "0"], "argument --users: must be 1 or more"),
        (["watch", "--max", "-1"], "argument --max: must be 0 or more"),
    ],
)
def test_bad_numbers_and_paths_are_usage_errors_naming_the_option(argv, says, capsys):
    # Refused before any work: a spinning loop, a traceback after a whole run, or none.
    with pytest.raises(SystemExit) as exited:
        main.main(argv)
    assert exited.value.code == EXIT_USAGE
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    "nimbus", ["garbage", "127.0.0.1:99999", ":6627", "host:port", "host:\u00b2"]
)
def test_a_nimbus_address_that_is_not_host_and_port_is_refused(nimbus, capsys):
    assert main.main(["storm", "--nimbus", nimbus]) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert err.startswith("botscore: the Nimbus address must be HOST:PORT") and nimbus in err


def test_an_unusable_config_exits_2_with_one_line(monkeypatch, tmp_path, capsys):
    calls = replace_run(monkeypatch, topics)
    assert main.main(["--config", str(tmp_path / "absent.json"), "topics"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("botscore: ") and "absent.json not found" in err
    assert err.count("\n") == 1
    assert calls == []


def test_an_unknown_environment_exits_2(monkeypatch, config, capsys):
    replace_run(monkeypatch, topics)
    assert main.main(["--config", config, "-e", "staging", "topics"]) == 2
    assert "environment 'staging'" in capsys.readouterr().err


def raises(error: BaseException):
    def behaviour(settings, args):
        raise error

    return behaviour


def test_a_botscore_error_at_run_time_exits_1_with_one_line(monkeypatch, config, capsys):
    replace_run(monkeypatch, topics, raises(BotscoreError("the first\n  and the second")))
    assert main.main(["--config", config, "topics"]) == EXIT_FAILURE == 1
    assert capsys.readouterr().err == "botscore: the first and the second\n"


@pytest.mark.parametrize(
    "error", [TopicMissing("scores"), SimulationSpecError("rate 1e9 is out of reach")]
)
def test_subclasses_of_botscore_error_exit_1(monkeypatch, config, capsys, error):
    replace_run(monkeypatch, simulate, raises(error))
    assert main.main(["--config", config, "simulate"]) == 1
    assert capsys.readouterr().err == f"botscore: {error}\n"


def test_kafka_errors_name_the_brokers(monkeypatch, config, capsys):
    replace_run(monkeypatch, watch, raises(KafkaTimeoutError("no leaders\nafter 30 s")))
    assert main.main(["--config", config, "watch"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("botscore: Kafka at kafka-a:9092,kafka-b:9092: KafkaTimeoutError")
    assert err.endswith("(is it up? make up)\n")
    assert err.count("\n") == 1


def test_redis_errors_name_the_server(monkeypatch, config, capsys):
    replace_run(monkeypatch, enforce, raises(redis.ConnectionError("connection refused")))
    assert main.main(["--config", config, "enforce"]) == 1
    assert capsys.readouterr().err == (
        "botscore: Redis at redis-x:6380: connection refused (is it up? make up)\n"
    )


def test_a_file_that_cannot_be_written_exits_1_with_one_line(monkeypatch, config, capsys):
    """A report written after minutes of work, into a path that is a directory, say."""
    error = IsADirectoryError(21, "Is a directory", "/tmp/out/replay-log.md")
    replace_run(monkeypatch, simulate, raises(error))
    assert main.main(["--config", config, "simulate"]) == 1
    assert capsys.readouterr().err == (
        "botscore: [Errno 21] Is a directory: '/tmp/out/replay-log.md'\n"
    )


def test_ctrl_c_exits_130(monkeypatch, config):
    replace_run(monkeypatch, feed, raises(KeyboardInterrupt()))
    assert main.main(["--config", config, "feed"]) == EXIT_INTERRUPTED == 130


def test_other_exceptions_are_bugs_and_are_not_swallowed(monkeypatch, config):
    replace_run(monkeypatch, simulate, raises(ValueError("a bug")))
    with pytest.raises(ValueError, match="a bug"):
        main.main(["--config", config, "simulate"])


def test_python_dash_m_botscore_cli_is_the_command(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")}
    done = subprocess.run(
        [sys.executable, "-m", "botscore.cli", "--config", str(tmp_path / "no.json"), "topics"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert (
        done.stderr
        == f"botscore: {tmp_path / 'no.json'} not found: run botscore from the project root\n"
    )
