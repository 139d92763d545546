"""Every failure metric a dashboard queries is proven on the wire by a named fault test."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.integration.wire_proofs import (
    FAILURE_PROOFS,
    RATE_CEILING_METRICS,
    RELEASE_METRICS,
    failure_metrics,
    healthy_metrics,
    queried_metrics,
)

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"


def _checks_in_tests() -> dict[str, set[str]]:
    """Test function -> the proof names its body passes to ``assert_failure_metrics_sent``."""
    found: dict[str, set[str]] = {}
    for path in INTEGRATION.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                for call in ast.walk(node):
                    if (
                        isinstance(call, ast.Call)
                        and isinstance(call.func, ast.Name)
                        and call.func.id == "assert_failure_metrics_sent"
                        and call.args
                        and isinstance(call.args[0], ast.Constant)
                    ):
                        found.setdefault(node.name, set()).add(str(call.args[0].value))
    return found


def test_the_fault_tests_cover_every_failure_metric_the_dashboards_query() -> None:
    proven = set().union(*FAILURE_PROOFS.values())
    assert failure_metrics(), "no dashboard queries a failure metric: the check means nothing"
    assert failure_metrics() - proven == set(), "failure metrics no fault test sends"
    assert proven - failure_metrics() == set(), "proofs of metrics no dashboard queries"


def test_each_named_fault_test_checks_its_own_metrics() -> None:
    checks = _checks_in_tests()
    for test_name in FAILURE_PROOFS:
        assert checks.get(test_name) == {test_name}, f"{test_name} does not check its metrics"


def test_healthy_and_failure_metrics_do_not_overlap() -> None:
    assert healthy_metrics() and not healthy_metrics() & failure_metrics()


def test_the_release_metrics_are_queried_healthy_ones_the_loop_is_not_asked_for() -> None:
    assert set(queried_metrics()) >= RELEASE_METRICS
    assert not RELEASE_METRICS & (healthy_metrics() | failure_metrics())


def test_the_rate_ceiling_metric_is_queried_and_the_loop_is_not_asked_for_it() -> None:
    assert set(queried_metrics()) >= RATE_CEILING_METRICS
    assert not RATE_CEILING_METRICS & (healthy_metrics() | failure_metrics() | RELEASE_METRICS)
