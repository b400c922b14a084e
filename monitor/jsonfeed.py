"""JSON Feed 1.0 / 1.1 (https://jsonfeed.org/version/1.1), mapped like an XML feed.

feedparser 6.0 reads no JSON, so these documents never reach it.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

import orjson

from monitor.entries import (
    Entry,
    ParsedFeed,
    capped,
    checked_date,
    clean_url,
    language_tag,
    shown,
)
from monitor.errors import ParseError
from monitor.feedtext import html_to_text, plain


def parse_json_feed(
    data: bytes, *, now: datetime, cap: int, base: str | None = None, max_items: int | None = None
) -> ParsedFeed:
    """The document's entries, or ParseError("not_a_feed") when it is JSON but no JSON Feed;
    `base`, the feed's URL, resolves relative item URLs. Of more than `max_items` items only
    the first are read (ParsedFeed.unread counts the rest)."""
    try:
        doc = orjson.loads(data.lstrip(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        raise ParseError("not_a_feed", f"body is JSON that does not parse ({exc})") from None
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise ParseError("not_a_feed", "body is JSON but not a JSON Feed")
    language = language_tag(doc.get("language"))
    given: list[Any] = doc["items"] if isinstance(doc.get("items"), list) else []
    items = [i for i in given if isinstance(i, dict)]
    read = items if max_items is None else items[:max_items]
    return ParsedFeed(
        title=capped(plain(html.unescape(str(doc.get("title") or ""))), cap),
        link=clean_url(doc.get("home_page_url"), cap),
        language=language,
        entries=tuple(_json_entry(i, language, now, cap, base) for i in read),
        warnings=(),
        unread=len(items) - len(read),
    )


# JSON Feed titles are plain text by spec, yet publishers leave HTML entities in them
# ("Blog &#8211; InfluxData"), hence the unescape.
def _json_entry(
    item: dict[str, Any], feed_language: str | None, now: datetime, cap: int, base: str | None
) -> Entry:
    content_html = str(item.get("content_html") or "")
    content = str(item.get("content_text") or "") or html_to_text(content_html)
    summary = str(item.get("summary") or "")
    display = {"type": "text/html", "value": content_html} if content_html else {"value": summary}
    published = None
    for key in ("date_published", "date_modified"):
        published = published or checked_date(item.get(key), None, now)
    return Entry(
        guid=clean_url(None if item.get("id") is None else str(item["id"]), cap),
        link=clean_url(item.get("url"), cap, base),
        title=capped(plain(html.unescape(str(item.get("title") or ""))), cap),
        summary=capped(plain(summary), cap),
        content=capped(plain(content), cap),
        published_at=published,
        language=language_tag(item.get("language")) or feed_language,
        source_url=None,
        source_title=None,
        _shown=shown(display, cap),
    )
