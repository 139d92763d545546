"""Who visits the simulated site: a seeded population of users drawn from the profiles.

Each user gets a kind, a few addresses, a few user agents and a personal tempo. User
agents are real strings shipped inside two PyPI packages (``fake-useragent`` for browsers,
``crawler-user-agents`` for declared crawlers and HTTP libraries), read from their
bundled files, never from the network. Addresses come from documentation, benchmark,
shared and private ranges, so a simulated log can never point at a real network.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache

from botscore.errors import SimulationSpecError
from botscore.simulator.profiles import DEFAULT_MIX, Profile, profiles_in
from botscore.simulator.spec import SimulationSpec, check_bot_share, check_seed, check_users
from botscore.v1.web_log_pb2 import (
    TLS_FINGERPRINT_CONTRADICTS_USER_AGENT,
    TLS_FINGERPRINT_MATCHES_USER_AGENT,
    TlsFingerprint,
)

__all__ = [
    "DATACENTER_NETWORKS",
    "RESIDENTIAL_NETWORKS",
    "AgentPools",
    "Endpoint",
    "Population",
    "User",
    "build_population",
    "is_datacenter",
    "load_agent_pools",
    "population_for",
]

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
    # The edge's verdict on this user's TLS handshake (``WebLog.tls_fingerprint``).
    tls_fingerprint: TlsFingerprint = TLS_FINGERPRINT_MATCHES_USER_AGENT


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
    profiles: Mapping[str, Profile] | None = None,
) -> Population:
    """``users`` visitors, ``bot_share`` of them bots, each side split by ``share``.

    ``profiles`` defaults to the default mix's. Kinds are counted out, not drawn, so every
    kind is present once there are at least as many users on its side as kinds. User ids
    are random cookies: they never encode the kind.
    """
    check_users(users)
    check_bot_share(bot_share)
    check_seed(seed)
    agents = agents or load_agent_pools()
    profiles = profiles_in(DEFAULT_MIX) if profiles is None else profiles
    rng = random.Random(f"population-{seed}")
    kinds = _kind_list(users, bot_share, profiles)
    rng.shuffle(kinds)
    # Drawn apart from ``rng``, so a mix without shared addresses draws what it always did.
    shared = {p.kind: _shared_pool(seed, p) for p in profiles.values() if p.shared_ips > 0}
    # Handshakes too, so every other draw stays what it was before they were simulated.
    tls_rng = random.Random(f"tls-{seed}")
    seen: set[str] = set()
    population = []
    for kind in kinds:
        user_id = _new_id(rng, seen)
        user = _user(rng, user_id, profiles[kind], agents, shared.get(kind))
        if tls_rng.random() < profiles[kind].tls_contradicts:
            user = replace(user, tls_fingerprint=TLS_FINGERPRINT_CONTRADICTS_USER_AGENT)
        population.append(user)
    return Population(tuple(population), profiles)


def population_for(spec: SimulationSpec, agents: AgentPools | None = None) -> Population:
    """The population ``spec`` describes: its ``users``, ``bot_share``, ``seed`` and ``mix``."""
    return build_population(spec.users, spec.bot_share, spec.seed, agents, profiles_in(spec.mix))


def _kind_list(users: int, bot_share: float, profiles: Mapping[str, Profile]) -> list[str]:
    bot_kinds = [p for p in profiles.values() if p.is_bot]
    human_kinds = [p for p in profiles.values() if not p.is_bot]
    bots = round(users * bot_share) if bot_kinds else 0
    if bots < users and not human_kinds:
        raise SimulationSpecError(
            f"bot_share {bot_share:g} leaves {users - bots} humans, but the profiles define "
            f"no human kind"
        )
    return _counted_out(bots, bot_kinds) + _counted_out(users - bots, human_kinds)


def _counted_out(total: int, kinds: list[Profile]) -> list[str]:
    """``total`` users over ``kinds`` by their ``share``: one each first when there are enough."""
    counts = dict.fromkeys((p.kind for p in kinds), 0)
    if total >= len(kinds):
        counts = dict.fromkeys(counts, 1)
    rest = total - sum(counts.values())
    total_share = sum(p.share for p in kinds) or 1.0
    exact = {p.kind: rest * p.share / total_share for p in kinds}
    for kind, value in exact.items():
        counts[kind] += int(value)
    # Largest remainder: hand out what rounding down left over.
    short = total - sum(counts.values())
    by_remainder = sorted(exact, key=lambda k: (-(exact[k] % 1), k))
    for kind in by_remainder[:short]:
        counts[kind] += 1
    return [kind for kind, n in counts.items() for _ in range(n)]


def _new_id(rng: random.Random, seen: set[str]) -> str:
    while True:
        user_id = f"c-{rng.getrandbits(64):016x}"
        if user_id not in seen:
            seen.add(user_id)
            return user_id


def _shared_pool(seed: int, profile: Profile) -> tuple[Endpoint, ...]:
    rng = random.Random(f"shared-{profile.kind}-{seed}")
    return tuple(
        _endpoint(rng, rng.random() < profile.datacenter_share) for _ in range(profile.shared_ips)
    )


def _user(
    rng: random.Random,
    user_id: str,
    profile: Profile,
    agents: AgentPools,
    shared: tuple[Endpoint, ...] | None,
) -> User:
    n_ips = rng.randint(*profile.ips)
    if shared is not None:
        endpoints = tuple(rng.sample(shared, min(n_ips, len(shared))))
    else:
        endpoints = tuple(
            _endpoint(rng, rng.random() < profile.datacenter_share) for _ in range(n_ips)
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
