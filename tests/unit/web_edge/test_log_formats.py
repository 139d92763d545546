"""Each access-log format's reader, and the length limit every one of them keeps."""

from __future__ import annotations

import json
from functools import partial

import pytest

from botscore.errors import UnreadableLine
from botscore.v1.web_log_pb2 import WebLog
from botscore.vocabulary import Decision
from botscore.web_edge.access_log import FIELDS, EdgeRequest, Networks
from botscore.web_edge.identity import EdgeKeys
from botscore.web_edge.log_formats import MAX_LINE_BYTES, _within_limit, line_reader

KEYS = EdgeKeys("k" * 32)


def _combined(agent: str) -> bytes:
    return (
        f'192.0.2.1 - - [01/Jan/2024:00:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "{agent}"'
    ).encode()


def _botscore(agent: str) -> bytes:
    fields = dict.fromkeys(FIELDS, "")
    fields.update(
        time="1704067200.000",
        user="u-1",
        ip="192.0.2.1",
        request="GET / HTTP/1.1",
        uri="/",
        status="200",
        bytes="1",
        decision="allow",
        request_id="r-1",
        user_agent=agent,
    )
    return json.dumps(fields).encode()


@pytest.mark.parametrize(("log_format", "make"), [("combined", _combined), ("botscore", _botscore)])
def test_a_line_up_to_the_limit_is_read_one_byte_more_is_refused(log_format, make) -> None:
    read = line_reader(log_format, Networks([]), KEYS, node="edge-1")
    longest = make("a" * (MAX_LINE_BYTES - len(make(""))))
    assert len(longest) == MAX_LINE_BYTES
    assert read(longest, "edge-1:1:1").web_log.user_agent == "a" * (MAX_LINE_BYTES - len(make("")))
    with pytest.raises(UnreadableLine, match="more than 65536") as refused:
        read(make("a" * (MAX_LINE_BYTES - len(make("")) + 1)), "edge-1:1:1")
    assert refused.value.reason == "too_long"


def test_each_format_names_its_requests_as_it_should() -> None:
    combined = line_reader("combined", Networks([]), KEYS, node="edge-1")
    own = line_reader("botscore", Networks([]), KEYS, node="edge-1")
    a = combined(_combined("x"), "edge-1:7:90").web_log
    assert (a.edge_node, a.user_id) == ("edge-1", KEYS.visitor(None, "192.0.2.1", "x").user_id)
    assert a.request_id != combined(_combined("x"), "edge-1:7:180").web_log.request_id
    b = own(_botscore("x"), "edge-1:7:90").web_log
    assert (b.user_id, b.request_id) == ("u-1", "r-1")  # the gate's user, nginx's id


def test_a_value_no_reader_check_foresaw_costs_its_line_not_the_reader() -> None:
    def reader_with_a_gap(line: bytes, place: str) -> EdgeRequest:
        return EdgeRequest(WebLog(status=int(line)), Decision.ALLOW)  # 2**32: ValueError

    read = partial(_within_limit, read=reader_with_a_gap)
    assert read(b"200", "edge-1:1:1").web_log.status == 200
    with pytest.raises(UnreadableLine, match="ValueError") as refused:
        read(str(2**32).encode(), "edge-1:1:1")
    assert refused.value.reason == "bad_field"
