"""Feed text to what the monitor keeps: plain text for matching, sanitized HTML for display."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from typing import Any

import nh3

from monitor.htmlmarkup import BLOCK, COMMENTCLOSE, HIDDEN, read_markup


def lookup(detail: Mapping[str, Any], key: str, default: Any = None) -> Any:
    """`detail.get(key, default)`, without feedparser's aliasing when `detail` is a dict:
    FeedParserDict checks its aliases on every lookup (about 2 µs, a dozen times an entry),
    and none of the keys read from a text construct or an entry here has one."""
    return dict.get(detail, key, default) if isinstance(detail, dict) else detail.get(key, default)


def text_of(detail: Mapping[str, Any] | None) -> str:
    """Plain text of a feedparser text construct, HTML or not."""
    if not detail:
        return ""
    value = str(lookup(detail, "value") or "")
    return html_to_text(value) if "html" in str(lookup(detail, "type", "")) else plain(value)


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
    """Spaces collapsed within lines, control characters made spaces, blank lines dropped,
    ends stripped."""
    # Only ASCII spaces and NBSP collapse: U+3000 is part of Japanese headlines. \f and \v end
    # lines (str.splitlines), so they never sit inside one. str.replace, not re.sub: a regex
    # scan of every character cost more than the tokenizer on a typical summary.
    kept = []
    for line in text.replace("\t", " ").replace("\xa0", " ").splitlines():
        line = _visible(line)
        while "  " in line:
            line = line.replace("  ", " ")
        if line := line.strip(" "):
            kept.append(line)
    return "\n".join(kept)


# C0 and C1 controls and DEL: a feed's ESC [ … or CSI would drive the terminal of whoever reads
# the log (`monitor log`, `status`). Each becomes a space, as a word break it may have been
# ("launch\x97delayed"). Line breaks are gone already (str.splitlines). So do the bidirectional
# embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069): a title with U+202E reads
# backwards from there in a terminal or a mail client, showing other words than it holds.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(line: str) -> str:
    # isprintable() is one C pass and true for most lines; only the rest pay for the regex
    return line if line.isprintable() else _CONTROLS.sub(" ", line)


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
    rf"((?ai:{BLOCK.pattern}){_ATTRS}/?>|/\s*(?ai:{BLOCK.pattern})\s*>)"
    rf"|{_element('script')}|{_element('style')}"
    rf"|[a-zA-Z][-a-zA-Z0-9:_]*{_ATTRS}/?>"
    r"|/\s*[a-zA-Z][-.a-zA-Z0-9:_]*\s*>"
    r"|!--[^-]*+(?:(?!--\s*>)-[^-]*+)*+--\s*>"  # no closer tried at every character
    ")"
)
_CLOSER = {tag: re.compile(_closer(tag)) for tag in HIDDEN}


def _text(markup: str) -> str:
    """The text of markup holding '<', before plain().

    One regex split when every '<' opens a _TOKEN (all but 3 of the corpus's 1845 HTML
    values); otherwise _scan. Text runs are unescaped one by one, as HTMLParser does: an
    entity cut by a tag ('&am<b></b>p;') stays text.
    """
    opener = markup.rfind("<!--")
    if opener >= 0 and not COMMENTCLOSE.search(markup, opener + 4):
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
            close = COMMENTCLOSE.search(markup, pos)
            pos = close.end() if close else len(markup)
            continue
        closing, name = tag.group(1), tag.group(2).lower()
        if hidden is None and BLOCK.fullmatch(name):
            pieces.append("\n")
        elif hidden is None and name in HIDDEN and not closing:
            hidden = name
        elif closing and name == hidden:
            hidden = None
    if hidden is None:
        pieces.append(markup[pos:])
    return html.unescape("".join(pieces))


def _scan(markup: str) -> list[str]:
    """Text runs and line breaks, '<' by '<': _TOKEN where it matches, else read_markup."""
    pieces: list[str] = []
    pos = 0
    while (lt := markup.find("<", pos)) >= 0:
        pieces.append(html.unescape(markup[pos:lt]))
        # '<!' goes straight to read_markup: an unclosed comment is then searched once, not twice.
        token = None if markup.startswith("<!", lt) else _TOKEN.match(markup, lt)
        if token:
            pos = token.end()
            pieces.append("" if token.group(1) is None else "\n")
            continue
        pos, piece, hidden = read_markup(markup, lt)
        pieces.append(piece)
        if hidden:
            closer = _CLOSER[hidden].search(markup, pos)
            pos = closer.end() if closer else len(markup)
    pieces.append(html.unescape(markup[pos:]))
    return pieces
