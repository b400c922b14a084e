"""HTMLParser's reading of one piece of markup, for the markup feedtext's tokenizer cannot split.

Ported from CPython 3.11 html/parser.py and _markupbase.py (tagfind_tolerant,
attrfind_tolerant, locatestarttagend_tolerant, endtagfind, the comment and section closers), so
that broken markup reads as it always has; tests/test_feedtext.py holds the whole reading equal
to HTMLParser's.
"""

from __future__ import annotations

import html
import re

BLOCK = re.compile(
    r"p|br|hr|h[1-6]|[uod]l|li|d[dt]|div|pre|table|t[dhr]|blockquote|address|article|aside"
    r"|section|header|footer|nav|main|figure|figcaption"
)
HIDDEN = ("script", "style")

_TAGFIND = re.compile(r"([a-zA-Z][^\t\n\r\f />\x00]*)(?:\s|/(?!>))*")
_ATTRFIND = re.compile(
    r"((?<=['\"\s/])[^\s/>][^\s/=>]*)(\s*=+\s*"
    r"('[^']*'|\"[^\"]*\"|(?!['\"])[^>\s]*))?(?:\s|/(?!>))*"
)
_LOCATESTARTTAGEND = re.compile(
    r"<[a-zA-Z][^\t\n\r\f />\x00]*"
    r"(?:[\s/]*(?:(?<=['\"\s/])[^\s/>][^\s/=>]*"
    r"(?:\s*=+\s*(?:'[^']*'|\"[^\"]*\"|(?!['\"])[^>\s]*)\s*)?(?:\s|/(?!>))*)*)?\s*"
)
_ENDTAGFIND = re.compile(r"</\s*([a-zA-Z][-.a-zA-Z0-9:_]*)\s*>")
COMMENTCLOSE = re.compile(r"--\s*>")
_DECLNAME = re.compile(r"[a-zA-Z][-_.a-zA-Z0-9]*\s*")
_SECTIONCLOSE = re.compile(r"]\s*]\s*>")
_MSSECTIONCLOSE = re.compile(r"]\s*>")
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def read_markup(raw: str, i: int) -> tuple[int, str, str | None]:
    """HTMLParser's step at the '<' at `i` when fed everything and closed.

    Returns where the step ends, the text it reports and the element (script or style) whose
    content it starts hiding, if any. One pass with goahead's end-of-input rules gives what
    feed() then close() give: feed() only stops early where close() picks up unchanged.
    """
    if raw[i + 1 : i + 2] in _LETTERS:
        return _start_tag(raw, i)
    if raw.startswith("</", i):
        return _end_tag(raw, i)
    if raw.startswith("<!--", i):
        close = COMMENTCLOSE.search(raw, i + 4)
        end = close.end() if close else -1
    elif raw.startswith("<?", i):
        end = _after_gt(raw, i + 2)
    elif raw.startswith("<![", i):
        end = _marked_section(raw, i)
    elif raw.startswith("<!", i):  # a doctype, or a bogus comment: either ends at '>'
        end = _after_gt(raw, i + 2)
    else:
        return i + 1, "<", None
    return (end, "", None) if end >= 0 else _unfinished(raw, i)


def _start_tag(raw: str, i: int) -> tuple[int, str, str | None]:
    """HTMLParser.parse_starttag: a tag, or its source as text (not unescaped) when its
    attribute scanner stops short of the end HTMLParser located."""
    end = _start_tag_end(raw, i)
    if end < 0:
        return _unfinished(raw, i)
    name = _TAGFIND.match(raw, i + 1)
    assert name is not None  # raw[i + 1] is a letter
    tag = name.group(1).lower()
    k = name.end()
    while k < end and (attr := _ATTRFIND.match(raw, k)):
        k = attr.end()
    rest = raw[k:end].strip()
    if rest not in (">", "/>"):
        return end, raw[i:end], None
    hidden = tag if rest == ">" and tag in HIDDEN else None
    return end, "\n" if BLOCK.fullmatch(tag) else "", hidden


def _start_tag_end(raw: str, i: int) -> int:
    """HTMLParser.check_for_whole_start_tag: where the tag ends, -1 if unfinished."""
    located = _LOCATESTARTTAGEND.match(raw, i)
    assert located is not None  # it matches any '<' + letter
    j = located.end()
    following = raw[j : j + 1]
    if following == ">":
        return j + 1
    if following == "/":
        return j + 2 if raw.startswith("/>", j) else -1
    if not following or following in _LETTERS or following == "=":
        return -1
    return j


def _end_tag(raw: str, i: int) -> tuple[int, str, str | None]:
    """HTMLParser.parse_endtag outside script and style."""
    if raw.find(">", i + 1) < 0:
        return _unfinished(raw, i)
    exact = _ENDTAGFIND.match(raw, i)
    if exact:
        return exact.end(), "\n" if BLOCK.fullmatch(exact.group(1).lower()) else "", None
    name = _TAGFIND.match(raw, i + 2)
    if name is None:  # '</>' is dropped; '</' + anything else is a comment up to '>'
        return (i + 3 if raw.startswith("</>", i) else _after_gt(raw, i + 2)), "", None
    end = _after_gt(raw, name.end())
    return end, "\n" if BLOCK.fullmatch(name.group(1).lower()) else "", None


def _marked_section(raw: str, i: int) -> int:
    """_markupbase.parse_marked_section: end of '<![…]]>' / '<![if …]>', -1 if unfinished.

    Where CPython raises AssertionError (no keyword, or an unknown one: '<![ x', '<![foo[')
    the section is a bogus comment up to the next '>', as the HTML tokenizer has it.
    """
    name = _DECLNAME.match(raw, i + 3)
    if name is None:
        return _after_gt(raw, i + 2)
    keyword = name.group().strip().lower()
    if keyword in ("temp", "cdata", "ignore", "include", "rcdata"):
        close = _SECTIONCLOSE.search(raw, i + 3)
    elif keyword in ("if", "else", "endif"):
        close = _MSSECTIONCLOSE.search(raw, i + 3)
    else:
        return _after_gt(raw, i + 2)
    return close.end() if close else -1


def _after_gt(raw: str, start: int) -> int:
    """Index just past the first '>' from `start`, -1 when there is none."""
    found = raw.find(">", start)
    return found + 1 if found >= 0 else -1


def _unfinished(raw: str, i: int) -> tuple[int, str, str | None]:
    """Markup HTMLParser cannot finish at the end of input: text through the next '>', else
    up to the next '<' or the end."""
    end = _after_gt(raw, i + 1)
    if end < 0:
        end = raw.find("<", i + 1)
    if end < 0:
        end = len(raw)
    return end, html.unescape(raw[i:end]), None
