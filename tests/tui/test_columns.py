"""Columns of cleaned text line up: padding is added after cleaning, which trims the ends."""

from __future__ import annotations

from helpdesk_tui.desk.records import CustomerRecord
from helpdesk_tui.tui.screens.dashboard import _bars
from helpdesk_tui.tui.screens.register import customer_prompt


def test_dashboard_counts_line_up_whatever_the_label_length() -> None:
    rows = (("open", 41), ("internal", 22), ("a very long status name", 3), ("x\x1b[2J", 7))
    lines = _bars(rows).plain.splitlines()
    # Each count ends in the same column, long names cut with an ellipsis, escapes cleaned.
    ends = {ln.index(str(n)) + len(str(n)) for ln, (_l, n) in zip(lines, rows, strict=True)}
    assert len(ends) == 1, lines
    assert lines[2].startswith("a very long s…")
    assert "\x1b" not in "".join(lines)


def test_customer_suggestion_keeps_a_gap_before_the_company() -> None:
    c = CustomerRecord(1, "Solveig Lien", ("solveig@brightwater.example",), "Brightwater Ltd")
    assert customer_prompt(c).plain == "Solveig Lien  solveig@brightwater.example  Brightwater Ltd"
    alone = CustomerRecord(2, "", ("x@example.com",), None)
    assert customer_prompt(alone).plain == "(no name)  x@example.com"
