"""Log lines end with their component's tags as ``key=value`` pairs, once."""

from __future__ import annotations

import io
import logging

import pytest

from botscore.observability.tagged_logs import tag_logs


@pytest.fixture
def logged(monkeypatch):
    monkeypatch.delenv("DD_ENV", raising=False)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("tests.tagged_logs")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.handlers = [handler]
    yield logger, handler, stream
    logger.handlers = []
    logger.filters = []


def test_every_line_ends_with_the_tags_once(logged, monkeypatch):
    logger, handler, stream = logged
    monkeypatch.setenv("DD_ENV", "staging")
    tag_logs(logger, ["component:classifier", "model:baseline:2", "task:3"])
    tag_logs(handler, ["component:other"])  # a record is tagged once, by the first
    logger.warning("cannot score %s at 100%% (%s)", "tuple 7", "50% done")
    assert stream.getvalue().splitlines() == [
        "WARNING cannot score tuple 7 at 100% (50% done) | component=classifier "
        "model=baseline:2 task=3 env=staging"
    ]


def test_new_tags_replace_the_old_ones(logged):
    logger, _, stream = logged
    tag_logs(logger, ["component:classifier", "model:baseline:2"])
    tag_logs(logger, ["component:classifier", "model:baseline:3"])
    logger.info("switched")
    logger.error("failed", exc_info=ValueError("boom"))
    lines = stream.getvalue().splitlines()
    assert lines[0] == "INFO switched | component=classifier model=baseline:3"
    assert lines[1] == "ERROR failed | component=classifier model=baseline:3"
    assert lines[-1] == "ValueError: boom"  # the traceback still follows the line
