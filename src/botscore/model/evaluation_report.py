"""An evaluation written next to the model: ``evaluation.json`` for tools, ``evaluation.md``
for people, and the figures (``evaluation_plots``).

Nothing written depends on the time or the machine, so the same evaluation writes the
same bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from botscore.model.evaluation import Evaluation
from botscore.model.evaluation_plots import HISTOGRAMS, PR, ROC, write_plots
from botscore.model.registry import Thresholds
from botscore.simulator.visits import BLOCK_DEADLINES_S, VisitSummary

__all__ = [
    "JSON_NAME",
    "MARKDOWN_NAME",
    "evaluation_dict",
    "evaluation_markdown",
    "write_evaluation",
]

JSON_NAME = "evaluation.json"
MARKDOWN_NAME = "evaluation.md"


def write_evaluation(evaluation: Evaluation, out_dir: str | Path) -> list[Path]:
    """Write the summary, the figures and the JSON into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / JSON_NAME, out / MARKDOWN_NAME]
    written[0].write_text(json.dumps(evaluation_dict(evaluation), indent=2) + "\n")
    written[1].write_text(evaluation_markdown(evaluation))
    return written + write_plots(evaluation, out)


def evaluation_dict(evaluation: Evaluation) -> dict[str, Any]:
    manifest, training = evaluation.manifest, evaluation.training
    return {
        "model": {"name": manifest.name, "version": manifest.version, "sha256": manifest.sha256},
        "thresholds": manifest.thresholds.to_dict(),
        "human_rate": evaluation.human_rate,
        "training": {
            "users": training.users,
            "bot_share": training.bot_share,
            "rate": training.rate,
            "duration_s": training.duration_s,
            "seed": training.seed,
            "mix": training.mix,
            "publish_interval_ms": evaluation.publish_interval_ms,
        },
        "held_out": {"mix": evaluation.mix, "seeds": list(evaluation.seeds)},
        "overall": asdict(evaluation.overall),
        "kinds": [asdict(k) for k in evaluation.kinds],
        "left_out": [
            {"kind": left.kind, "training_rows": left.training_rows, **asdict(left.detection)}
            for left in evaluation.left_out
        ],
        "visitors": {
            "latency_s": evaluation.visitors.latency_s,
            "challenge_ttl_s": evaluation.visitors.enforcement.challenge_ttl_s,
            "block_ttl_s": evaluation.visitors.enforcement.block_ttl_s,
            "rate_ceiling": asdict(evaluation.visitors.rate_ceiling),
            "overall": asdict(evaluation.visitors.overall),
            "kinds": {kind: asdict(figures) for kind, figures in evaluation.visitors.kinds},
        },
    }


def _early_blocks(thresholds: Thresholds) -> str:
    return "".join(
        f" ({e.block:g} for rows with at most {e.max_requests_1h} requests in the last hour)"
        for e in thresholds.early_block
    )


def _pct(value: float) -> str:
    return f"{value:.2%}"


def _auc(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def evaluation_markdown(evaluation: Evaluation) -> str:
    manifest, training, overall = evaluation.manifest, evaluation.training, evaluation.overall
    rate = f"{evaluation.human_rate:.1%}"
    seeds = ", ".join(str(s) for s in evaluation.seeds)
    trained_on = f"{training.mix} mix, seed {training.seed}"
    lines = [
        f"# Evaluation of {manifest.name} {manifest.version}",
        "",
        f"Trained on {training.users} users ({training.bot_share:.0%} bots), "
        f"{training.rate:g} requests/s for {training.duration_s:g} s ({trained_on}). "
        f"Held out: the same traffic from seeds {seeds}, {evaluation.mix} mix: "
        f"{overall.bot_rows} bot and {overall.human_rows} human rows, one per publication "
        "of a user's features, each scored on its own.",
        "",
        f"Thresholds: challenge at {manifest.thresholds.challenge:g}, block at "
        f"{manifest.thresholds.block:g}{_early_blocks(manifest.thresholds)}; "
        f'"at {rate} humans" is the lowest threshold that '
        f"challenges at most {rate} of the human rows "
        f"({overall.human_rate_threshold:.6f} here). Bot figures are recalls (share of the "
        "rows at or above the threshold), human figures false-positive rates.",
        "",
        "## Overall",
        "",
        f"| ROC AUC | PR AUC | bots challenged | bots blocked | bots at {rate} humans "
        "| humans challenged | humans blocked |",
        "|---|---|---|---|---|---|---|",
        f"| {overall.roc_auc:.4f} | {overall.pr_auc:.4f} | {_pct(overall.bots_challenged)} "
        f"| {_pct(overall.bots_blocked)} | {_pct(overall.bots_at_human_rate)} "
        f"| {_pct(overall.humans_challenged)} | {_pct(overall.humans_blocked)} |",
        "",
        "## Per kind",
        "",
        "Bot kinds against every human row; * marks kinds the model was not trained on.",
        "",
        f"| kind | rows | ROC AUC | PR AUC | challenged | blocked | at {rate} humans |",
        "|---|---|---|---|---|---|---|",
    ]
    unseen = {left.kind for left in evaluation.left_out if left.training_rows is None}
    for k in evaluation.kinds:
        name = f"{k.kind}{' *' if k.kind in unseen else ''} ({'bot' if k.is_bot else 'human'})"
        lines.append(
            f"| {name} | {k.rows} | {_auc(k.roc_auc)} | {_auc(k.pr_auc)} "
            f"| {_pct(k.challenged)} | {_pct(k.blocked)} | {_pct(k.at_human_rate)} |"
        )
    lines += [
        "",
        "## Each bot kind left out of training",
        "",
        "A model fitted on the same training rows without the kind's, scoring that kind "
        "against every human row (* the model itself: it never saw the kind).",
        "",
        f"| kind | fitted on rows | ROC AUC | PR AUC | challenged | blocked | at {rate} humans "
        "| humans challenged | humans blocked |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for left in evaluation.left_out:
        d = left.detection
        fitted = "*" if left.training_rows is None else str(left.training_rows)
        lines.append(
            f"| {left.kind} | {fitted} | {d.roc_auc:.4f} | {d.pr_auc:.4f} "
            f"| {_pct(d.bots_challenged)} | {_pct(d.bots_blocked)} "
            f"| {_pct(d.bots_at_human_rate)} | {_pct(d.humans_challenged)} "
            f"| {_pct(d.humans_blocked)} |"
        )
    lines += ["", *_visitor_lines(evaluation)]
    lines += [
        "",
        "## Figures",
        "",
        f"![ROC curves]({ROC})",
        f"![precision-recall curves]({PR})",
        f"![scores per kind]({HISTOGRAMS})",
        "",
        "Limits: every row is simulated, so these figures say how well the model separates "
        "the simulator's kinds, not real visitors. The per-visitor figures also depend on "
        "the decision latency assumed and on the traffic's mix and pace.",
        "",
    ]
    return "\n".join(lines)


def _visitor_lines(evaluation: Evaluation) -> list[str]:
    visitors = evaluation.visitors
    lines = [
        "## Per visitor",
        "",
        "Every held-out request gets the decision the edge would hold for its user at that "
        f"moment: the newest score whose features are {visitors.latency_s:g} s old or more "
        "(publication, scoring and the merge) decides, and a challenge or block lasts "
        f"{visitors.enforcement.challenge_ttl_s} or {visitors.enforcement.block_ttl_s} s "
        "from its features' time. A human is counted once if ever challenged or blocked; "
        "a bot's time runs from its first request to its first blocked one. A bot's first "
        "request is never blocked, so only the bots with a second request in their first "
        '10 s could be blocked within 10 s ("could be").',
        "",
        visitors.rate_ceiling.text(),
        "",
        "| visitors | humans | ever challenged | ever blocked | requests affected "
        f"| bots | blocked | within {_deadlines()} s | could be | to block p50 / p90 / max |",
        "|---|---|---|---|---|---|---|---|---|---|",
        _visitor_row("all", visitors.overall),
    ]
    lines += [_visitor_row(kind, figures) for kind, figures in visitors.kinds]
    return lines


def _deadlines() -> str:
    return " / ".join(f"{d:g}" for d in BLOCK_DEADLINES_S)


def _visitor_row(name: str, v: VisitSummary) -> str:
    humans = (
        f"{v.humans} | {_pct(v.humans_challenged)} | {_pct(v.humans_blocked)} "
        f"| {_pct(v.human_requests_affected)}"
        if v.humans
        else "- | - | - | -"
    )
    timing = (
        "-" if v.time_to_block_s is None else " / ".join(f"{t:.0f} s" for t in v.time_to_block_s)
    )
    bots = (
        f"{v.bots} | {_pct(v.bots_blocked)} "
        f"| {' / '.join(_pct(share) for _, share in v.bots_blocked_within)} "
        f"| {_pct(v.bots_blockable_within_10s)} | {timing}"
        if v.bots
        else "- | - | - | - | -"
    )
    return f"| {name} | {humans} | {bots} |"
