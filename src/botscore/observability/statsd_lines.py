"""DogStatsD datagrams as values: what `botscore top` shows and what the tests read.

A datagram carries one ``name:value|type[|@rate][|#tag,...]`` line per metric (the client
buffers several per datagram). A line that does not parse is skipped and counted by the
caller, never fatal: anyone can send to a UDP port.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Sample", "parse_datagram", "parse_line"]

KINDS = frozenset({"c", "g", "h", "d", "ms", "s"})


@dataclass(frozen=True)
class Sample:
    name: str
    value: float
    kind: str  # c count, g gauge, h histogram, d distribution, ms timer, s set
    tags: frozenset[str]
    rate: float = 1.0

    def tag(self, key: str) -> str | None:
        """The value of tag ``key`` (``key:value``), if it was sent."""
        return next((t.split(":", 1)[1] for t in self.tags if t.startswith(f"{key}:")), None)

    @property
    def count(self) -> float:
        """What a sampled count stands for: the value over its sample rate."""
        return self.value / self.rate if self.rate > 0 else self.value


# The largest magnitude a metric line may carry: every integer up to it is exact in a float.
MAX_VALUE = float(2**53)


def parse_line(line: str) -> Sample | None:
    """One metric line, or None when it is not one."""
    name, sep, rest = line.partition(":")
    if not sep or not name:
        return None
    fields = rest.split("|")
    if len(fields) < 2 or fields[1] not in KINDS:
        return None
    try:
        value = float(fields[0])
        rate = next((float(f[1:]) for f in fields[2:] if f.startswith("@")), 1.0)
    except ValueError:
        return None
    # NaN, infinities and values past any count would poison the sums and the charts.
    if not (abs(value) <= MAX_VALUE and 0 < rate <= 1):
        return None
    tags = frozenset(
        tag for f in fields[2:] if f.startswith("#") for tag in f[1:].split(",") if tag
    )
    return Sample(name, value, fields[1], tags, rate)


def parse_datagram(data: bytes) -> tuple[list[Sample], int]:
    """The metrics of one datagram, and how many of its lines did not parse."""
    samples: list[Sample] = []
    bad = 0
    for line in data.decode(errors="replace").splitlines():
        if not line:
            continue
        sample = parse_line(line)
        if sample is None:
            bad += 1
        else:
            samples.append(sample)
    return samples, bad
