"""The kinds of visitor the simulator knows, and the parameters of how each one behaves.

Behaviour is data (``PROFILES``), so a new kind of bot is a new entry rather than new code:
``population`` draws users of each kind from these parameters and ``traffic`` draws their
requests. A mix (``MIXES``) names the kinds a simulation draws from: ``classic``, the
default, keeps the traffic the shipped model was trained on; ``wide`` adds the humans that
look unusual and the bots that imitate humans, for an evaluation that can fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["DEFAULT_MIX", "HUMAN", "MIXES", "PROFILES", "Profile", "UaSource", "profiles_in"]

HUMAN = "human"

# Where a profile's user agents come from: see ``Profile.ua_source``.
UaSource = Literal["browser", "crawler", "library"]


@dataclass(frozen=True)
class Profile:
    """How one kind of visitor behaves; every number is a distribution parameter."""

    kind: str
    is_bot: bool
    # Share of its side: of the bots for a bot kind, of the humans for a human kind.
    share: float
    # Mean seconds between requests within a session, and their coefficient of variation:
    # above 1 is bursty like a reading human, well below 1 is a machine's steady loop.
    mean_gap_s: float
    gap_cv: float
    # Mean requests per session; between sessions a user is idle.
    session_requests: float
    # Chance that an address in the user's pool belongs to a data centre.
    datacenter_share: float
    # Size range of the user's address pool, and the chance a request switches address.
    ips: tuple[int, int]
    ip_rotation: float
    # "browser" (fake-useragent), "crawler" (declared crawlers) or "library" (HTTP
    # libraries and headless browsers, from crawler-user-agents).
    ua_source: UaSource
    user_agents: tuple[int, int]
    ua_rotation: float
    # Chance that a request after the first of a session passes the JavaScript check.
    js_check: float
    # Action -> weight; ``TrafficGenerator`` turns an action into method, path and status.
    actions: Mapping[str, float]
    # Chance that a page request asks for a URL that does not exist (404).
    not_found: float
    # Chance that a failed login is refused outright (403) rather than 401.
    login_refused: float
    # Chance that a login attempt succeeds.
    login_success: float
    # Chance that a request carries a Referer header.
    referrer: float
    # Share of page requests sent as HEAD.
    head_share: float
    # Products visited in catalogue order (a walker) rather than by popularity.
    walks_catalogue: bool
    # Addresses shared by every user of the kind (a corporate gateway), 0 for own addresses.
    shared_ips: int = 0
    # Share of the kind's users whose TLS handshake contradicts their user agent (the edge's
    # fingerprint is not the named client's): an HTTP library behind a browser's user agent,
    # or a gateway or security product that inspects TLS for a human. The rest present the
    # named client's handshake: a real browser, a library that says what it is, or a bot
    # that impersonates a browser's handshake too. Per user: one client, one TLS stack.
    tls_contradicts: float = 0.0


PROFILES: Mapping[str, Profile] = {
    p.kind: p
    for p in (
        Profile(
            kind=HUMAN,
            is_bot=False,
            share=0.9,
            mean_gap_s=8.0,
            gap_cv=1.6,
            session_requests=25,
            # VPN users and offices behind cloud proxies.
            datacenter_share=0.05,
            ips=(1, 2),
            ip_rotation=0.02,
            ua_source="browser",
            user_agents=(1, 2),
            ua_rotation=0.01,
            js_check=0.97,
            actions={
                "home": 0.08,
                "page": 0.22,
                "product": 0.2,
                "search": 0.08,
                "asset": 0.3,
                "api": 0.09,
                "login_form": 0.015,
                "login": 0.015,
            },
            not_found=0.01,
            login_refused=0.1,
            login_success=0.85,
            referrer=0.85,
            head_share=0.0,
            walks_catalogue=False,
            # Antivirus and privacy tools that inspect TLS.
            tls_contradicts=0.01,
        ),
        Profile(
            kind="scraper",
            is_bot=True,
            share=0.25,
            mean_gap_s=0.3,
            gap_cv=0.3,
            session_requests=400,
            datacenter_share=0.7,
            ips=(1, 4),
            ip_rotation=0.05,
            ua_source="library",
            user_agents=(1, 1),
            ua_rotation=0.0,
            js_check=0.0,
            actions={"product": 0.8, "search": 0.1, "page": 0.1},
            not_found=0.08,
            login_refused=0.5,
            login_success=0.0,
            referrer=0.05,
            head_share=0.02,
            walks_catalogue=True,
        ),
        Profile(
            kind="credential_stuffer",
            is_bot=True,
            share=0.15,
            mean_gap_s=1.5,
            gap_cv=0.5,
            session_requests=200,
            # Residential proxies as often as cloud machines.
            datacenter_share=0.5,
            ips=(5, 40),
            ip_rotation=0.3,
            ua_source="browser",
            user_agents=(1, 5),
            ua_rotation=0.1,
            js_check=0.0,
            actions={"login": 0.9, "login_form": 0.07, "home": 0.03},
            not_found=0.0,
            login_refused=0.15,
            login_success=0.02,
            referrer=0.5,
            head_share=0.0,
            walks_catalogue=False,
            # Stuffing tools mostly send their HTTP library's handshake; some impersonate.
            tls_contradicts=0.6,
        ),
        Profile(
            kind="crawler",
            is_bot=True,
            share=0.2,
            mean_gap_s=2.0,
            gap_cv=0.4,
            session_requests=150,
            datacenter_share=1.0,
            ips=(1, 6),
            ip_rotation=0.2,
            ua_source="crawler",
            user_agents=(1, 1),
            ua_rotation=0.0,
            js_check=0.0,
            actions={
                "robots": 0.03,
                "sitemap": 0.03,
                "home": 0.04,
                "page": 0.4,
                "product": 0.5,
            },
            not_found=0.05,
            login_refused=0.5,
            login_success=0.0,
            referrer=0.0,
            head_share=0.15,
            walks_catalogue=True,
        ),
        Profile(
            kind="spoofer",
            is_bot=True,
            share=0.2,
            mean_gap_s=0.5,
            gap_cv=0.6,
            session_requests=300,
            datacenter_share=1.0,
            ips=(50, 300),
            ip_rotation=0.9,
            ua_source="browser",
            user_agents=(10, 40),
            ua_rotation=0.5,
            js_check=0.03,
            actions={"product": 0.6, "api": 0.25, "search": 0.1, "page": 0.05},
            not_found=0.04,
            login_refused=0.5,
            login_success=0.0,
            referrer=0.3,
            head_share=0.0,
            walks_catalogue=True,
            tls_contradicts=0.8,
        ),
        Profile(
            kind="stealth",
            is_bot=True,
            share=0.2,
            # Paced like a reader, from a home address, with a real browser's user agent;
            # what gives it away is that it never runs JavaScript or loads assets.
            mean_gap_s=9.0,
            gap_cv=1.0,
            session_requests=60,
            datacenter_share=0.0,
            ips=(1, 2),
            ip_rotation=0.02,
            ua_source="browser",
            user_agents=(1, 1),
            ua_rotation=0.0,
            js_check=0.0,
            actions={"home": 0.05, "page": 0.25, "product": 0.55, "search": 0.15},
            not_found=0.01,
            login_refused=0.1,
            login_success=0.0,
            referrer=0.7,
            head_share=0.0,
            walks_catalogue=False,
            # Four in ten impersonate a browser's handshake as well as its user agent.
            tls_contradicts=0.6,
        ),
        Profile(
            kind="power_user",
            is_bot=False,
            share=0.05,
            # A heavy user of the site's API from a phone and a laptop: fast bursts, long
            # sessions, addresses changing between Wi-Fi and mobile networks.
            mean_gap_s=3.0,
            gap_cv=2.0,
            session_requests=150,
            datacenter_share=0.1,
            ips=(2, 6),
            ip_rotation=0.1,
            ua_source="browser",
            user_agents=(1, 2),
            ua_rotation=0.02,
            js_check=0.95,
            actions={
                "home": 0.04,
                "page": 0.1,
                "product": 0.15,
                "search": 0.15,
                "asset": 0.15,
                "api": 0.36,
                "login_form": 0.025,
                "login": 0.025,
            },
            not_found=0.02,
            login_refused=0.1,
            login_success=0.9,
            referrer=0.9,
            head_share=0.0,
            walks_catalogue=False,
            tls_contradicts=0.01,
        ),
        Profile(
            kind="corporate_proxy",
            is_bot=False,
            share=0.05,
            # Employees behind a cloud web gateway: a few dozen data-centre egress addresses
            # shared by all of them, balanced per connection; the gateway caches assets.
            mean_gap_s=8.0,
            gap_cv=1.6,
            session_requests=25,
            datacenter_share=0.9,
            ips=(2, 6),
            ip_rotation=0.25,
            ua_source="browser",
            user_agents=(1, 1),
            ua_rotation=0.0,
            js_check=0.93,
            actions={
                "home": 0.1,
                "page": 0.3,
                "product": 0.3,
                "search": 0.12,
                "asset": 0.08,
                "api": 0.06,
                "login_form": 0.02,
                "login": 0.02,
            },
            not_found=0.01,
            login_refused=0.1,
            login_success=0.85,
            referrer=0.85,
            head_share=0.0,
            walks_catalogue=False,
            shared_ips=24,
            # Many gateways inspect TLS: the edge sees the gateway's handshake.
            tls_contradicts=0.6,
        ),
        Profile(
            kind="residential_scraper",
            is_bot=True,
            share=0.2,
            # Low and slow through a residential proxy network: a new home address for most
            # requests, rotating browser user agents, a reader's think times; still an HTTP
            # client, so no JavaScript and hardly any assets.
            mean_gap_s=7.0,
            gap_cv=1.4,
            session_requests=40,
            datacenter_share=0.0,
            ips=(30, 150),
            ip_rotation=0.7,
            ua_source="browser",
            user_agents=(3, 12),
            ua_rotation=0.2,
            js_check=0.0,
            actions={"home": 0.05, "page": 0.1, "product": 0.65, "search": 0.17, "asset": 0.03},
            not_found=0.02,
            login_refused=0.1,
            login_success=0.0,
            referrer=0.75,
            head_share=0.0,
            walks_catalogue=True,
            tls_contradicts=0.6,
        ),
        Profile(
            kind="headless_browser",
            is_bot=True,
            share=0.2,
            # A headless browser with a stock user agent: it runs JavaScript, loads assets
            # and keeps its session cookie, from cloud machines half of the time; faster and
            # steadier than a reader, and it walks the catalogue.
            mean_gap_s=2.5,
            gap_cv=0.7,
            session_requests=200,
            datacenter_share=0.5,
            ips=(1, 3),
            ip_rotation=0.02,
            ua_source="browser",
            user_agents=(1, 1),
            ua_rotation=0.0,
            js_check=0.95,
            actions={
                "home": 0.03,
                "page": 0.1,
                "product": 0.45,
                "search": 0.07,
                "asset": 0.3,
                "api": 0.05,
            },
            not_found=0.03,
            login_refused=0.1,
            login_success=0.0,
            referrer=0.95,
            head_share=0.0,
            walks_catalogue=True,
        ),
    )
}

# Kind names in ``PROFILES`` order, by mix.
MIXES: Mapping[str, tuple[str, ...]] = {
    "classic": ("human", "scraper", "credential_stuffer", "crawler", "spoofer", "stealth"),
    "wide": tuple(PROFILES),
}
DEFAULT_MIX = "classic"


def profiles_in(mix: str) -> dict[str, Profile]:
    """The profiles of ``mix``'s kinds (``SimulationSpec`` checks the name first)."""
    return {kind: PROFILES[kind] for kind in MIXES[mix]}
