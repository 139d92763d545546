"""docker-compose.yml is for users with a Docker engine: keep it in step with config.json."""

from ruamel.yaml import YAML

from botscore.settings import load_project_settings


def test_compose_services_listen_where_the_project_connects(project_root):
    compose = YAML(typ="safe").load((project_root / "docker-compose.yml").read_text())
    settings = load_project_settings(project_root / "config.json", environ={})
    kafka = compose["services"]["kafka"]
    host, port = settings.kafka.bootstrap_servers.split(",")[0].rsplit(":", 1)
    assert f"{host}:{port}:9092" in kafka["ports"]
    assert kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{host}:{port}"
    assert kafka["environment"]["KAFKA_NUM_PARTITIONS"] == settings.kafka.topic_partitions
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "127.0.0.1:6379:6379" in compose["services"]["redis"]["ports"]
    assert all("healthcheck" in service for service in compose["services"].values())


def test_compose_kafka_image_matches_the_local_broker_version(project_root):
    compose = YAML(typ="safe").load((project_root / "docker-compose.yml").read_text())
    pom = (project_root / "stack" / "kafka" / "pom.xml").read_text()
    version = compose["services"]["kafka"]["image"].split(":")[1]
    assert f"<kafka.version>{version}</kafka.version>" in pom
