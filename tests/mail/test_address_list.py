"""Address lists as agents type them into To and Cc: separators, names, and what is refused."""

from __future__ import annotations

import pytest

from helpdesk_tui.mail.compose import parse_address_list


@pytest.mark.parametrize(
    ("typed", "addresses"),
    [
        ("a@x.example", ["a@x.example"]),
        ("a@x.example, b@y.example", ["a@x.example", "b@y.example"]),
        ("a@x.example;b@y.example;", ["a@x.example", "b@y.example"]),
        ("Ines Firma <ines@firma.example>", ["ines@firma.example"]),
        ('"Doe, John" <j@x.example>, <k@y.example>', ["j@x.example", "k@y.example"]),
        ('"Semi; Colon" <s@x.example>; Ann <a@x.example>', ["s@x.example", "a@x.example"]),
        ("A@X.example, a@x.example", ["A@X.example"]),  # the same mailbox once
        (" , ;  ", []),
    ],
)
def test_entries_are_split_as_mail_clients_do(typed: str, addresses: list[str]) -> None:
    good, bad = parse_address_list(typed)
    assert [a for _name, a in good] == addresses
    assert bad == []


def test_names_are_kept_with_their_address() -> None:
    good, _bad = parse_address_list('Ines Firma <ines@firma.example>, "Doe, John" <j@x.example>')
    assert good == [("Ines Firma", "ines@firma.example"), ("Doe, John", "j@x.example")]


@pytest.mark.parametrize(
    ("typed", "refused"),
    [
        ("ines", ["ines"]),
        ("a@x.example b@y.example", ["a@x.example b@y.example"]),  # spaces do not separate
        ("ok@x.example, Name <broken>", ["Name <broken>"]),
        ("Ann <a@x.example> trailing", ["Ann <a@x.example> trailing"]),
        ("a@b@c.example", ["a@b@c.example"]),
    ],
)
def test_what_is_no_address_is_named(typed: str, refused: list[str]) -> None:
    _good, bad = parse_address_list(typed)
    assert bad == refused
