"""`botscore access --check` never reads as "as planned" when it could check nothing."""

import os

import pytest

from botscore.cli.main import main


def test_a_redis_check_without_any_role_s_password_fails_saying_nothing_was_checked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], project_root
) -> None:
    monkeypatch.chdir(project_root)
    for name in [n for n in os.environ if n.startswith("BOTSCORE_REDIS_PASSWORD")]:
        monkeypatch.delenv(name)
    # Port 1: were Redis asked, the command would fail naming it instead.
    monkeypatch.setenv("BOTSCORE_REDIS_PORT", "1")
    assert main(["access", "--only", "redis", "--check"]) == 1
    assert "redis: no role's password here" in capsys.readouterr().err
