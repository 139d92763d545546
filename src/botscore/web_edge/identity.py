"""Who a request comes from, and whether it ran the edge's JavaScript: signed cookies.

A user id is what every feature is counted under, so a client must not choose its own: a
bot that could would spread its requests over fresh ids and never build up a score. The
edge therefore signs the id it hands out (``bs_uid=<id>.<hmac>``) and trusts only a
cookie it signed. A client without one, or with a forged one, is named by a keyed hash of
its address and user agent: a client that drops cookies stays one user for as long as it
keeps both, and a human whose address changes keeps the cookie's id.

The JavaScript token (``bs_js``) is an HMAC of the user id with another label: only a
client that ran the edge's script (which carries it) sends it back. A headless browser
runs scripts too; the token proves JavaScript, not a human.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie

from botscore.errors import ConfigError
from botscore.settings import Settings, env_var

__all__ = [
    "JS_COOKIE",
    "MIN_SECRET_BYTES",
    "USER_COOKIE",
    "EdgeKeys",
    "Visitor",
    "edge_keys",
    "read_cookies",
]

USER_COOKIE = "bs_uid"
JS_COOKIE = "bs_js"
MIN_SECRET_BYTES = 32

# Hex digits of an HMAC-SHA256 kept in a cookie or an id: 128 bits.
_SIGNATURE_CHARS = 32
_FINGERPRINT_CHARS = 20


@dataclass(frozen=True)
class Visitor:
    """A request's user: its id, and whether the id came from a cookie the edge signed."""

    user_id: str
    from_cookie: bool


class EdgeKeys:
    """Signs and checks the edge's cookies with one secret (``edge.secret``).

    Every edge server of a site must share the secret: a cookie one signed is checked by
    whichever server the next request reaches.
    """

    def __init__(self, secret: str) -> None:
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"the edge secret (BOTSCORE_EDGE_SECRET) must be at least {MIN_SECRET_BYTES} "
                f"bytes, e.g. the output of `openssl rand -hex 32`; it is {len(secret.encode())}"
            )
        self._key = secret.encode()

    def _mac(self, label: str, text: str) -> str:
        return hmac.new(self._key, f"{label}\0{text}".encode(), hashlib.sha256).hexdigest()

    def visitor(self, user_cookie: str | None, ip: str, user_agent: str) -> Visitor:
        """The user of a request: its signed cookie's id, else its address's and agent's."""
        if user_cookie:
            user_id, _, signature = user_cookie.rpartition(".")
            if user_id and _same(signature, self._sign(user_id)):
                return Visitor(user_id, from_cookie=True)
        fingerprint = self._mac("fingerprint", f"{ip}\0{user_agent}")[:_FINGERPRINT_CHARS]
        return Visitor(f"fp-{fingerprint}", from_cookie=False)

    def _sign(self, user_id: str) -> str:
        return self._mac("user", user_id)[:_SIGNATURE_CHARS]

    def user_cookie(self, user_id: str) -> str:
        """The ``bs_uid`` cookie's value for ``user_id``."""
        return f"{user_id}.{self._sign(user_id)}"

    def js_token(self, user_id: str) -> str:
        """The token the edge's script sets for ``user_id``."""
        return self._mac("javascript", user_id)[:_SIGNATURE_CHARS]

    def ran_javascript(self, js_cookie: str | None, user_id: str) -> bool:
        """The request carries ``user_id``'s token: its client ran the edge's script."""
        return bool(js_cookie) and _same(js_cookie or "", self.js_token(user_id))


def _same(sent: str, expected: str) -> bool:
    """A client's value against the expected one, in constant time. As bytes: a quoted
    cookie may hold any character, and ``compare_digest`` refuses str that is not ASCII."""
    return hmac.compare_digest(sent.encode(errors="replace"), expected.encode())


def edge_keys(settings: Settings) -> EdgeKeys:
    """The keys of ``edge.secret``, which the gate and the shipper both need."""
    secret = settings.edge.secret.reveal()
    if not secret:
        raise ConfigError(
            f"the edge signs cookies with a secret: set {env_var('edge', 'secret')} "
            "(e.g. `openssl rand -hex 32`), the same for every gate and shipper of a site"
        )
    return EdgeKeys(secret)


def read_cookies(header: str | None) -> dict[str, str]:
    """The cookies of a ``Cookie`` header; a header that cannot be read has none."""
    if not header:
        return {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}
