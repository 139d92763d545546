"""The project's closed sets of names, and the README's list of them."""

from __future__ import annotations

import re

from botscore.vocabulary import DeadLetterReason

START = "<!-- dead-letter-reasons:start -->"
END = "<!-- dead-letter-reasons:end -->"


def test_readme_lists_every_dead_letter_reason_in_order(project_root):
    text = (project_root / "README.md").read_text(encoding="utf-8")
    assert text.count(START) == 1 and text.count(END) == 1, "dead-letter-reasons markers missing"
    region = text.split(START, 1)[1].split(END, 1)[0]
    listed = re.findall(r"`([^`]+)`", region)
    assert listed == [reason.value for reason in DeadLetterReason], (
        "README.md's dead-letter reasons differ from botscore.vocabulary.DeadLetterReason: "
        + ", ".join(f"`{reason}`" for reason in DeadLetterReason)
    )
