"""The feedparser edge: body bytes → a ParsedFeed of capped plain-text entries, never the network.

Order of work: inflate gzip (capped) → JSON Feed by hand (feedparser 6.0 has no JSON support) →
entity screen → feedparser on an in-memory stream → entries mapped, texts capped, dates checked.
"""

from __future__ import annotations

import html
import io
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.sax import SAXParseException

import feedparser
import orjson

from monitor.chunks import Split, split_items, transparent
from monitor.errors import ParseError
from monitor.feedtext import html_to_text, plain, safe_html, text_of
from monitor.screen import describe, inflate, screen, sniff_japanese

__all__ = [  # html_to_text: feedtext's
    "Draft",
    "DraftFeed",
    "Entry",
    "ParsedFeed",
    "html_to_text",
    "parse_drafts",
    "parse_feed",
]


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


_BENIGN_BOZO = ("CharacterEncodingOverride", "NonXMLContentType")
_MIN_YEAR = 1990
_MAX_AHEAD = timedelta(days=731)  # two years, leap day included


def parse_feed(
    body: bytes,
    *,
    now: datetime,
    content_type: str | None = None,
    max_bytes: int = 15 * 1024 * 1024,
    max_field: int = 65536,
) -> ParsedFeed:
    """Parse an RSS, RDF, Atom or JSON Feed body; raise ParseError for anything else."""
    drafts = parse_drafts(
        body, now=now, content_type=content_type, max_bytes=max_bytes, max_field=max_field
    )
    return ParsedFeed(
        title=drafts.title,
        link=drafts.link,
        language=drafts.language,
        entries=tuple(d.build() for d in drafts.entries),
        warnings=drafts.warnings,
    )


def parse_drafts(
    body: bytes,
    *,
    now: datetime,
    content_type: str | None = None,
    max_bytes: int = 15 * 1024 * 1024,
    max_field: int = 65536,
    known: Collection[str] = frozenset(),
) -> DraftFeed:
    """`parse_feed` with each entry left as a Draft, and the items printed in `known` left out.

    `known` holds the prints (DraftFeed.prints) of the previous poll of the same feed: those
    items were parsed then, byte for byte, so feedparser reads only the others. With nothing
    known the entries, errors and warnings are exactly parse_feed's.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    data = inflate(body, max_bytes=max_bytes)
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["):
        parsed = _parse_json_feed(data, now=now, cap=max_field)
        built = tuple(_built(e) for e in parsed.entries)
        return DraftFeed(parsed.title, parsed.link, parsed.language, built, parsed.warnings)
    screen(data, content_type=content_type)
    warnings: list[str] = []
    guessed = sniff_japanese(data, content_type)
    if guessed is not None:
        data = data.decode(guessed).encode("utf-8")
        warnings.append(f"encoding not declared; decoded as {guessed}")
    charsets = _charsets(content_type)
    split = split_items(data) if all(transparent(c) for c in charsets) else None
    prints = split.prints(";".join(charsets).encode()) if split is not None else ()
    keep = frozenset(i for i, p in enumerate(prints) if p not in known)
    result, skipped = _read(data, content_type, split, keep)
    feed = result.feed
    language = _language(feed.get("language"))
    rdf = str(result.get("version", "")).startswith(("rss09", "rss10"))
    bozo = _bozo_reason(result.get("bozo_exception")) if result.get("bozo") else None
    if bozo:
        warnings.append(bozo)
    drafts = [_draft(e, language, rdf, now, max_field) for e in result.entries]
    kept = tuple(d for d in drafts if d.guid or d.link or _has_text(d.build()))
    if len(kept) < len(drafts):
        warnings.append(f"dropped {len(drafts) - len(kept)} empty entries")
    # A reduced document is only kept when it has a version and no parse error (_faithful),
    # so items skipped as known never make a feed look empty or broken here.
    if not kept:
        if not result.get("version"):
            raise ParseError("not_a_feed", describe(data))
        if bozo and type(result.get("bozo_exception")).__name__ not in _BENIGN_BOZO:
            raise ParseError("malformed", f"feed has no recoverable entries ({bozo})")
    return DraftFeed(
        title=_cap(text_of(feed.get("title_detail")), max_field),
        link=_url(feed.get("link"), max_field),
        language=language,
        entries=kept,
        warnings=tuple(warnings),
        prints=prints,
        skipped=skipped,
    )


def _read(
    data: bytes, content_type: str | None, split: Split | None, keep: frozenset[int]
) -> tuple[Any, int]:
    """feedparser's result for the document with only the items in `keep`, and how many items
    it left out: none when the whole document had to be read after all (see `_faithful`)."""
    headers = {"content-type": content_type} if content_type else {}
    if split is not None and len(keep) < len(split.items):
        result = _feedparser(split.reduced(keep), headers)
        if _faithful(result, data):
            return result, len(split.items) - len(keep)
    return _feedparser(data, headers), 0


def _feedparser(data: bytes, headers: dict[str, str]) -> Any:
    # A BytesIO, never bare bytes: feedparser tries open() on a bytes argument as a file path.
    # nh3 sanitizes what is displayed, and no base URL is passed, so feedparser's own
    # sanitizing and relative-link pass would only cost time (about 35 % of its parse)
    return feedparser.parse(
        io.BytesIO(data),
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )


def _faithful(result: Any, whole: bytes) -> bool:
    """Whether feedparser read the reduced document as it would read the whole one.

    Not when the reduced one has no version or a parse error: the whole one's error, or its
    loose parse, is then the one to report. Otherwise what can differ is the codec. feedparser
    takes the first of its candidates (header charset, declared encoding, UTF-8,
    windows-1252 …) that decodes the document; split_items and `transparent` admit only codecs
    that the item cuts fall between, so a candidate that fails on the reduced bytes fails on the
    whole, and the whole gets the same codec exactly when that codec decodes it.
    """
    exc = result.get("bozo_exception") if result.get("bozo") else None
    if not result.get("version") or (exc is not None and type(exc).__name__ not in _BENIGN_BOZO):
        return False
    try:
        whole.decode(str(result.get("encoding") or ""))
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def _charsets(content_type: str | None) -> list[str]:
    """The charset parameters of a Content-Type, read as feedparser reads them."""
    found = []
    for param in (content_type or "").split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            found.append(value.strip().strip("\"'"))
    return found


def _has_text(entry: Entry) -> bool:
    return bool(entry.title or entry.summary or entry.content)


def _built(entry: Entry) -> Draft:
    return Draft(entry.guid, entry.link, entry.published_at, lambda: entry)


def _bozo_reason(exc: object) -> str:
    if isinstance(exc, SAXParseException):
        return f"not well-formed XML at line {exc.getLineNumber()}: {exc.getMessage()}"
    return f"{type(exc).__name__}: {exc}"


def _draft(
    e: dict[str, Any], feed_language: str | None, rdf: bool, now: datetime, cap: int
) -> Draft:
    link = _url(e.get("link"), cap)
    guid = _url(e.get("id"), cap)
    if rdf and guid == link:  # RSS 1.0 has no guid; feedparser copies rdf:about into id
        guid = None
    published = _entry_date(e, now)
    draft = Draft(guid, link, published, lambda: _entry(draft, e, feed_language, cap))
    if guid or link:
        return draft
    # no guid and no link: the texts identify the entry, so it is built now, once
    entry = draft.build()
    return _built(entry)


def _entry(draft: Draft, e: dict[str, Any], feed_language: str | None, cap: int) -> Entry:
    summary_detail = e.get("summary_detail")
    contents = [c for c in e.get("content") or [] if c.get("value")]
    display = summary_detail if summary_detail and summary_detail.get("value") else None
    source = e.get("source") or {}
    details = [e.get("title_detail"), summary_detail, *contents]
    return Entry(
        guid=draft.guid,
        link=draft.link,
        title=_cap(text_of(e.get("title_detail")), cap),
        summary=_cap(text_of(summary_detail), cap),
        content=_cap("\n".join(text_of(c) for c in contents), cap),
        published_at=draft.published_at,
        language=next(
            (_language(d.get("language")) for d in details if d and d.get("language")),
            feed_language,
        ),
        source_url=_url(source.get("href") or source.get("link"), cap),
        source_title=_cap(
            text_of(source.get("title_detail")) or str(source.get("title") or ""), cap
        )
        or None,
        _shown=_shown(display or (contents[0] if contents else None), cap),
    )


def _shown(detail: Mapping[str, Any] | None, cap: int) -> tuple[str, str, int]:
    """What `safe_html` reads of a text construct, kept so that Entry sanitizes on access."""
    if not detail:
        return ("", "", cap)
    return (str(detail.get("value") or "")[:cap], str(detail.get("type", "")), cap)


def _entry_date(e: dict[str, Any], now: datetime) -> datetime | None:
    for key in ("published", "updated", "created"):
        # dict.get: FeedParserDict.get aliases updated→published with a DeprecationWarning
        found = _date(dict.get(e, key), dict.get(e, f"{key}_parsed"), now)
        if found is not None:
            return found
    return None


def _date(raw: object, parsed: time.struct_time | None, now: datetime) -> datetime | None:
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
    if found.year < _MIN_YEAR or found > now + _MAX_AHEAD:
        return None
    return found


def _parse_json_feed(data: bytes, *, now: datetime, cap: int) -> ParsedFeed:
    """JSON Feed 1.0 / 1.1 (https://jsonfeed.org/version/1.1), mapped like an XML feed."""
    try:
        doc = orjson.loads(data.lstrip(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        raise ParseError("not_a_feed", f"body is JSON that does not parse ({exc})") from None
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith(
        "https://jsonfeed.org/version/"
    ):
        raise ParseError("not_a_feed", "body is JSON but not a JSON Feed")
    language = _language(doc.get("language"))
    items: list[Any] = doc["items"] if isinstance(doc.get("items"), list) else []
    entries = tuple(_json_entry(i, language, now, cap) for i in items if isinstance(i, dict))
    return ParsedFeed(
        title=_cap(plain(html.unescape(str(doc.get("title") or ""))), cap),
        link=_url(doc.get("home_page_url"), cap),
        language=language,
        entries=entries,
        warnings=(),
    )


# JSON Feed titles are plain text by spec, yet publishers leave HTML entities in them
# ("Blog &#8211; InfluxData"), hence the unescape.
def _json_entry(item: dict[str, Any], feed_language: str | None, now: datetime, cap: int) -> Entry:
    content_html = str(item.get("content_html") or "")
    content = str(item.get("content_text") or "") or html_to_text(content_html)
    summary = str(item.get("summary") or "")
    shown = {"type": "text/html", "value": content_html} if content_html else {"value": summary}
    published = None
    for key in ("date_published", "date_modified"):
        published = published or _date(item.get(key), None, now)
    return Entry(
        guid=_url(None if item.get("id") is None else str(item["id"]), cap),
        link=_url(item.get("url"), cap),
        title=_cap(plain(html.unescape(str(item.get("title") or ""))), cap),
        summary=_cap(plain(summary), cap),
        content=_cap(plain(content), cap),
        published_at=published,
        language=_language(item.get("language")) or feed_language,
        source_url=None,
        source_title=None,
        _shown=_shown(shown, cap),
    )


def _cap(text: str, cap: int) -> str:
    return text[:cap]


def _url(value: object, cap: int) -> str | None:
    text = str(value or "").strip()
    return text[:cap] or None


def _language(value: object) -> str | None:
    text = str(value or "").strip().lower().replace("_", "-")
    return text[:35] or None
