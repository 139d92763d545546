"""``botscore replay-log``'s report: ``replay-log.md`` for people, ``.json`` for tools."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botscore.model.log_check import (
    DECLARED_BOT,
    FLAGGED_LISTED,
    HIDDEN_FEATURE,
    UNDECLARED,
    LogCheck,
)
from botscore.web_edge.log_files import LogRead

__all__ = ["JSON_NAME", "MARKDOWN_NAME", "log_check_dict", "log_check_markdown", "write_log_check"]

JSON_NAME = "replay-log.json"
MARKDOWN_NAME = "replay-log.md"
# A feature this far from the simulated humans' is named in the summary.
FAR_KS = 0.5


def write_log_check(read: LogRead, check: LogCheck, out_dir: str | Path) -> list[Path]:
    """Write both files into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / MARKDOWN_NAME, out / JSON_NAME]
    written[0].write_text(log_check_markdown(read, check))
    written[1].write_text(json.dumps(log_check_dict(read, check), indent=2) + "\n")
    return written


def log_check_dict(read: LogRead, check: LogCheck) -> dict[str, Any]:
    manifest = check.manifest
    return {
        "model": {"name": manifest.name, "version": manifest.version, "sha256": manifest.sha256},
        "thresholds": manifest.thresholds.to_dict(),
        "lines": {
            "read": read.lines,
            "requests": len(read.logs),
            "blocked": read.blocked,
            "refused": dict(sorted(read.refused.items())),
            "refusals": read.refusals,
        },
        "first_ms": check.first_ms,
        "last_ms": check.last_ms,
        "rows": check.rows,
        "signals": asdict(check.signals),
        "time_shape": None
        if check.time_shape is None
        else asdict(check.time_shape) | {"looks_rewritten": check.time_shape.looks_rewritten},
        "users": check.users,
        "undeclared": _humans(check),
        "declared_bots": asdict(check.visitors)
        | {"scored": check.bots_scored, "with_user_agent_hidden": asdict(check.hidden)},
        "rate_ceiling": asdict(check.rate_ceiling),
        "flagged": [asdict(f) for f in check.flagged],
        "score_quantiles": {k: list(v) for k, v in check.score_quantiles.items()},
        "simulated_seed": check.simulated_seed,
        "drift": [asdict(d) for d in check.drift],
    }


def _humans(check: LogCheck) -> dict[str, Any]:
    v = check.visitors
    return {
        "visitors": v.humans,
        "challenged": v.humans_challenged,
        "blocked": v.humans_blocked,
        "requests_affected": v.human_requests_affected,
    }


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pct(value: float) -> str:
    return f"{value:.2%}"


def _quantiles(values: tuple[float, ...]) -> str:
    return " / ".join(f"{v:.4g}" for v in values)


def log_check_markdown(read: LogRead, check: LogCheck) -> str:
    manifest, visitors, hidden = check.manifest, check.visitors, check.hidden
    refused = ", ".join(f"{reason} {n}" for reason, n in sorted(read.refused.items()))
    signals = check.signals
    lines = [
        f"# {manifest.name} {manifest.version} on a replayed access log",
        "",
        f"{read.lines} lines: {len(read.logs)} requests, {read.blocked} blocked by the edge "
        f"(not counted), {sum(read.refused.values())} refused{f' ({refused})' if refused else ''}. "
        f"From {_time(check.first_ms)} to {_time(check.last_ms)}; "
        f"{check.rows} feature rows published (one per user per publish interval, event time).",
        "",
        f"What the edge added to the requests: a JavaScript token on {_pct(signals.javascript)}, "
        f"a TLS verdict on {_pct(signals.tls_verdict)}, a data-centre address on "
        f"{_pct(signals.datacenter)}.",
        "",
        *_time_markdown(check),
        "Weak labels: a visitor (one address and user agent, or the edge's user id) whose "
        f"user agent declares a bot is a declared bot ({check.users[DECLARED_BOT]}), every "
        f"other one undeclared ({check.users[UNDECLARED]}: mostly humans, and the bots that "
        "hide).",
        "",
        "## Decisions per visitor",
        "",
        "As the edge would hold them: the newest score 3 s after its features' time, "
        "challenges and blocks lasting their TTL.",
        "",
        "| visitors | count | ever challenged | ever blocked | requests affected |",
        "|---|---|---|---|---|",
        f"| undeclared | {visitors.humans} | {_pct(visitors.humans_challenged)} "
        f"| {_pct(visitors.humans_blocked)} | {_pct(visitors.human_requests_affected)} |",
        "",
        "| declared bots | count | blocked | within 10 s |",
        "|---|---|---|---|",
        f"| as logged | {visitors.bots} | {_pct(visitors.bots_blocked)} "
        f"| {_pct(visitors.bots_blocked_within_10s)} |",
        f"| user agent hidden ({HIDDEN_FEATURE} = 0) | {hidden.bots} "
        f"| {_pct(hidden.bots_blocked)} | {_pct(hidden.bots_blocked_within_10s)} |",
        "",
        f"At most {_pct(check.bots_scored)} of the declared bots could be blocked at all: the "
        "others sent no request while a score of theirs was in force (and at most "
        f"{_pct(visitors.bots_blockable_within_10s)} within 10 s: the others sent one "
        "request in their first 10 s).",
        "",
        check.rate_ceiling.text(),
        "",
        "Row scores, p50 / p90 / p99: "
        + "; ".join(f"{k} {_quantiles(v)}" for k, v in check.score_quantiles.items())
        + ".",
        "",
    ]
    lines += _flagged_markdown(check)
    lines += _drift_markdown(check)
    if read.refusals:
        lines += ["## Refused lines", "", *[f"- {r}" for r in read.refusals], ""]
    return "\n".join(lines) + "\n"


def _time_markdown(check: LogCheck) -> list[str]:
    shape = check.time_shape
    if shape is None:
        return []
    text = (
        f"Times: {'whole seconds' if shape.whole_seconds else 'with milliseconds'}; the "
        f"requests fall in {shape.minutes_used} of the 60 minutes of the hour (the busiest "
        f"holds {_pct(shape.busiest_minute_share)})."
    )
    if shape.looks_rewritten:
        text += (
            " **These times look rewritten** (anonymised or sampled): real traffic over "
            "hours fills every minute. The rates, gaps and bursts the features measure are "
            "then not the visitors' own, and neither are the decisions below."
        )
    return [text, ""]


def _flagged_markdown(check: LogCheck) -> list[str]:
    if not check.flagged:
        return []
    lines = [
        "## Undeclared visitors it would challenge or block",
        "",
        f"Most requests first, at most {FLAGGED_LISTED}: a bot that hides, or a human the "
        "model mistakes (what their requests have in common tells which).",
        "",
        "| address | user agent | requests | decision | highest score |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {f.ip} | {_cell(f.user_agent)} | {f.requests} | {f.decision} | {f.highest_score:.6f} |"
        for f in check.flagged
    ]
    return [*lines, ""]


def _cell(text: str, limit: int = 100) -> str:
    """``text`` fit for a table cell: no pipes or line breaks, at most ``limit`` characters."""
    cleaned = " ".join(text.replace("|", "/").split()) or "(none)"
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 3] + "..."


def _drift_markdown(check: LogCheck) -> list[str]:
    if not check.drift:
        return [
            "## Features",
            "",
            "Not compared: the model directory does not say what it was calibrated on "
            "(`botscore train` writes it).",
            "",
        ]
    far = [d.name for d in check.drift if d.ks_distance >= FAR_KS]
    summary = (
        f"Far from the simulated humans (distance {FAR_KS:g} or more): {', '.join(far)}. "
        "The thresholds were chosen where these features look otherwise, so the decisions "
        "above say more about that difference than about the visitors."
        if far
        else "No feature is far from the simulated humans'."
    )
    lines = [
        "## Features",
        "",
        "The undeclared visitors' rows against the simulated humans' of the model's first "
        f"calibration traffic (seed {check.simulated_seed}): the Kolmogorov-Smirnov distance "
        "(0 alike, 1 apart) and p10 / p50 / p90 of each. " + summary,
        "",
        "| feature | distance | this log | simulated humans |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {d.name} | {d.ks_distance:.3f} | {_quantiles(d.log_quantiles)} "
        f"| {_quantiles(d.simulated_quantiles)} |"
        for d in check.drift
    ]
    return [*lines, ""]
