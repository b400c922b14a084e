"""What a body that holds no feed looked like: one sentence for FeedFailed `not_a_feed`.

An HTML page that announces its feed (RSS autodiscovery) names that feed's URL, so the
operator can configure it instead.
"""

from __future__ import annotations

import codecs
import html
import re
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

from monitor.oneline import one_line
from monitor.redact import redact_url

_WINDOW = 64 * 1024  # characters searched for feed links; a page's <head> ends well within


def describe(body: bytes, base: str | None = None) -> str:
    """One sentence saying what a body that holds no feed looks like; for an HTML page that
    links to a feed (`<link rel="alternate" type="application/rss+xml" href=…>`), the first
    such feed's URL, resolved against `base` (the page's URL), so the operator can use it."""
    text = _sniff_text(body)
    if text is None:
        return f"body is binary (first bytes {body[:4].hex(' ')})"
    stripped = text.strip()
    if not stripped:
        return "body is empty" if not body else "body is empty (only whitespace)"
    head = stripped[:8192]
    if re.search(r"<!DOCTYPE\s+html|<(html|head|body|frameset|title)[\s>]", head, re.IGNORECASE):
        title = re.search(r"<title[^>]*>(.*?)</title", head, re.IGNORECASE | re.DOTALL)
        page = f"title {_snippet(title.group(1))!r}" if title is not None else "no title"
        found = next(feed_links(stripped[:_WINDOW], base), None)
        links = f"; it links to the feed {found}" if found is not None else ""
        return f"body is an HTML page ({page}){links}"
    root = re.search(r"<([A-Za-z_][\w:.-]*)", head)
    if root and (stripped.startswith("<?xml") or not _HTML_TAG.fullmatch(root.group(1).lower())):
        return f"body is XML but not a feed (root element <{root.group(1)}>)"
    return f"body is plain text starting {_snippet(stripped)!r}"


_HTML_TAG = re.compile(r"a|b|br|i|em|strong|p|div|span|font|pre|h[1-6]|hr|table|t[dr]")
_LINK = re.compile(r"<link\b[^>]{0,2048}>", re.IGNORECASE)
_BASE = re.compile(r"<base\b[^>]{0,2048}>", re.IGNORECASE)
# A name starts where a run of name characters does: tried from inside the run as well, a tag of
# 2,000 letters and no '=' cost a quadratic search (64 KiB of such tags: 0.6 s).
_ATTRIBUTE = re.compile(r"""(?<![A-Za-z-])([A-Za-z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_FEED_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json"}
)


def feed_links(markup: str, base: str | None = None) -> Iterator[str]:
    """The feeds an HTML page announces (RSS autodiscovery), as absolute http(s) URLs that can
    be shown as they are: a link carrying credentials, one that would not print on one line,
    or one over 300 characters is left out. A relative URL is resolved against the page's
    `<base href>` where it has one, as a browser does."""
    found = _BASE.search(markup)
    given = _attributes(found.group(0)).get("href", "").strip() if found is not None else ""
    if given:
        try:
            base = urljoin(base, given) if base else given
        except ValueError:
            pass
    for tag in _LINK.findall(markup):
        attrs = _attributes(tag)
        rel = attrs.get("rel", "").lower().split()
        kind = attrs.get("type", "").partition(";")[0].strip().lower()
        href = attrs.get("href", "").strip()
        if "alternate" not in rel or kind not in _FEED_TYPES or not href:
            continue
        try:
            url = urljoin(base, href) if base else href
            if urlsplit(url).scheme not in ("http", "https") or len(url) > 300:
                continue
        except ValueError:
            continue
        shown = one_line(redact_url(url))
        if shown == url:  # nothing hidden or folded: a URL the operator can paste as it is
            yield url


def _attributes(tag: str) -> dict[str, str]:
    return {
        m.group(1).lower(): html.unescape(m.group(2) or m.group(3) or m.group(4) or "")
        for m in _ATTRIBUTE.finditer(tag)
    }


def _sniff_text(body: bytes) -> str | None:
    """The body as text, or None when it looks binary."""
    for bom, codec in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if body.startswith(bom):
            return body[len(bom) :].decode(codec, errors="replace")
    sample = body[:1024]
    controls = sum(1 for b in sample if b < 32 and b not in b"\t\n\r\f")
    if b"\x00" in sample or controls * 10 > len(sample):
        return None
    return body.decode("utf-8", errors="replace")


def _snippet(markup: str, limit: int = 60) -> str:
    """Markup reduced to one line of plain text, cut at `limit` characters."""
    spaced = re.sub(r"<(br|p|div|li|tr|h\d)\b[^>]*>", " ", markup, flags=re.IGNORECASE)
    text = " ".join(html.unescape(re.sub(r"<[^>]*>", "", spaced)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
