"""The edge's signed cookies: who a request comes from, and whether it ran the script."""

from __future__ import annotations

import pytest

from botscore.errors import ConfigError
from botscore.web_edge.identity import EdgeKeys, Visitor, read_cookies

SECRET = "s" * 32
UA = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"


def test_a_cookie_the_edge_signed_names_its_user_wherever_the_request_comes_from() -> None:
    keys = EdgeKeys(SECRET)
    cookie = keys.user_cookie("fp-0123")
    assert keys.visitor(cookie, "203.0.113.9", UA) == Visitor("fp-0123", from_cookie=True)
    assert keys.visitor(cookie, "198.51.100.1", "curl/8.5.0") == Visitor("fp-0123", True)


@pytest.mark.parametrize(
    "cookie",
    [
        "fp-0123.00000000000000000000000000000000",  # a signature the edge did not make
        "fp-other." + "0" * 32,
        "fp-0123",  # no signature
        ".abc",
        "",
        None,
        "fp-0123.\u00e9\u00ff",  # a quoted cookie may hold any character
    ],
)
def test_a_forged_or_missing_cookie_falls_back_to_the_address_and_agent(
    cookie: str | None,
) -> None:
    keys = EdgeKeys(SECRET)
    visitor = keys.visitor(cookie, "203.0.113.9", UA)
    assert not visitor.from_cookie
    assert visitor == keys.visitor(None, "203.0.113.9", UA)  # the same client, the same user
    assert visitor.user_id.startswith("fp-") and visitor.user_id != "fp-0123"


def test_a_token_of_any_characters_is_no_token() -> None:
    keys = EdgeKeys(SECRET)
    assert not keys.ran_javascript("\u00e9" * 16, "u-7")


def test_another_secret_signs_other_cookies_and_names_other_fingerprints() -> None:
    ours, theirs = EdgeKeys(SECRET), EdgeKeys("t" * 32)
    assert not ours.visitor(theirs.user_cookie("fp-0123"), "203.0.113.9", UA).from_cookie
    assert ours.visitor(None, "203.0.113.9", UA) != theirs.visitor(None, "203.0.113.9", UA)


def test_a_fingerprint_follows_address_and_agent() -> None:
    keys = EdgeKeys(SECRET)
    one = keys.visitor(None, "203.0.113.9", UA).user_id
    assert keys.visitor(None, "203.0.113.10", UA).user_id != one
    assert keys.visitor(None, "203.0.113.9", UA + " ").user_id != one
    # The separator keeps ("a", "bc") and ("ab", "c") apart.
    assert keys.visitor(None, "1", "23").user_id != keys.visitor(None, "12", "3").user_id


def test_the_script_s_token_is_its_user_s_only() -> None:
    keys = EdgeKeys(SECRET)
    token = keys.js_token("fp-0123")
    assert keys.ran_javascript(token, "fp-0123")
    assert not keys.ran_javascript(token, "fp-0124")
    assert not keys.ran_javascript(None, "fp-0123")
    assert not keys.ran_javascript("", "fp-0123")
    assert not keys.ran_javascript(token[:-1], "fp-0123")
    # The token is no signature of the user cookie's, nor the reverse.
    assert token not in keys.user_cookie("fp-0123")


def test_a_short_secret_is_refused_with_how_to_make_one() -> None:
    with pytest.raises(ConfigError, match=r"at least 32 bytes.*openssl rand -hex 32"):
        EdgeKeys("x" * 31)


def test_cookies_are_read_from_a_header_and_an_unreadable_one_has_none() -> None:
    assert read_cookies('bs_uid=a.b; bs_js=c; other="q"') == {
        "bs_uid": "a.b",
        "bs_js": "c",
        "other": "q",
    }
    assert read_cookies(None) == {}
    assert read_cookies("") == {}
    assert read_cookies('bs_uid="unterminated') == {}
