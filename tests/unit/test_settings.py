"""Settings from options and the environment; secrets that never leak."""

import json

import pytest

from botscore.errors import ConfigError
from botscore.settings import (
    NO_SECRET,
    Secret,
    Settings,
    load_project_settings,
    require_message_timeouts,
)


def test_defaults_options_and_environment_in_that_order():
    settings = Settings.from_options(
        {"botscore.kafka.scores_topic": "s", "botscore.scoring.batch_size": "64"},
        environ={"BOTSCORE_KAFKA_SCORES_TOPIC": "from-env", "BOTSCORE_METRICS_ENABLED": "false"},
    )
    assert settings.kafka.scores_topic == "from-env"
    assert settings.scoring.batch_size == 64
    assert settings.kafka.features_topic == "user-features"
    assert settings.metrics.enabled is False


def test_storm_options_that_are_not_ours_are_ignored():
    settings = Settings.from_options({"topology.workers": 2}, environ={})
    assert settings.kafka.bootstrap_servers == "127.0.0.1:9092"


def test_the_feature_stage_may_not_take_requests_further_ahead_than_the_enforcer_decides():
    # Defaults agree, and raising both together (a sped-up simulation) is fine.
    assert Settings().aggregation.max_event_skew_ms <= Settings().enforcement.max_clock_skew_ms
    both = {"BOTSCORE_AGGREGATION_MAX_EVENT_SKEW_MS": "900000"}
    both["BOTSCORE_ENFORCEMENT_MAX_CLOCK_SKEW_MS"] = "900000"
    assert Settings.from_options({}, environ=both).aggregation.max_event_skew_ms == 900_000
    with pytest.raises(ConfigError, match=r"max_event_skew_ms \(60001\) is more than"):
        Settings.from_options({"botscore.aggregation.max_event_skew_ms": 60_001}, environ={})


@pytest.mark.parametrize(
    "options",
    [
        {"botscore.kafka.bootstrap": "x"},
        {"botscore.kafak.topic": "x"},
        {"botscore.scoring.batch_size": "many"},
    ],
)
def test_typos_and_bad_values_are_errors(options):
    with pytest.raises(ConfigError):
        Settings.from_options(options, environ={})


@pytest.mark.parametrize(
    ("options", "environ", "message"),
    [
        (
            {"botscore.kafka.security_protocol": "TLS"},
            {},
            r"botscore\.kafka\.security_protocol: 'TLS' is not a valid kafka\.security_protocol "
            r"\(one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL\)",
        ),
        (
            {},
            {"BOTSCORE_KAFKA_AUTO_OFFSET_RESET": "smallest"},
            r"BOTSCORE_KAFKA_AUTO_OFFSET_RESET: 'smallest' is not a valid "
            r"kafka\.auto_offset_reset \(one of earliest, latest\)",
        ),
        (
            {"botscore.kafka.sasl_mechanism": "plain"},
            {},
            r"kafka\.sasl_mechanism \(one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512\)",
        ),
    ],
)
def test_a_value_outside_a_closed_set_names_the_setting_and_the_choices(options, environ, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_options(options, environ=environ)


def test_values_inside_a_closed_set_are_taken():
    settings = Settings.from_options(
        {
            "botscore.kafka.security_protocol": "SASL_SSL",
            "botscore.kafka.auto_offset_reset": "latest",
        },
        environ={"BOTSCORE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"},
    )
    assert settings.kafka.security_protocol == "SASL_SSL"
    assert settings.kafka.auto_offset_reset == "latest"
    assert settings.kafka.sasl_mechanism == "SCRAM-SHA-512"


def test_project_config_is_valid(project_root):
    settings = load_project_settings(project_root / "config.json", environ={})
    assert settings.kafka.features_topic == "user-features"
    assert settings.scoring.model_dir == "models/baseline"


def test_unknown_environment_is_named(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"envs": {"local": {}}}))
    with pytest.raises(ConfigError, match="prod"):
        load_project_settings(path, "prod", environ={})


def test_secrets_come_only_from_the_environment_and_never_print():
    settings = Settings.from_options({}, environ={"BOTSCORE_KAFKA_SASL_PASSWORD": "hunter2"})
    assert settings.kafka.sasl_password.reveal() == "hunter2"
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.kafka.sasl_password)
    with pytest.raises(ConfigError, match="BOTSCORE_REDIS_PASSWORD"):
        Settings.from_options({"botscore.redis.password": "x"}, environ={})


@pytest.mark.parametrize("value", [False, "false", "False"])
def test_spouts_refuse_a_topology_without_message_timeouts(value):
    with pytest.raises(ConfigError, match=r"topology\.enable\.message\.timeouts is false"):
        require_message_timeouts({"topology.enable.message.timeouts": value})


def test_message_timeouts_on_or_storms_default_are_accepted(project_root):
    require_message_timeouts({"topology.enable.message.timeouts": True})
    require_message_timeouts({})  # Storm's own default is on (off only in local mode)
    options = json.loads((project_root / "config.json").read_text())["envs"]["local"]["options"]
    # `sparse run` is Storm's local mode, which turns timeouts off unless asked.
    assert options["topology.enable.message.timeouts"] is True


MASK = "**********"


def _secret():
    return Settings.from_options({}, environ={"BOTSCORE_REDIS_PASSWORD": "hunter2"}).redis.password


def test_a_secret_is_not_a_string_and_reveal_is_the_only_way_to_its_value():
    secret = _secret()
    assert not isinstance(secret, str)
    assert secret.reveal() == "hunter2"
    assert secret == Secret("hunter2")
    assert secret != Secret("other")
    assert hash(secret) == hash(Secret("hunter2"))
    assert bool(secret) and not NO_SECRET and NO_SECRET.reveal() == ""


def test_a_secret_prints_as_its_mask():
    secret = _secret()
    # %-formatting is how logging renders its arguments.
    percent = ("%s" % secret, "%r" % secret)  # noqa: UP031
    for shown in (str(secret), repr(secret), f"{secret}", f"{secret:>20}", *percent):
        assert "hunter2" not in shown
        assert MASK in shown
    assert repr(secret) == f"Secret('{MASK}')"
    settings = Settings.from_options({}, environ={"BOTSCORE_REDIS_PASSWORD": "hunter2"})
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.redis)


@pytest.mark.parametrize(
    "concatenate",
    [lambda s: s + "suffix", lambda s: "prefix" + s, lambda s: s + s, lambda s: "".join([s])],
)
def test_a_secret_does_not_concatenate(concatenate):
    with pytest.raises(TypeError):
        concatenate(_secret())


def test_a_secret_does_not_serialize_to_json():
    secret = _secret()
    with pytest.raises(TypeError):
        json.dumps(secret)
    with pytest.raises(TypeError):
        json.dumps({"password": secret})


def test_the_cluster_environment_runs_with_the_local_settings(project_root):
    """``sparse submit -e cluster`` must score with what ``sparse run`` uses: only the cluster's
    own Storm options may differ."""
    envs = json.loads((project_root / "config.json").read_text())["envs"]
    local, cluster = envs["local"]["options"], envs["cluster"]["options"]
    assert {k: v for k, v in cluster.items() if k in local} == local
    assert set(cluster) - set(local) == {"topology.workers"}
    assert envs["cluster"]["nimbus"] == "127.0.0.1:6627"
    assert envs["cluster"]["use_ssh_for_nimbus"] is False
