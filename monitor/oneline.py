"""Text made one line: line breaks and control characters become single spaces (pure).

Two strengths, one mechanism (replace, then collapse runs of white space, then strip):

    one_line        text people wrote (feed titles, milestone names): line breaks and
                    control characters go; format characters stay, as they are part of
                    the text (an emoji's joiners, a soft hyphen, Persian's ZWNJ)
    printable_line  text a program wrote (status lines, exception messages): every character
                    str.isprintable() refuses goes, format characters (a bidi override) too
"""

from __future__ import annotations

import re

# Everything a mail header or a terminal could take for a line break or a command: C0, DEL and
# C1 (ECMA-48's CSI is \x9b), NEL and the Unicode line and paragraph separators (RFC 5322 §2.2).
_BREAKS_AND_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]+")
_SPACES = re.compile(r"\s+")


def one_line(text: str) -> str:
    """`text` with every line break and control character folded into single spaces, runs of
    white space (a tab, NBSP, U+3000) made one space, and its ends stripped."""
    return _SPACES.sub(" ", _BREAKS_AND_CONTROLS.sub(" ", text)).strip()


def printable_line(text: str) -> str:
    """`text` with every character that is not printable (controls, line breaks, format and
    unassigned characters, white space other than the space) made a space, runs of spaces made
    one, and its ends stripped."""
    if not text.isprintable():  # one C pass; most messages are printable already
        text = "".join(c if c.isprintable() else " " for c in text)
    return " ".join(text.split())


def counted(n: int, noun: str) -> str:
    """`n` and the noun, plural unless one: `1 new item`, `0 transitions`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (SQLAlchemy's run on with the statement and a
    link), or the error's type when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
