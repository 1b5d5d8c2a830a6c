"""`helpdesk [--db X] [--config Y]` is parsed without the full parser, to the same result."""

from __future__ import annotations

import pytest

from helpdesk_tui import cli


@pytest.mark.parametrize(
    "argv",
    [[], ["--db", "x.sqlite3"], ["--db=x", "--config", "c.toml"], ["--config=c", "--db", "a"]],
)
def test_the_app_options_parse_as_the_full_parser_does(argv: list[str]) -> None:
    fast = cli._app_only(argv)
    assert fast is not None
    assert vars(fast) == vars(cli.build_parser().parse_args(argv))


@pytest.mark.parametrize(
    "argv", [["--config"], ["--db", "-x"], ["--d", "x"], ["ticket", "list"], ["--help"]]
)
def test_anything_else_takes_the_full_parser(argv: list[str]) -> None:
    assert cli._app_only(argv) is None
