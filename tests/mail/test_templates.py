"""Reply templates: placeholders, errors that name the variable, languages and the file loader."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from helpdesk_tui.mail.compose import OutgoingSpec, build_message, to_bytes
from helpdesk_tui.mail.templates import (
    DEFAULT_ACKNOWLEDGEMENT,
    STANDARD_VARIABLES,
    TemplateError,
    check_template,
    load_template_dir,
    pick_language,
    render,
    template_variables,
)

VARS = {
    "number": "12",
    "title": "Printer on fire",
    "customer_name": "Zoë Customer",
    "customer_email": "zoe@example.org",
    "agent_name": "Alice Able",
    "agent_login": "alice",
    "category": "Hardware",
    "priority": "High",
    "deadline": "2026-11-23 14:00",
    "desk_name": "Example Support",
    "status": "Open",
}


def test_render_replaces_variables() -> None:
    text = "Hello {customer_name},\nticket #{number} ({title}) is {status}."
    assert render(text, VARS) == "Hello Zoë Customer,\nticket #12 (Printer on fire) is Open."


def test_doubled_braces_are_literal() -> None:
    assert (
        render('{{number}} is {number}; json: {{"a": 1}}', VARS) == '{number} is 12; json: {"a": 1}'
    )


def test_dotted_names_are_plain_keys() -> None:
    assert render("{ticket.number}", {"ticket.number": "12"}) == "12"


def test_values_are_not_expanded_again() -> None:
    assert render("{title}", {"title": "{number} {{x}}"}) == "{number} {{x}}"


def test_unknown_variable_is_an_error_naming_it() -> None:
    with pytest.raises(TemplateError) as info:
        render("Dear {customer_nmae},\n", VARS)
    assert info.value.variable == "customer_nmae"
    assert "customer_nmae" in str(info.value)
    assert "line 1" in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "a { b",
        "a } b",
        "{number",
        "{}",
        "{ number }",
        "{number:>5}",
        "{number!r}",
        "{0}",
        "{title[0]}",
        "{a..b}",
    ],
)
def test_malformed_placeholders_are_errors(text: str) -> None:
    with pytest.raises(TemplateError):
        render(text, VARS)
    with pytest.raises(TemplateError):
        template_variables(text)


def test_attribute_access_is_just_an_unknown_name() -> None:
    # str.format would walk into the object here; we only look up the literal key.
    with pytest.raises(TemplateError) as info:
        render("{number.__class__}", VARS)
    assert info.value.variable == "number.__class__"


def test_template_variables() -> None:
    assert template_variables("{a} {{b}} {c.d} {a}") == {"a", "c.d"}
    assert template_variables("no placeholders") == set()


def test_check_template_lists_every_problem() -> None:
    problems = check_template("{number} {nope}\n{nope} {also_not}", STANDARD_VARIABLES)
    assert len(problems) == 2
    assert "'nope'" in problems[0] and "line 1" in problems[0]
    assert "'also_not'" in problems[1] and "line 2" in problems[1]
    assert check_template("{number", STANDARD_VARIABLES)[0].startswith("bad placeholder")
    assert check_template("{number} {title}", STANDARD_VARIABLES) == []


def test_standard_variables_are_documented() -> None:
    assert set(STANDARD_VARIABLES) == set(VARS)
    assert all(STANDARD_VARIABLES.values())


def test_default_acknowledgement() -> None:
    subject, body = DEFAULT_ACKNOWLEDGEMENT
    assert check_template(subject, STANDARD_VARIABLES) == []
    assert check_template(body, STANDARD_VARIABLES) == []
    assert render(subject, VARS) == "[#12] Printer on fire"
    text = render(body, VARS)
    assert "thank you" in text and "#12" in text and "[#12]" in text


def test_acknowledgement_renders_into_a_tagged_automatic_message() -> None:
    subject, body = DEFAULT_ACKNOWLEDGEMENT
    spec = OutgoingSpec(
        from_addr="desk@desk.example",
        to=("zoe@example.org",),
        subject=render(subject, VARS),
        prefix="",
        body=render(body, VARS),
        ticket=12,
        message_id="<hd.12.1.abcdef12.0123456789abcdef0123@desk.example>",
        date=datetime(2026, 11, 23, 10, 0, tzinfo=UTC),
        automatic=True,
    )
    data = to_bytes(build_message(spec))
    assert b"\r\nSubject: [#12] Printer on fire\r\n" in data
    assert b"\r\nAuto-Submitted: auto-replied\r\n" in data


@pytest.mark.parametrize(
    ("available", "wanted", "expected"),
    [
        (["en", "de", "fr"], "de", "de"),
        (["en", "de", "fr"], "DE", "de"),
        (["en", "de", "fr"], "de-CH", "de"),
        (["en", "de_AT"], "de", "de_AT"),
        (["en", "pt-BR", "pt-PT"], "pt-br", "pt-BR"),
        (["en", "de"], "it", "en"),
        (["en", "de"], None, "en"),
        (["en-GB", "de"], None, "en-GB"),
        (["fr", "de"], "it", "de"),
    ],
)
def test_pick_language(available: list[str], wanted: str | None, expected: str) -> None:
    assert pick_language(available, wanted) == expected


def test_pick_language_custom_default_and_empty() -> None:
    assert pick_language(["de", "fr"], "it", default="fr") == "fr"
    with pytest.raises(TemplateError):
        pick_language([], "en")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


def test_load_template_dir(tmp_path: Path) -> None:
    write(
        tmp_path / "replies" / "thanks.en.txt", "Subject: Thanks\n\nThank you, {customer_name}.\n"
    )
    write(
        tmp_path / "replies" / "thanks.de.txt", "Subject: Danke\r\n\r\nDanke, {customer_name}.\r\n"
    )
    write(tmp_path / "ack.pt-BR.txt", "\ufeffSubject:  [#{number}] {title} \n\nOlá\n\n\n")
    write(tmp_path / "README.md", "not a template")
    write(tmp_path / "replies" / ".thanks.en.txt.swp", "junk")
    write(tmp_path / ".hidden" / "x.en.txt", "junk")
    found = load_template_dir(tmp_path)
    assert found == {
        ("replies", "thanks", "en"): ("Thanks", "Thank you, {customer_name}."),
        ("replies", "thanks", "de"): ("Danke", "Danke, {customer_name}."),
        ("", "ack", "pt-br"): ("[#{number}] {title}", "Olá"),
    }


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("thanks.en.txt", "Hello\n\nbody", "first line must be 'Subject: ...'"),
        ("thanks.en.txt", "Subject: x\nbody", "blank line must follow"),
        ("thanks.txt", "Subject: x\n\nbody", "<name>.<language>.txt"),
        ("thanks.e1.txt", "Subject: x\n\nbody", "<name>.<language>.txt"),
        ("thanks.en.txt", "Subject: {x\n\nbody", "subject: bad placeholder"),
        ("thanks.en.txt", "Subject: x\n\nbody }", "body: single '}'"),
    ],
)
def test_load_errors_name_the_file(tmp_path: Path, name: str, text: str, message: str) -> None:
    write(tmp_path / "replies" / name, text)
    with pytest.raises(TemplateError) as info:
        load_template_dir(tmp_path)
    assert str(tmp_path / "replies" / name) in str(info.value)
    assert message in str(info.value)


def test_load_rejects_two_files_for_one_language(tmp_path: Path) -> None:
    write(tmp_path / "r" / "t.en-GB.txt", "Subject: a\n\nb")
    write(tmp_path / "r" / "t.en_gb.txt", "Subject: a\n\nb")
    with pytest.raises(TemplateError, match="second template"):
        load_template_dir(tmp_path)


def test_load_rejects_non_utf8_and_missing_dir(tmp_path: Path) -> None:
    (tmp_path / "t.en.txt").write_bytes(b"Subject: caf\xe9\n\nx")
    with pytest.raises(TemplateError, match="not UTF-8"):
        load_template_dir(tmp_path)
    with pytest.raises(TemplateError, match="no such template folder"):
        load_template_dir(tmp_path / "missing")
