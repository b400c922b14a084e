"""What a parsed feed is made of, and the rules every field follows whatever the format.

Texts are plain and capped, URLs stripped and capped, languages lower-case tags, dates UTC inside
[1990, now + 2 years] or None. Shared by the feedparser path (`parse.py`) and JSON Feed
(`jsonfeed.py`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin, urlsplit

from monitor.feedtext import lookup, safe_html

MIN_YEAR = 1990
MAX_AHEAD = timedelta(days=731)  # two years, leap day included


@dataclass(frozen=True, slots=True)
class Entry:
    """One feed item; texts are plain (tags removed, entities unescaped) and capped.

    `summary_html` is made on access: a poll never displays it, and nh3 costs about 25 µs an
    entry. The fields it is made from take part in equality, so equal entries display alike.
    """

    guid: str | None  # None when absent, or for RSS 1.0 when rdf:about merely repeats the link
    link: str | None
    title: str
    summary: str
    content: str  # "" when the item carries no separate full content
    published_at: datetime | None  # UTC-aware; None when missing, impossible or absurd
    language: str | None
    source_url: str | None  # aggregator items (Google News <source url="…">)
    source_title: str | None
    # the displayed text construct as safe_html reads it: value (cut at the cap), type, cap
    _shown: tuple[str, str, int] = field(default=("", "", 0), repr=False)

    @property
    def summary_html(self) -> str:
        """Sanitized by nh3, safe to display, never longer than the field cap."""
        value, kind, cap = self._shown
        return safe_html({"value": value, "type": kind}, cap)


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed document: feed-level fields, its entries, and what was wrong but recovered."""

    title: str
    link: str | None
    language: str | None
    entries: tuple[Entry, ...]
    warnings: tuple[str, ...]
    unread: int = 0  # entries left out beyond a cap on items read


@dataclass(frozen=True, slots=True)
class Draft:
    """An entry's identifying fields, read cheaply; `build()` makes the whole Entry.

    A poll builds only the entries it has not recorded before: the text and HTML work is most
    of an entry's cost, and most entries of a changed feed are already known.
    """

    guid: str | None
    link: str | None
    published_at: datetime | None
    build: Callable[[], Entry]


@dataclass(frozen=True, slots=True)
class DraftFeed:
    """A parsed document whose entries are drafts (see `parse_drafts`)."""

    title: str
    link: str | None
    language: str | None
    entries: tuple[Draft, ...]
    warnings: tuple[str, ...]
    prints: tuple[str, ...] = ()  # of every item of the body, in order; () when not split
    skipped: int = 0  # items left out as known; their entries are not in `entries`
    unread: int = 0  # entries left out beyond the cap on items read (parse_drafts' max_items)


def built(entry: Entry) -> Draft:
    return Draft(entry.guid, entry.link, entry.published_at, lambda: entry)


def shown(detail: Mapping[str, Any] | None, cap: int) -> tuple[str, str, int]:
    """What `safe_html` reads of a text construct, kept so that Entry sanitizes on access."""
    if not detail:
        return ("", "", cap)
    return (str(lookup(detail, "value") or "")[:cap], str(lookup(detail, "type", "")), cap)


def checked_date(raw: object, parsed: time.struct_time | None, now: datetime) -> datetime | None:
    """A UTC datetime inside [1990, now + 2 years], else None."""
    text = str(raw or "").strip()
    if not text or text.isdigit():  # feedparser reads a bare epoch as a bogus calendar date
        return None
    slash = re.fullmatch(
        r"(\d{4})/(\d{1,2})/(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?", text
    )
    try:
        if slash:  # feedparser misreads '2020/1/10 14:33:00' as 1 Nov 2020; zone unknown → UTC
            y, mo, d, h, mi, sec = (int(g or 0) for g in slash.groups())
            found = datetime(y, mo, d, h, mi, sec, tzinfo=UTC)
        elif parsed is not None:
            found = datetime(*parsed[:6], tzinfo=UTC)
        else:
            found = datetime.fromisoformat(text)
            found = found.replace(tzinfo=UTC) if found.tzinfo is None else found.astimezone(UTC)
    except (ValueError, OverflowError, TypeError):
        return None
    if found.year < MIN_YEAR or found > now + MAX_AHEAD:
        return None
    return found


def capped(text: str, cap: int) -> str:
    return text[:cap]


def clean_url(value: object, cap: int, base: str | None = None) -> str | None:
    """A URL field, stripped and capped; a relative one (`/a/5`, `//host/a/5`) resolved against
    `base`, the feed's URL, as a browser would (feedparser resolves one only against an
    `xml:base` the feed declares)."""
    text = str(value or "").strip()
    if base and text:
        try:
            text = text if urlsplit(text).scheme else urljoin(base, text)
        except ValueError:  # one urlsplit cannot read (a broken IPv6 literal): kept as given
            pass
    return text[:cap] or None


def language_tag(value: object) -> str | None:
    text = str(value or "").strip().lower().replace("_", "-")
    return text[:35] or None
