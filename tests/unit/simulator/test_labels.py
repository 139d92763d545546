"""The ground truth: written apart from the messages, and read back only from its own file."""

from __future__ import annotations

import re

import pytest

from botscore.errors import SimulationSpecError
from botscore.simulator.labels import HEADER, read_labels, write_labels
from botscore.simulator.profiles import PROFILES
from botscore.v1.web_log_pb2 import WebLog


def test_labels_stay_out_of_the_messages(traffic, tmp_path):
    population, _, events, _, _, kind_of = traffic
    assert write_labels(population, tmp_path / "labels.csv") == 600
    assert (tmp_path / "labels.csv").read_text().splitlines()[0] == ",".join(HEADER)
    labels = read_labels(tmp_path / "labels.csv")
    assert labels == {u.user_id: (u.kind, PROFILES[u.kind].is_bot) for u in population.users}
    # User ids are opaque cookies of one shape for every kind; no kind name inside.
    pattern = re.compile(r"c-[0-9a-f]{16}")
    assert all(pattern.fullmatch(user_id) for user_id in kind_of)
    words = [k.split("_")[0] for k in PROFILES] + ["bot"]
    for event in events:
        assert not any(w in event.user_id or w in event.request_id for w in words)
    assert not any(f.name in ("kind", "is_bot", "label") for f in WebLog.DESCRIPTOR.fields)


def test_a_file_that_is_not_a_labels_file_is_refused(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("user,label\nc-1,bot\n")
    with pytest.raises(SimulationSpecError, match="not a simulation labels file"):
        read_labels(path)


@pytest.mark.parametrize(
    "rows",
    ["c-1\n", "c-1,human\n", "c-1,human,yes\n", ",human,0\n", "c-1,human,0,extra\n", "x" * 200_000],
    ids=["one-column", "two-columns", "not-0-or-1", "no-user", "four-columns", "a-huge-field"],
)
def test_a_row_that_is_not_a_label_is_refused_naming_the_file(tmp_path, rows):
    path = tmp_path / "labels.csv"
    path.write_text(",".join(HEADER) + "\nc-0,human,0\n" + rows)
    with pytest.raises(SimulationSpecError, match=r"labels\.csv"):
        read_labels(path)


@pytest.mark.parametrize("where", ["", "a-directory", "a-file/labels.csv"])
def test_a_labels_path_that_cannot_be_written_is_refused_and_leaves_nothing(
    traffic, tmp_path, monkeypatch, where
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-directory").mkdir()
    (tmp_path / "a-file").write_text("")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SimulationSpecError, match="labels"):
        write_labels(traffic[0], where)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("kind", ["missing", "directory", "not utf-8"])
def test_labels_that_cannot_be_read_are_refused(tmp_path, kind):
    path = tmp_path / "labels.csv"
    if kind == "directory":
        path.mkdir()
    elif kind == "not utf-8":
        path.write_bytes(b"user_id,kind,is_bot\n\xff\xfe,human,0\n")
    with pytest.raises(SimulationSpecError, match="cannot read the labels"):
        read_labels(path)
