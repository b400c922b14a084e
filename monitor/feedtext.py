"""Feed text to what the monitor keeps: plain text for matching, sanitized HTML for display."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from html.parser import HTMLParser
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


_BLOCK = re.compile(
    r"p|br|hr|h[1-6]|[uod]l|li|d[dt]|div|pre|table|t[dhr]|blockquote|address|article|aside"
    r"|section|header|footer|nav|main|figure|figcaption"
)


class _TextExtractor(HTMLParser):
    """Collects character data; script/style dropped, block elements become line breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.hidden += 1
        elif _BLOCK.fullmatch(tag):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.hidden = max(0, self.hidden - 1)
        elif _BLOCK.fullmatch(tag):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Plain text of an HTML fragment, for matching."""
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return plain("".join(extractor.parts))


def plain(text: str) -> str:
    """Spaces collapsed within lines, blank lines dropped, ends stripped."""
    # Only ASCII spaces and NBSP collapse: U+3000 is part of Japanese headlines.
    lines = (_SPACES.sub(" ", line).strip(" ") for line in text.splitlines())
    return "\n".join(line for line in lines if line)


_SPACES = re.compile(r"[ \t\f\v\xa0]+")
