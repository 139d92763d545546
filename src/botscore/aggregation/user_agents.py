"""Whether a user agent declares itself a bot: a crawler, an HTTP library, an automation tool.

A request that names itself a bot is the cheapest signal there is, and it is there from a
user's first request, long before rates and ratios say anything. The patterns are those of
the ``crawler-user-agents`` package, the list such checks are commonly made with. Matching
its few hundred patterns costs about 0.1-0.4 ms per string, so answers are cached per string:
a user keeps its user agent, and a whole site sees a few thousand.
"""

from __future__ import annotations

from functools import lru_cache

import crawleruseragents

__all__ = ["declares_bot"]


@lru_cache(maxsize=65_536)
def declares_bot(user_agent: str) -> bool:
    """True when ``user_agent`` matches a known crawler, library or automation pattern."""
    return bool(crawleruseragents.is_crawler(user_agent))
