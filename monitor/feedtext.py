"""Feed text to what the monitor keeps: plain text for matching, sanitized HTML for display."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

import nh3


def text_of(detail: Mapping[str, Any] | None) -> str:
    """Plain text of a feedparser text construct, HTML or not."""
    if not detail:
        return ""
    value = str(detail.get("value") or "")
    return html_to_text(value) if "html" in str(detail.get("type", "")) else plain(value)


def safe_html(detail: Mapping[str, Any] | None, cap: int) -> str:
    """Sanitized HTML for display, at most `cap` characters, never cut inside a tag or entity."""
    if not detail:
        return ""
    value = str(detail.get("value") or "")[:cap]
    markup = value if "html" in str(detail.get("type", "")) else html.escape(value)
    cleaned = nh3.clean(markup)
    if len(cleaned) <= cap:
        return cleaned
    cut = cleaned[:cap]
    for opener, closer in (("<", ">"), ("&", ";")):
        if cut.rfind(opener) > cut.rfind(closer):
            cut = cut[: cut.rfind(opener)]
    return cut


def html_to_text(markup: str) -> str:
    """Plain text of an HTML fragment, for matching.

    The text is what html.parser.HTMLParser(convert_charrefs=True) reports for `feed(markup)`
    then `close()` in CPython 3.11, which this module used before; a tokenizer of our own is
    about five times cheaper on the poll path. tests/test_feedtext.py holds the two equal.
    One deliberate difference: '<![' without a keyword HTMLParser knows, where it raises
    AssertionError, is a bogus comment up to the next '>'.
    """
    if "<" not in markup:
        return plain(html.unescape(markup))
    return plain(_text(markup))


def plain(text: str) -> str:
    """Spaces collapsed within lines, blank lines dropped, ends stripped."""
    # Only ASCII spaces and NBSP collapse: U+3000 is part of Japanese headlines. \f and \v end
    # lines (str.splitlines), so they never sit inside one. str.replace, not re.sub: a regex
    # scan of every character cost more than the tokenizer on a typical summary.
    text = text.replace("\t", " ").replace("\xa0", " ")
    while "  " in text:
        text = text.replace("  ", " ")
    lines = (line.strip(" ") for line in text.splitlines())
    return "\n".join(line for line in lines if line)


_BLOCK = re.compile(
    r"p|br|hr|h[1-6]|[uod]l|li|d[dt]|div|pre|table|t[dhr]|blockquote|address|article|aside"
    r"|section|header|footer|nav|main|figure|figcaption"
)
_HIDDEN = ("script", "style")

# Markup in the shapes HTMLParser reads without surprises, each proven to take its ordinary
# path: start tags whose names, attributes and spacing its tag locator and its attribute scanner
# read alike (whitespace only [ \t\n\r\f], as its tag names run on through \v and NBSP; no bare
# attribute value before '/', which it reads as part of the value), end tags exactly as its
# `endtagfind`, closed comments, script and style with their content. Tag names compare in
# ASCII only ((?ai:…)): HTMLParser lowercases them, and plain re.I lets 'ſ' match 's'. Group 1
# is a block tag, the only markup that leaves a trace (a line break).
_WS = r"[ \t\n\r\f]"
_ATTRS = (
    rf"(?>{_WS}+[a-zA-Z_:][-a-zA-Z0-9_:.]*"
    rf"(?:{_WS}*={_WS}*(?:\"[^\"]*\"|'[^']*'|[^\s\"'=<>`/]+(?!/)))?)*{_WS}*"
)


def _closer(tag: str) -> str:
    """The end tag HTMLParser leaves script or style at, in ASCII case: it finds closers with
    re.I but drops the others ('</ſcript>') again in parse_endtag, staying inside."""
    return rf"</\s*(?ai:{tag})\s*>"


def _element(tag: str) -> str:
    """A script or style start tag, content and closer, or to the end when never closed."""
    closer = _closer(tag)
    return rf"(?ai:{tag}){_ATTRS}>[^<]*+(?:(?!{closer})<[^<]*+)*+(?:{closer}|\Z)"


_TOKEN = re.compile(
    "<(?:"
    rf"((?ai:{_BLOCK.pattern}){_ATTRS}/?>|/\s*(?ai:{_BLOCK.pattern})\s*>)"
    rf"|{_element('script')}|{_element('style')}"
    rf"|[a-zA-Z][-a-zA-Z0-9:_]*{_ATTRS}/?>"
    r"|/\s*[a-zA-Z][-.a-zA-Z0-9:_]*\s*>"
    r"|!--[^-]*+(?:(?!--\s*>)-[^-]*+)*+--\s*>"  # no closer tried at every character
    ")"
)
_CLOSER = {tag: re.compile(_closer(tag)) for tag in _HIDDEN}


def _text(markup: str) -> str:
    """The text of markup holding '<', before plain().

    One regex split when every '<' opens a _TOKEN (all but 3 of the corpus's 1845 HTML
    values); otherwise _scan. Text runs are unescaped one by one, as HTMLParser does: an
    entity cut by a tag ('&am<b></b>p;') stays text.
    """
    opener = markup.rfind("<!--")
    if opener >= 0 and not _COMMENTCLOSE.search(markup, opener + 4):
        return _broken(markup)  # an unclosed comment: split would scan past it per '<'
    parts = _TOKEN.split(markup)  # text, block tag or None, text, ...
    texts = parts[::2]
    if "<" in "".join(texts):  # a '<' that opens no token
        return _broken(markup)
    if "&" in markup:
        parts[::2] = [html.unescape(text) for text in texts]
    parts[1::2] = ["" if tag is None else "\n" for tag in parts[1::2]]
    return "".join(parts)


# HTMLParser's reading of broken markup costs time in the square of its length ('<a b="'
# repeated: 48 KB took 10 s). Past this length a hostile feed gets a rough reading instead.
SCAN_LIMIT = 8192
_ROUGH_TAG = re.compile(r"<!--|<(/?)([a-zA-Z][^\s/<>]*+)[^<>]*+>")


def _broken(markup: str) -> str:
    """The text of markup _TOKEN cannot split: HTMLParser's reading when it is short, else a
    rough one in one pass (tags and comments dropped, block tags as line breaks, script and
    style out)."""
    if len(markup) <= SCAN_LIMIT:
        return "".join(_scan(markup))
    pieces: list[str] = []
    hidden: str | None = None
    pos = 0
    while (tag := _ROUGH_TAG.search(markup, pos)) is not None:
        if hidden is None:
            pieces.append(markup[pos : tag.start()])
        pos = tag.end()
        if tag.group(2) is None:  # a comment: up to its end, or all the rest
            close = _COMMENTCLOSE.search(markup, pos)
            pos = close.end() if close else len(markup)
            continue
        closing, name = tag.group(1), tag.group(2).lower()
        if hidden is None and _BLOCK.fullmatch(name):
            pieces.append("\n")
        elif hidden is None and name in _HIDDEN and not closing:
            hidden = name
        elif closing and name == hidden:
            hidden = None
    if hidden is None:
        pieces.append(markup[pos:])
    return html.unescape("".join(pieces))


def _scan(markup: str) -> list[str]:
    """Text runs and line breaks, '<' by '<': _TOKEN where it matches, else _markup."""
    pieces: list[str] = []
    pos = 0
    while (lt := markup.find("<", pos)) >= 0:
        pieces.append(html.unescape(markup[pos:lt]))
        # '<!' goes straight to _markup: an unclosed comment is then searched once, not twice.
        token = None if markup.startswith("<!", lt) else _TOKEN.match(markup, lt)
        if token:
            pos = token.end()
            pieces.append("" if token.group(1) is None else "\n")
            continue
        pos, piece, hidden = _markup(markup, lt)
        pieces.append(piece)
        if hidden:
            closer = _CLOSER[hidden].search(markup, pos)
            pos = closer.end() if closer else len(markup)
    pieces.append(html.unescape(markup[pos:]))
    return pieces


# Ported from CPython 3.11 html/parser.py and _markupbase.py (tagfind_tolerant,
# attrfind_tolerant, locatestarttagend_tolerant, endtagfind, the comment and section closers).
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
_COMMENTCLOSE = re.compile(r"--\s*>")
_DECLNAME = re.compile(r"[a-zA-Z][-_.a-zA-Z0-9]*\s*")
_SECTIONCLOSE = re.compile(r"]\s*]\s*>")
_MSSECTIONCLOSE = re.compile(r"]\s*>")
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _markup(raw: str, i: int) -> tuple[int, str, str | None]:
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
        close = _COMMENTCLOSE.search(raw, i + 4)
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
    hidden = tag if rest == ">" and tag in _HIDDEN else None
    return end, "\n" if _BLOCK.fullmatch(tag) else "", hidden


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
        return exact.end(), "\n" if _BLOCK.fullmatch(exact.group(1).lower()) else "", None
    name = _TAGFIND.match(raw, i + 2)
    if name is None:  # '</>' is dropped; '</' + anything else is a comment up to '>'
        return (i + 3 if raw.startswith("</>", i) else _after_gt(raw, i + 2)), "", None
    end = _after_gt(raw, name.end())
    return end, "\n" if _BLOCK.fullmatch(name.group(1).lower()) else "", None


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
