"""Untrusted text cleaning: controls, bidi overrides, line endings, NFC and file names."""

from __future__ import annotations

import pytest

from helpdesk_tui.mail.clean import clean_line, clean_text, safe_filename


def test_keeps_ordinary_text_untouched() -> None:
    text = "Hello,\n\tthe printer on floor 3 is broken.\nThanks — Zoë 日本"
    assert clean_text(text) == text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\r\nb\rc\nd", "a\nb\nc\nd"),
        ("esc\x1b[31mred\x1b[0m", "esc[31mred[0m"),
        ("nul\x00bel\x07vt\x0bff\x0c", "nulbelvtff"),
        ("del\x7f", "del"),
        ("c1\x85\x9b31m", "c131m"),
        ("line\u2028sep\u2029para", "line\nsep\npara"),
    ],
)
def test_controls_removed_and_line_ends_normalized(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_bidi_overrides_and_isolates_removed_but_marks_kept() -> None:
    spoof = "invoice\u202egpj.exe"
    assert clean_text(spoof) == "invoicegpj.exe"
    isolates = "".join(chr(c) for c in range(0x2066, 0x206A))
    embeddings = "".join(chr(c) for c in range(0x202A, 0x202F))
    assert clean_text(f"a{isolates}b{embeddings}c") == "abc"
    # Marks cannot reorder a run and Arabic or Hebrew text needs them.
    assert clean_text("\u200fשלום\u200e") == "\u200fשלום\u200e"


def test_result_is_nfc_even_when_a_control_split_a_combining_sequence() -> None:
    assert clean_text("Zoe\u0308") == "Zoë"
    assert clean_text("e\x1b\u0301") == "é"


def test_cleaning_is_idempotent() -> None:
    raw = "Re:\x1b]0;title\x07 \u202eabc\r\nZoe\u0308\x85"
    once = clean_text(raw)
    assert clean_text(once) == once
    assert clean_line(clean_line(raw)) == clean_line(raw)


def test_clean_line_folds_whitespace() -> None:
    assert clean_line("  Re:\tPrinter\r\n  on floor\n3  ") == "Re: Printer on floor 3"
    assert clean_line("\x1b[2J") == "[2J"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("..\\..\\boot.ini", "_.._boot.ini"),
        ("/abs/path.txt", "_abs_path.txt"),
        ("..", "attachment"),
        ("", "attachment"),
        ("   ", "attachment"),
        (".bashrc", "bashrc"),
        ("a:b*c?.txt", "a_b_c_.txt"),
        ("CON.txt", "_CON.txt"),
        ("nul", "_nul"),
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("line\nbreak.txt", "line break.txt"),
        ("\x1b[31m.txt", "[31m.txt"),
    ],
)
def test_safe_filename(raw: str, expected: str) -> None:
    assert safe_filename(raw) == expected


def test_safe_filename_is_bounded_and_keeps_the_extension() -> None:
    name = safe_filename("ä" * 500 + ".pdf")
    assert len(name.encode()) <= 200
    assert name.endswith(".pdf")
    assert name.startswith("ä")
    assert safe_filename("x" * 300, max_bytes=50) == "x" * 50


def test_safe_filename_default_is_used_when_nothing_is_left() -> None:
    assert safe_filename("\x00\x1b", default="part-1.bin") == "part-1.bin"
