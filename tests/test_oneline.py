"""Text made one line: the two strengths, each a fixed point that leaves no line break."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.oneline import one_line, printable_line

FAMILY = "\U0001f468\u200d\U0001f469"  # two emoji and the joiner that makes them one


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Subject\r\nBcc: x", "Subject Bcc: x"),
        ("  ends\t stripped \n", "ends stripped"),
        ("ESC\x1b[31mred\x00nul\x7fdel", "ESC [31mred nul del"),
        ("line\u2028para\u2029next\x85line", "line para next line"),
        ("full\u3000width\xa0nbsp", "full width nbsp"),
        # C1 controls: CSI drives a terminal as ESC [ does (render.one_line kept all but NEL)
        ("C1\x9b[2Jcsi\x80\x9fend", "C1 [2Jcsi end"),
        # format characters belong to the text: an emoji's joiners, a soft hyphen
        (f"family {FAMILY}, co\xadoperate", f"family {FAMILY}, co\xadoperate"),
        ("", ""),
    ],
)
def test_one_line_folds_breaks_and_controls_and_keeps_text(value: str, expected: str) -> None:
    assert one_line(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("tab\there,\r\nnewline", "tab here, newline"),
        ("Moved\t\tAway", "Moved Away"),
        ("  a\xa0\xa0b\u3000c  ", "a b c"),
        ("C1\x9b[2Jcsi\x85nel", "C1 [2Jcsi nel"),
        ("evil\u202etxt.exe\u200bzero", "evil txt.exe zero"),  # format characters go too
        ("unassigned\U000e0fffend", "unassigned end"),
        ("already printable", "already printable"),
        ("", ""),
    ],
)
def test_printable_line_makes_every_unprintable_character_a_space(
    value: str, expected: str
) -> None:
    assert printable_line(value) == expected


LINE_BREAKS = st.sampled_from(["\r", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029"])
HOSTILE_TEXT = st.lists(st.one_of(st.text(max_size=20), LINE_BREAKS), max_size=8).map("".join)


@given(HOSTILE_TEXT)
def test_one_line_leaves_no_line_break_and_no_control(value: str) -> None:
    cleaned = one_line(value)
    assert cleaned.splitlines() in ([], [cleaned])
    assert not any(c.isspace() and c != " " for c in cleaned)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in cleaned)
    assert one_line(cleaned) == cleaned


@given(HOSTILE_TEXT)
def test_printable_line_is_printable_and_at_most_as_long(value: str) -> None:
    cleaned = printable_line(value)
    assert cleaned.isprintable() and "  " not in cleaned and cleaned == cleaned.strip()
    assert len(cleaned) <= len(value)
    assert printable_line(cleaned) == cleaned == printable_line(one_line(value))
