"""Who visits the simulated site, and how each kind of visitor behaves.

Behaviour is data (``PROFILES``), so a new kind of bot is a new entry rather than new code.
User agents are real strings shipped inside two PyPI packages (``fake-useragent`` for
browsers, ``crawler-user-agents`` for declared crawlers and HTTP libraries), read from
their bundled files, never from the network. Addresses come from documentation, benchmark,
shared and private ranges, so a simulated log can never point at a real network.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Literal

from botscore.errors import SimulationSpecError
from botscore.simulator.spec import SimulationSpec, check_bot_share, check_seed, check_users

__all__ = [
    "DATACENTER_NETWORKS",
    "HUMAN",
    "PROFILES",
    "RESIDENTIAL_NETWORKS",
    "AgentPools",
    "Endpoint",
    "Population",
    "Profile",
    "UaSource",
    "User",
    "build_population",
    "is_datacenter",
    "load_agent_pools",
    "population_for",
]

HUMAN = "human"

# Where a profile's user agents come from: see ``Profile.ua_source``.
UaSource = Literal["browser", "crawler", "library"]


@dataclass(frozen=True)
class Profile:
    """How one kind of visitor behaves; every number is a distribution parameter."""

    kind: str
    is_bot: bool
    # Share of the bot population (0 for humans, who are the rest).
    share_of_bots: float
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
    # Action -> weight; ``traffic.ACTIONS`` turns an action into method, path and status.
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


PROFILES: Mapping[str, Profile] = {
    p.kind: p
    for p in (
        Profile(
            kind=HUMAN,
            is_bot=False,
            share_of_bots=0.0,
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
        ),
        Profile(
            kind="scraper",
            is_bot=True,
            share_of_bots=0.25,
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
            share_of_bots=0.15,
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
        ),
        Profile(
            kind="crawler",
            is_bot=True,
            share_of_bots=0.2,
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
            share_of_bots=0.2,
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
        ),
        Profile(
            kind="stealth",
            is_bot=True,
            share_of_bots=0.2,
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
        ),
    )
}

# (name, network, weight). Documentation (RFC 5737/3849), benchmarking (RFC 2544),
# shared (RFC 6598) and private (RFC 1918) space: realistic shapes, never real hosts.
DATACENTER_NETWORKS: tuple[tuple[str, str, float], ...] = (
    ("cloud-a", "198.18.0.0/15", 0.5),
    ("cloud-b", "172.16.0.0/12", 0.3),
    ("hosting-c", "203.0.113.0/24", 0.1),
    ("cloud-a-v6", "2001:db8::/33", 0.1),
)
RESIDENTIAL_NETWORKS: tuple[tuple[str, str, float], ...] = (
    ("mobile-cgnat", "100.64.0.0/10", 0.4),
    ("isp-b", "10.0.0.0/8", 0.35),
    ("isp-c", "198.51.100.0/24", 0.05),
    ("isp-v6", "2001:db8:8000::/33", 0.2),
)
EDGE_NODES: tuple[str, ...] = ("edge-fra-1", "edge-iad-1", "edge-sin-1", "edge-gru-1")

_DC_NETS = tuple(ipaddress.ip_network(cidr) for _, cidr, _ in DATACENTER_NETWORKS)


def is_datacenter(ip: str) -> bool:
    """The edge's IP-intelligence verdict for a simulated address."""
    address = ipaddress.ip_address(ip)
    return any(address in net for net in _DC_NETS)


@dataclass(frozen=True)
class Endpoint:
    """One address a user sends from, and the edge node that address reaches."""

    ip: str
    is_datacenter: bool
    edge_node: str


@dataclass(frozen=True)
class User:
    user_id: str
    kind: str
    endpoints: tuple[Endpoint, ...]
    user_agents: tuple[str, ...]
    # Personal tempo: this user's mean gap is the kind's times this factor.
    gap_scale: float


@dataclass(frozen=True)
class Population:
    users: tuple[User, ...]
    profiles: Mapping[str, Profile]

    def kind_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(self.profiles, 0)
        for user in self.users:
            counts[user.kind] += 1
        return counts


@dataclass(frozen=True)
class AgentPools:
    """User-agent strings by source, in a fixed order so seeded draws are reproducible."""

    browsers: tuple[str, ...]
    # Usage share of each browser string (fake-useragent's ``percent``).
    browser_weights: tuple[float, ...]
    crawlers: tuple[str, ...]
    libraries: tuple[str, ...]


# Declared crawlers that say who they are; "scanner" is left out as hostile probing.
_CRAWLER_TAGS = frozenset(
    {
        "search-engine",
        "seo",
        "feed-reader",
        "archiver",
        "ai-crawler",
        "social-preview",
        "academic",
        "monitoring",
        "advertising",
    }
)
_LIBRARY_TAGS = frozenset({"http-library", "browser-automation"})


@cache
def load_agent_pools() -> AgentPools:
    """Read both packages' bundled data once (about 3 MB of JSON)."""
    import crawleruseragents
    from fake_useragent import UserAgent

    weights: dict[str, float] = {}
    for entry in UserAgent().data_browsers:
        ua = entry["useragent"]
        weights[ua] = weights.get(ua, 0.0) + max(float(entry["percent"]), 1e-6)
    browsers = tuple(sorted(weights))
    crawlers: set[str] = set()
    libraries: set[str] = set()
    for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA:
        tags = set(entry.get("tags", ()))
        instances = entry.get("instances", ())
        if tags & _LIBRARY_TAGS:
            libraries.update(instances)
        elif tags & _CRAWLER_TAGS:
            crawlers.update(instances)
    return AgentPools(
        browsers=browsers,
        browser_weights=tuple(weights[ua] for ua in browsers),
        crawlers=tuple(sorted(crawlers)),
        libraries=tuple(sorted(libraries)),
    )


def build_population(
    users: int,
    bot_share: float,
    seed: int,
    agents: AgentPools | None = None,
    profiles: Mapping[str, Profile] = PROFILES,
) -> Population:
    """``users`` visitors, ``bot_share`` of them bots split by ``share_of_bots``.

    Kinds are counted out, not drawn, so every bot kind is present once there are at
    least as many bots as kinds. User ids are random cookies: they never encode the kind.
    """
    check_users(users)
    check_bot_share(bot_share)
    check_seed(seed)
    agents = agents or load_agent_pools()
    rng = random.Random(f"population-{seed}")
    kinds = _kind_list(users, bot_share, profiles)
    rng.shuffle(kinds)
    seen: set[str] = set()
    population = []
    for kind in kinds:
        user_id = _new_id(rng, seen)
        population.append(_user(rng, user_id, profiles[kind], agents))
    return Population(tuple(population), profiles)


def population_for(
    spec: SimulationSpec,
    agents: AgentPools | None = None,
    profiles: Mapping[str, Profile] = PROFILES,
) -> Population:
    """The population ``spec`` describes: its ``users``, ``bot_share`` and ``seed``."""
    return build_population(spec.users, spec.bot_share, spec.seed, agents, profiles)


def _kind_list(users: int, bot_share: float, profiles: Mapping[str, Profile]) -> list[str]:
    bot_kinds = [p for p in profiles.values() if p.is_bot]
    human_kinds = [p.kind for p in profiles.values() if not p.is_bot]
    bots = round(users * bot_share) if bot_kinds else 0
    if bots < users and not human_kinds:
        raise SimulationSpecError(
            f"bot_share {bot_share:g} leaves {users - bots} humans, but the profiles define "
            f"no human kind"
        )
    counts = dict.fromkeys((p.kind for p in bot_kinds), 0)
    if bots >= len(bot_kinds):
        counts = dict.fromkeys(counts, 1)
    rest = bots - sum(counts.values())
    total_share = sum(p.share_of_bots for p in bot_kinds) or 1.0
    exact = {p.kind: rest * p.share_of_bots / total_share for p in bot_kinds}
    for kind, value in exact.items():
        counts[kind] += int(value)
    # Largest remainder: hand out what rounding down left over.
    short = bots - sum(counts.values())
    by_remainder = sorted(exact, key=lambda k: (-(exact[k] % 1), k))
    for kind in by_remainder[:short]:
        counts[kind] += 1
    kinds = [kind for kind, n in counts.items() for _ in range(n)]
    if bots < users:
        kinds += [human_kinds[0]] * (users - bots)
    return kinds


def _new_id(rng: random.Random, seen: set[str]) -> str:
    while True:
        user_id = f"c-{rng.getrandbits(64):016x}"
        if user_id not in seen:
            seen.add(user_id)
            return user_id


def _user(rng: random.Random, user_id: str, profile: Profile, agents: AgentPools) -> User:
    endpoints = tuple(
        _endpoint(rng, rng.random() < profile.datacenter_share)
        for _ in range(rng.randint(*profile.ips))
    )
    n_agents = rng.randint(*profile.user_agents)
    if profile.ua_source == "browser":
        user_agents = tuple(rng.choices(agents.browsers, agents.browser_weights, k=n_agents))
    elif profile.ua_source == "crawler":
        user_agents = tuple(rng.choice(agents.crawlers) for _ in range(n_agents))
    elif profile.ua_source == "library":
        user_agents = tuple(rng.choice(agents.libraries) for _ in range(n_agents))
    else:
        raise SimulationSpecError(
            f"profile {profile.kind}: unknown ua_source {profile.ua_source!r} "
            f"(browser, crawler or library)"
        )
    return User(user_id, profile.kind, endpoints, user_agents, rng.lognormvariate(0.0, 0.35))


def _endpoint(rng: random.Random, datacenter: bool) -> Endpoint:
    networks = DATACENTER_NETWORKS if datacenter else RESIDENTIAL_NETWORKS
    _, cidr, _ = rng.choices(networks, [w for _, _, w in networks])[0]
    net = ipaddress.ip_network(cidr)
    address = net.network_address + rng.randrange(1, net.num_addresses - 1)
    return Endpoint(str(address), datacenter, rng.choice(EDGE_NODES))
