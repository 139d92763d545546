"""``declares_bot`` answers as the crawler-user-agents package's own check does, on every
string: RE2 for text without a line break or a digit outside ASCII, the package's check for
the rest."""

from __future__ import annotations

import re

import crawleruseragents
from hypothesis import given
from hypothesis import strategies as st

from botscore.aggregation.user_agents import declares_bot

PATTERNS = [entry["pattern"] for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA]
INSTANCES = [
    agent for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA for agent in entry["instances"]
]
# Pieces of the patterns themselves, so that generated text comes near matching them.
PIECES = sorted({piece for p in PATTERNS for piece in p.replace("\\", "").split("|") if piece})


def test_every_example_the_package_lists_is_a_declared_bot():
    assert all(declares_bot(agent) for agent in INSTANCES)


@given(
    st.lists(
        st.one_of(
            st.sampled_from(PIECES),
            st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
        ),
        max_size=8,
    )
)
def test_ascii_text_is_answered_as_the_package_answers(parts):
    agent = " ".join(parts)
    assert declares_bot.__wrapped__(agent) == crawleruseragents.is_crawler(agent)


def test_where_re2_and_python_read_a_pattern_differently_the_package_answers():
    # Python's \\d is any Unicode digit, RE2's an ASCII one; Python's $ also matches before
    # a final line break, RE2's only at the end.
    for agent in ("BlogTraffic/\u0663.\u0663 Feed-Fetcher", "SSL Labs\n"):
        assert crawleruseragents.is_crawler(agent)
        assert declares_bot.__wrapped__(agent)


@given(
    st.lists(
        st.one_of(
            st.sampled_from(PIECES),
            st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
        ),
        max_size=8,
    )
)
def test_any_text_is_answered_as_the_package_answers(parts):
    """Non-ASCII text goes to RE2 as well (a rotating U+FFFD must not cost a millisecond
    a request), and still gets the package's answer."""
    agent = " ".join(parts)
    assert declares_bot.__wrapped__(agent) == crawleruseragents.is_crawler(agent)


def test_the_patterns_use_no_class_re2_reads_otherwise_on_unicode_but_digits():
    """What sends only text with a non-ASCII digit to the package: a new version of the
    list with \\w, \\b or a case-insensitive flag would need more."""
    differing = re.compile(r"\\[wWbB]|\(\?[a-z]*i")
    assert not [p for p in PATTERNS if differing.search(p)]
    assert all(p.isascii() for p in PATTERNS)
