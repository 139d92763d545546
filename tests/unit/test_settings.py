"""Settings from options and the environment; secrets that never leak."""

import json
import math
import re
from dataclasses import fields
from typing import get_type_hints

import pytest

from botscore.errors import ConfigError
from botscore.settings import (
    NO_SECRET,
    Secret,
    Settings,
    env_var,
    load_project_settings,
    project_env,
    require_message_timeouts,
    settings_table,
)
from botscore.transport.kafka_clients import connection_config
from botscore.transport.redis_client import create_redis
from botscore.vocabulary import Role


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


def test_the_age_limit_reaches_at_least_as_far_back_as_a_rebuild_reads():
    settings = Settings()
    ttl_ms = settings.aggregation.state_ttl_s * 1000
    assert settings.aggregation.max_event_age_ms >= ttl_ms
    exact = {"botscore.aggregation.max_event_age_ms": ttl_ms}
    assert Settings.from_options(exact, environ={}).aggregation.max_event_age_ms == ttl_ms
    with pytest.raises(ConfigError, match=rf"max_event_age_ms \({ttl_ms - 1}\) is less than"):
        Settings.from_options({"botscore.aggregation.max_event_age_ms": ttl_ms - 1}, environ={})
    # A shorter state lets the limit be shorter too.
    shorter = {
        "botscore.aggregation.state_ttl_s": 3600,
        "botscore.aggregation.max_event_age_ms": 3_600_000,
    }
    assert Settings.from_options(shorter, environ={}).aggregation.max_event_age_ms == 3_600_000
    # A sped-up simulation's year of skew (make run's) needs no other limit: its requests
    # are stamped ahead of the clock, not behind it.
    year = str(365 * 86_400_000)
    sped_up = {
        "BOTSCORE_AGGREGATION_MAX_EVENT_SKEW_MS": year,
        "BOTSCORE_ENFORCEMENT_MAX_CLOCK_SKEW_MS": year,
    }
    assert Settings.from_options({}, environ=sped_up).aggregation.max_event_age_ms == 86_400_000


def test_each_publisher_needs_a_shard_of_its_own():
    most = {"botscore.aggregation.publishers": 16, "botscore.aggregation.state_shards": 16}
    assert Settings.from_options(most, environ={}).aggregation.publishers == 16
    with pytest.raises(ConfigError, match=r"publishers \(3\) is more than .*state_shards \(2\)"):
        Settings.from_options(
            {"botscore.aggregation.publishers": 3, "botscore.aggregation.state_shards": 2},
            environ={},
        )


def test_a_wait_for_replicas_must_end_before_the_redis_connection_times_out():
    # Without replicas to wait for, the wait's length does not matter.
    loose = {"botscore.aggregation.state_replica_wait_ms": 10_000}
    assert Settings.from_options(loose, environ={}).aggregation.state_replicas == 0
    wait = {"botscore.aggregation.state_replicas": 1, "botscore.redis.socket_timeout_s": 2}
    assert Settings.from_options(wait, environ={}).aggregation.state_replica_wait_ms == 1000
    with pytest.raises(ConfigError, match=r"state_replica_wait_ms \(2000\) is not less than "):
        Settings.from_options(
            {**wait, "botscore.aggregation.state_replica_wait_ms": 2000}, environ={}
        )


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


def _config(tmp_path, content):
    path = tmp_path / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    return path


def test_a_config_that_cannot_be_read_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot be read: Is a directory"):
        load_project_settings(tmp_path, environ={})
    with pytest.raises(ConfigError, match=r"config\.json is not UTF-8 text \(byte 0"):
        load_project_settings(_config(tmp_path, b'\xff{"envs": {}}'), environ={})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ([1, 2], r"config\.json must be a JSON object, not an array"),
        ({"envs": "x"}, r'config\.json: "envs" must be a JSON object, not a string'),
        ({"envs": {"local": []}}, r"environment 'local' must be a JSON object, not an array"),
        (
            {"envs": {"local": {"options": None}}},
            r"\"options\" of environment 'local' must be a JSON object, not null",
        ),
        (
            {"envs": {"local": {"options": ["botscore.redis.port"]}}},
            r"\"options\" of environment 'local' must be a JSON object, not an array",
        ),
    ],
)
def test_a_config_of_the_wrong_shape_says_what_is_wrong(tmp_path, config, message):
    with pytest.raises(ConfigError, match=message):
        load_project_settings(_config(tmp_path, config), environ={})


@pytest.mark.parametrize("config", [{}, {"envs": {}}, {"envs": []}])
def test_a_config_without_environments_says_so(tmp_path, config):
    with pytest.raises(
        ConfigError, match=r'config\.json defines no environments: add one under "envs"'
    ):
        load_project_settings(_config(tmp_path, config), environ={})


@pytest.mark.parametrize(
    ("options", "environ", "message"),
    [
        ({"botscore.kafka.topic_partitions": 3.7}, {}, r"expected an integer, got 3\.7"),
        ({"botscore.kafka.topic_partitions": True}, {}, r"expected an integer, got True"),
        # A whole number written as a float is refused too, as "3.0" in the environment is.
        ({"botscore.kafka.topic_partitions": 3.0}, {}, r"expected an integer, got 3\.0"),
        ({}, {"BOTSCORE_KAFKA_TOPIC_PARTITIONS": "3.0"}, r"expected an integer, got '3\.0'"),
        (
            {"botscore.kafka.bootstrap_servers": ["a:1", "b:2"]},
            {},
            r"botscore\.kafka\.bootstrap_servers: expected a string, got \['a:1', 'b:2'\]",
        ),
        ({"botscore.scoring.model_dir": 7}, {}, r"expected a string, got 7"),
        ({"botscore.redis.socket_timeout_s": math.nan}, {}, r"expected a finite number, got nan"),
        ({"botscore.redis.socket_timeout_s": 10**400}, {}, r"expected a finite number"),
        ({"botscore.redis.socket_timeout_s": False}, {}, r"expected a finite number, got False"),
        (
            {},
            {"BOTSCORE_SCORING_RELEASE_CHECK_S": "inf"},
            r"BOTSCORE_SCORING_RELEASE_CHECK_S: expected a finite number, got 'inf'",
        ),
        (
            {"botscore.redis.port": 70000},
            {},
            r"botscore\.redis\.port: 70000 is not a valid redis\.port "
            r"\(at least 1 and at most 65535\)",
        ),
    ],
)
def test_a_value_of_the_wrong_type_or_out_of_range_names_the_setting(options, environ, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_options(options, environ=environ)


@pytest.mark.parametrize(
    "servers", ["127.0.0.2:abc", "host", "PLAINTEXT://a:9092", "a:99999", "a:1;b:2", "a:1,", ":9"]
)
def test_brokers_that_are_not_host_and_port_are_refused_naming_the_setting(servers):
    with pytest.raises(ConfigError, match=r"kafka\.bootstrap_servers: .* is not host:port"):
        Settings.from_options({}, environ={"BOTSCORE_KAFKA_BOOTSTRAP_SERVERS": servers})


@pytest.mark.parametrize("servers", ["a:1", "a:1, b.example:9093", "[::1]:9092", "10.0.0.1:65535"])
def test_brokers_as_host_and_port_are_taken(servers):
    settings = Settings.from_options({}, environ={"BOTSCORE_KAFKA_BOOTSTRAP_SERVERS": servers})
    assert settings.kafka.bootstrap_servers == servers


@pytest.mark.parametrize(
    ("variable", "taken", "refused", "limits"),
    [
        ("BOTSCORE_REDIS_PORT", "1", "0", "at least 1 and at most 65535"),
        ("BOTSCORE_REDIS_PORT", "65535", "65536", "at least 1 and at most 65535"),
        ("BOTSCORE_METRICS_STATSD_PORT", "8125", "-1", "at least 1 and at most 65535"),
        ("BOTSCORE_KAFKA_TOPIC_PARTITIONS", "1", "0", "more than 0"),
        ("BOTSCORE_KAFKA_MAX_ATTEMPTS", "1", "-5", "more than 0"),
        ("BOTSCORE_AGGREGATION_STATE_TTL_S", "1", "0", "more than 0"),
        ("BOTSCORE_REDIS_SOCKET_TIMEOUT_S", "0.5", "0", "more than 0 and at most 86400"),
        # 1e300 s overflowed the platform's time in every Redis call.
        ("BOTSCORE_REDIS_SOCKET_TIMEOUT_S", "86400", "1e300", "more than 0 and at most 86400"),
        ("BOTSCORE_REDIS_DB", "0", "-1", "at least 0"),
        # 0 means "never" for these two, and no wait or no decision kept for the others.
        ("BOTSCORE_SCORING_RELEASE_CHECK_S", "0", "-1", "at least 0 and at most 86400"),
        ("BOTSCORE_SCORING_RELEASE_CHECK_S", "86400", "86401", "at least 0 and at most 86400"),
        ("BOTSCORE_KAFKA_LOST_ACK_REPLAY_MS", "0", "-1", "at least 0"),
        ("BOTSCORE_KAFKA_REPLAY_BACKOFF_FIRST_MS", "0", "-200", "at least 0"),
        ("BOTSCORE_ENFORCEMENT_BLOCK_TTL_S", "0", "-1", "at least 0"),
        ("BOTSCORE_KAFKA_BOOTSTRAP_SERVERS", "broker:9092", "", "not empty"),
        ("BOTSCORE_KAFKA_FEATURES_TOPIC", "features", " ", "not empty"),
        ("BOTSCORE_SCORING_CONSUMER_GROUP", "group", "", "not empty"),
        ("BOTSCORE_SCORING_MODEL_DIR", "models/x", "", "not empty"),
    ],
)
def test_values_are_taken_up_to_their_limits_and_refused_beyond(variable, taken, refused, limits):
    Settings.from_options({}, environ={variable: taken})
    setting = variable.removeprefix("BOTSCORE_").lower().replace("_", ".", 1)
    with pytest.raises(ConfigError) as raised:
        Settings.from_options({}, environ={variable: refused})
    assert str(raised.value).endswith(f"is not a valid {setting} ({limits})")
    assert str(raised.value).startswith(f"{variable}: ")


def test_optional_names_may_be_empty():
    settings = Settings.from_options(
        {}, environ={"BOTSCORE_KAFKA_SASL_USERNAME": "", "BOTSCORE_REDIS_USERNAME": ""}
    )
    assert settings.kafka.sasl_username == settings.redis.username == ""
    with pytest.raises(ConfigError, match="BOTSCORE_METRICS_NAMESPACE: '' is not a valid"):
        Settings.from_options({}, environ={"BOTSCORE_METRICS_NAMESPACE": ""})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BOTSCORE_REDIS_SOCKET_TIMEOUT_S", "nan"),
        ("BOTSCORE_REDIS_SOCKET_TIMEOUT_S", "-1"),
        ("BOTSCORE_REDIS_PORT", "-1"),
        ("BOTSCORE_REDIS_PORT", "70000"),
    ],
)
def test_redis_settings_the_client_cannot_use_stop_the_command_at_start(
    project_root, variable, value
):
    """redis-py raised ValueError on these (a traceback), or blamed the service for the port."""
    with pytest.raises(ConfigError, match=f"^{variable}: "):
        load_project_settings(project_root / "config.json", environ={variable: value})


def test_every_number_setting_declares_limits_that_its_default_keeps_and_the_table_lists():
    table = settings_table()
    for section in fields(Settings):
        section_cls = get_type_hints(Settings)[section.name]
        hints = get_type_hints(section_cls)
        for item in fields(section_cls):
            limits = item.metadata.get("limits")
            if hints[item.name] in (int, float):
                assert limits is not None, f"{section.name}.{item.name} declares no limits"
            if limits is not None:
                assert limits.admit(item.default), f"{section.name}.{item.name}"
                assert f"; {limits} |" in table
    assert "| Redis port; at least 1 and at most 65535 |" in table


def test_secrets_come_only_from_the_environment_and_never_print():
    settings = Settings.from_options({}, environ={"BOTSCORE_KAFKA_SASL_PASSWORD": "hunter2"})
    assert settings.kafka.sasl_password.reveal() == "hunter2"
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.kafka.sasl_password)
    with pytest.raises(ConfigError, match="BOTSCORE_REDIS_PASSWORD"):
        Settings.from_options({"botscore.redis.password": "x"}, environ={})


@pytest.mark.parametrize(
    ("key", "says"),
    [
        ("kafka.topic_partitions", "no 'botscore.' prefix: botscore.kafka.topic_partitions?"),
        ("botsore.kafka.topic_partitions", "did you mean botscore.kafka.topic_partitions?"),
        ("Botscore.redis.port", "did you mean botscore.redis.port?"),
    ],
)
def test_a_misspelt_prefix_is_refused_not_handed_to_storm(key, says):
    """Storm takes every option: the setting would keep its default without a word."""
    with pytest.raises(ConfigError, match=re.escape(says)):
        Settings.from_options({key: 8}, environ={})


@pytest.mark.parametrize(
    "namespace", ["a b", "bot|score", "bot:score", "bot#s", "1bot", "bötscore"]
)
def test_a_metrics_namespace_that_would_garble_every_line_is_refused(namespace):
    """DogStatsD drops a line it cannot read without a word: every metric would be lost."""
    with pytest.raises(ConfigError, match=r"metrics\.namespace"):
        Settings.from_options({}, environ={"BOTSCORE_METRICS_NAMESPACE": namespace})


def test_a_dotted_metrics_namespace_is_taken():
    settings = Settings.from_options({}, environ={"BOTSCORE_METRICS_NAMESPACE": "acme.botscore_2"})
    assert settings.metrics.namespace == "acme.botscore_2"


def test_storms_own_options_pass():
    Settings.from_options(
        {"topology.workers": 2, "storm.zookeeper.port": 2181, "nimbus.seeds": ["a"]}, environ={}
    )


def test_a_config_nested_too_deeply_to_read_is_refused(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match="nests its JSON too deeply"):
        project_env(path)


def test_a_secret_utf8_cannot_carry_is_refused_without_showing_it():
    """Bytes the environment could not decode reach Python as surrogates: an HMAC key or a
    password made of them would fail at every use instead."""
    with pytest.raises(ConfigError, match="BOTSCORE_SCORING_MODEL_SIGNING_KEY") as refused:
        Settings.from_options({}, environ={"BOTSCORE_SCORING_MODEL_SIGNING_KEY": "key\udcff7"})
    assert "key" not in str(refused.value).replace("SIGNING_KEY", "")


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


def test_a_role_reads_its_own_variables_first_and_its_name_in_user_names():
    environ = {
        "BOTSCORE_KAFKA_SASL_USERNAME": "botscore-{role}",
        "BOTSCORE_KAFKA_SASL_PASSWORD": "shared",
        "BOTSCORE_KAFKA_SASL_PASSWORD__SCORING": "scoring-only",
        "BOTSCORE_REDIS_USERNAME__EDGE": "",
    }
    options = {"botscore.redis.username": "bs-{role}"}
    scoring = Settings.from_options(options, environ=environ, role=Role.SCORING)
    assert scoring.kafka.sasl_username == "botscore-scoring"
    assert scoring.kafka.sasl_password.reveal() == "scoring-only"
    assert scoring.redis.username == "bs-scoring"
    enforcer = Settings.from_options(options, environ=environ, role=Role.ENFORCER)
    assert enforcer.kafka.sasl_password.reveal() == "shared"
    assert Settings.from_options(options, environ=environ, role=Role.EDGE).redis.username == ""
    # Read for no role, nothing role-specific applies and the name is left as written.
    plain = Settings.from_options(options, environ=environ)
    assert plain.kafka.sasl_password.reveal() == "shared"
    assert plain.kafka.sasl_username == "botscore-{role}"
    assert (
        env_var("kafka", "sasl_password", Role.SCORING) == "BOTSCORE_KAFKA_SASL_PASSWORD__SCORING"
    )


def test_a_client_refuses_a_user_name_that_still_names_a_role():
    environ = {
        "BOTSCORE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "BOTSCORE_KAFKA_SASL_USERNAME": "botscore-{role}",
        "BOTSCORE_KAFKA_SASL_PASSWORD": "secret",
        "BOTSCORE_REDIS_USERNAME": "botscore-{role}",
    }
    settings = Settings.from_options({}, environ=environ)
    with pytest.raises(
        ConfigError, match=re.escape("kafka.sasl_username 'botscore-{role}' names a role")
    ):
        connection_config(settings.kafka)
    with pytest.raises(
        ConfigError, match=re.escape("redis.username 'botscore-{role}' names a role")
    ):
        create_redis(settings.redis)


@pytest.mark.parametrize(
    ("variable", "says"),
    [
        ("BOTSCORE_REDIS_HOTS", "BOTSCORE_REDIS_HOTS (did you mean BOTSCORE_REDIS_HOST?)"),
        ("BOTSCORE_KAFKA_BOOTSTRAP_SERVER", "did you mean BOTSCORE_KAFKA_BOOTSTRAP_SERVERS?"),
        ("BOTSCORE_REDIS_PORT__NOBODY", "BOTSCORE_REDIS_PORT__NOBODY"),
    ],
)
def test_a_variable_named_like_a_setting_that_is_none_is_refused(variable, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        Settings.from_options({}, environ={variable: "10.9.9.9"})


def test_variables_of_other_names_and_of_each_role_are_taken():
    environ = {
        "BOTSCORE_SIM_RATE": "5",  # the scripts' own, outside the settings' sections
        "BOTSCORE_ENV": "local",
        env_var("redis", "port", Role.ENFORCER): "6390",
    }
    settings = Settings.from_options({}, environ=environ, role=Role.ENFORCER)
    assert settings.redis.port == 6390


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"BOTSCORE_EDGE_DATACENTER_NETWORKS": "10.0.0.0/8, 300.1.0.0/16"}, "datacenter_networks"),
        (
            {
                "BOTSCORE_KAFKA_REPLAY_BACKOFF_FIRST_MS": "5000",
                "BOTSCORE_KAFKA_REPLAY_BACKOFF_MAX_MS": "1000",
            },
            r"replay_backoff_first_ms \(5000\) is more than kafka\.replay_backoff_max_ms",
        ),
    ],
)
def test_settings_every_process_must_agree_on_are_checked_for_every_one(environ, says):
    with pytest.raises(ConfigError, match=says):
        Settings.from_options({}, environ=environ)
