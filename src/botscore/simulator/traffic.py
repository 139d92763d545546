"""Seeded ``WebLog`` events in simulated time, at a chosen mean rate.

Visits are sessions: a user arrives, makes requests at the tempo of its kind, leaves, and
is idle until picked again. New sessions start whenever the summed expected rate of the
open sessions falls below the target, so the total rate is the one asked for while each
user's own rate stays that of its kind (which is what the features measure). A session's
first request comes one gap after it opens, and the sessions open at the start are caught
mid-visit, so the realised rate is the target from the first second on. Everything random
comes from one ``random.Random`` seeded here: a seed always gives the same events.

Every request is drawn before the edge's decision is applied, so blocking a user removes
exactly that user's events and leaves everyone else's unchanged.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from botscore.errors import SimulationSpecError
from botscore.simulator.population import Endpoint, Population, User
from botscore.simulator.profiles import Profile
from botscore.simulator.spec import SimulationSpec, check_duration, check_rate, check_seed
from botscore.simulator.stats import SimulationStats
from botscore.v1.web_log_pb2 import WebLog
from botscore.vocabulary import Decision
from botscore.wire.codec import WEB_LOG_SCHEMA_VERSION

__all__ = [
    "TrafficGenerator",
    "always_allow",
]

SITE = "https://shop.example.com"
EXTERNAL_REFERRERS = ("https://search.example.org/", "https://social.example.net/")
CATALOGUE_SIZE = 50_000
_SECTIONS = ("blog", "help", "category", "deals")
_TERMS = ("shoes", "jacket", "lamp", "gift", "sale", "coffee", "tent", "phone+case")
_ASSETS = ("/static/app.3f9c1e.js", "/static/site.8a21d0.css", "/img/logo.svg", "/favicon.ico")
_PAGE_ACTIONS = frozenset({"home", "page", "product", "search"})

DecisionFor = Callable[[str], Decision]


def always_allow(user_id: str) -> Decision:
    """The default edge: no enforcement loop yet."""
    return Decision.ALLOW


@dataclass
class _Session:
    index: int
    user: User
    profile: Profile
    # Expected requests per second while the session lasts.
    rate: float
    remaining: int
    endpoint: Endpoint
    user_agent: str
    count: int = 0
    last_page: str = ""
    cursor: int = 0


class TrafficGenerator:
    """Iterate to get the events; ``stats`` counts them as they are produced.

    ``from_spec`` takes the rate, duration and seed from a ``SimulationSpec``; the
    constructor takes them one by one, checked the same way.
    """

    def __init__(
        self,
        population: Population,
        rate: float,
        duration_s: float,
        seed: int,
        start_unix_ms: int,
        decision_for: DecisionFor = always_allow,
        pace: Callable[[float], None] | None = None,
    ) -> None:
        """``pace`` is called with each request's simulated second before the edge decides
        on it, blocked requests included: a live run waits there, so the edge is asked at
        send time and not when the generator happens to run ahead."""
        check_rate(rate)
        check_duration(duration_s)
        check_seed(seed)
        self.population = population
        self.duration_s = duration_s
        self.start_unix_ms = start_unix_ms
        self.decision_for = decision_for
        self.pace = pace
        self.rate = rate
        self.stats = SimulationStats(
            sent_by_kind=dict.fromkeys(population.profiles, 0),
            blocked_by_kind=dict.fromkeys(population.profiles, 0),
        )
        self._rng = random.Random(f"traffic-{seed}")
        self._user_rates = [
            1.0 / (population.profiles[u.kind].mean_gap_s * u.gap_scale) for u in population.users
        ]
        capacity = sum(self._user_rates)
        if capacity < rate:
            raise SimulationSpecError(
                f"{rate:g} requests/s needs more than the {len(population.users)} users "
                f"simulated, all active at once ({capacity:.0f}/s): raise users"
            )
        self._actions = {
            kind: (list(p.actions), _cumulative(list(p.actions.values())))
            for kind, p in population.profiles.items()
        }

    @classmethod
    def from_spec(
        cls,
        population: Population,
        spec: SimulationSpec,
        start_unix_ms: int,
        decision_for: DecisionFor = always_allow,
        pace: Callable[[float], None] | None = None,
    ) -> TrafficGenerator:
        """The traffic ``spec`` asks of ``population`` (normally ``population_for(spec)``)."""
        return cls(
            population,
            spec.rate,
            spec.duration_s,
            spec.seed,
            start_unix_ms,
            decision_for=decision_for,
            pace=pace,
        )

    def __iter__(self) -> Iterator[WebLog]:
        rng = self._rng
        idle = list(range(len(self.population.users)))
        open_rate = 0.0
        queue: list[tuple[float, int, _Session]] = []
        seq = 0

        def open_sessions(now: float, ended: int | None, mid_visit: bool = False) -> None:
            # The user who just left goes back last, so it only returns when needed.
            nonlocal open_rate, seq
            while idle or ended is not None:
                if not idle and ended is not None:
                    idle.append(ended)
                    ended = None
                i = rng.randrange(len(idle))
                user_rate, room = self._user_rates[idle[i]], self.rate - open_rate
                # Open a session only if that brings the sum closer to the target rate, so
                # the total lands within half a session's rate of it, on either side.
                if user_rate / 2 > room:
                    break
                idle[i], idle[-1] = idle[-1], idle[i]
                session = self._start(idle.pop())
                open_rate += session.rate
                # Sessions open at the start are caught mid-visit; a later one begins one
                # gap after it opens. Half a gap for every session ran 40% fast at first.
                if mid_visit:
                    first = rng.uniform(0, self._gap(session, spanning=True))
                else:
                    first = self._gap(session)
                heapq.heappush(queue, (now + first, seq, session))
                seq += 1
            if ended is not None:
                idle.append(ended)

        open_sessions(0.0, None, mid_visit=True)
        while queue:
            t, _, session = heapq.heappop(queue)
            if t >= self.duration_s:
                return
            event = self._request(session, t)
            session.count += 1
            session.remaining -= 1
            if session.remaining > 0:
                heapq.heappush(queue, (t + self._gap(session), seq, session))
                seq += 1
            else:
                open_rate -= session.rate
                open_sessions(t, session.index)
            if event is not None:
                yield event

    def _start(self, index: int) -> _Session:
        rng = self._rng
        user = self.population.users[index]
        profile = self.population.profiles[user.kind]
        remaining = 1 + int(rng.expovariate(1.0 / max(profile.session_requests - 1, 1e-9)))
        return _Session(
            index=index,
            user=user,
            profile=profile,
            rate=self._user_rates[index],
            remaining=remaining,
            endpoint=rng.choice(user.endpoints),
            user_agent=rng.choice(user.user_agents),
            cursor=rng.randrange(1, CATALOGUE_SIZE),
        )

    def _gap(self, session: _Session, spanning: bool = False) -> float:
        """A gap between two requests, or with ``spanning`` the gap around a random moment.

        Long gaps are more likely to span a given moment (they are length-biased, which
        for Gamma(k) gaps is Gamma(k + 1)); a uniform point inside one is where a visit
        in progress at that moment is, so its next request comes at the end of that gap.
        """
        profile = session.profile
        shape = 1.0 / (profile.gap_cv * profile.gap_cv)
        mean = profile.mean_gap_s * session.user.gap_scale
        return self._rng.gammavariate(shape + 1 if spanning else shape, mean / shape)

    def _request(self, session: _Session, t: float) -> WebLog | None:
        """Draw one request; ``None`` when the edge blocks it (counted, not emitted)."""
        rng = self._rng
        profile, user = session.profile, session.user
        if len(user.endpoints) > 1 and rng.random() < profile.ip_rotation:
            session.endpoint = rng.choice(user.endpoints)
        if len(user.user_agents) > 1 and rng.random() < profile.ua_rotation:
            session.user_agent = rng.choice(user.user_agents)
        if session.count == 0 and "robots" in profile.actions:
            action = "robots"  # a declared crawler reads the rules first
        else:
            keys, cum = self._actions[user.kind]
            action = rng.choices(keys, cum_weights=cum)[0]
        method, path, status, size = self._action(session, action)
        referrer = ""
        if rng.random() < profile.referrer:
            referrer = SITE + session.last_page if session.last_page else EXTERNAL_REFERRERS[0]
        if action in _PAGE_ACTIONS and status == 200:
            session.last_page = path
        js = session.count > 0 and rng.random() < profile.js_check
        request_id = f"{rng.getrandbits(64):016x}"

        if self.pace is not None:
            self.pace(t)
        decision = self.decision_for(user.user_id)
        if decision not in set(Decision):
            raise ValueError(f"decision_for({user.user_id!r}) returned {decision!r}")
        self.stats.record(t, user.user_id, user.kind, profile.is_bot, decision)
        if decision == Decision.BLOCK:
            self.stats.blocked += 1
            self.stats.blocked_by_kind[user.kind] += 1
            return None
        if decision == Decision.CHALLENGE:
            self.stats.challenged += 1
            if not js:  # no token: the edge answers with its challenge page instead
                status, size = 403, 2_400
        self.stats.sent += 1
        self.stats.sent_by_kind[user.kind] += 1
        return WebLog(
            time_unix_ms=self.start_unix_ms + int(t * 1000),
            user_id=user.user_id,
            ip=session.endpoint.ip,
            ip_is_datacenter=session.endpoint.is_datacenter,
            method=method,
            path=path,
            status=status,
            user_agent=session.user_agent,
            referrer=referrer,
            response_bytes=size,
            js_check_passed=js,
            tls_fingerprint=user.tls_fingerprint,
            request_id=request_id,
            edge_node=session.endpoint.edge_node,
            schema_version=WEB_LOG_SCHEMA_VERSION,
        )

    def _action(self, session: _Session, action: str) -> tuple[str, str, int, int]:
        """Method, path, status and body size of one action on the simulated shop."""
        rng = self._rng
        profile = session.profile
        method = "GET"
        if action == "login":
            if rng.random() < profile.login_success:
                return "POST", "/login", 302, _size(rng, 6.0)
            status = 403 if rng.random() < profile.login_refused else 401
            return "POST", "/login", status, _size(rng, 6.5)
        if action == "login_form":
            return method, "/login", 200, _size(rng, 9.0)
        if action == "robots":
            return method, "/robots.txt", 200, _size(rng, 6.0)
        if action == "sitemap":
            return method, "/sitemap.xml", 200, _size(rng, 11.0)
        if action == "asset":
            if rng.random() < 0.3:
                return method, rng.choice(_ASSETS), 304, 0
            return method, rng.choice(_ASSETS), 200, _size(rng, 10.8)
        if action == "api":
            return method, f"/api/v1/products/{self._product(session)}", 200, _size(rng, 7.5)
        if action == "home":
            path, log_size = "/", 10.5
        elif action == "search":
            path, log_size = f"/search?q={rng.choice(_TERMS)}&page={rng.randint(1, 5)}", 10.2
        elif action == "product":
            path, log_size = f"/products/{self._product(session)}", 10.4
        else:
            path, log_size = f"/{rng.choice(_SECTIONS)}/{rng.randrange(1, 400)}", 10.3
        if profile.head_share and rng.random() < profile.head_share:
            method = "HEAD"
        if action != "home" and rng.random() < profile.not_found:
            return method, path, 404, 0 if method == "HEAD" else _size(rng, 7.0)
        return method, path, 200, 0 if method == "HEAD" else _size(rng, log_size)

    def _product(self, session: _Session) -> int:
        if session.profile.walks_catalogue:
            session.cursor = session.cursor % CATALOGUE_SIZE + 1
            return session.cursor
        # Popularity: a few products get most of the human attention.
        return min(CATALOGUE_SIZE, int(self._rng.paretovariate(1.1) * 20))


def _size(rng: random.Random, log_mean: float) -> int:
    return int(rng.lognormvariate(log_mean, 0.4))


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out
