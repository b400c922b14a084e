"""The feedparser edge: body bytes → a ParsedFeed of capped plain-text entries, never the network.

Order of work: inflate gzip (capped) → JSON Feed by hand (`jsonfeed.py`) → entity screen →
items known from the feed's last recorded body left out (`chunks.py`) → feedparser on an
in-memory stream → entries mapped by the field rules of `entries.py`.
"""

from __future__ import annotations

import io
from collections.abc import Collection
from datetime import datetime
from typing import Any
from xml.sax import SAXParseException

import feedparser

from monitor import feedtuning
from monitor.chunks import Split, split_items, transparent
from monitor.entries import (
    Draft,
    DraftFeed,
    Entry,
    ParsedFeed,
    built,
    capped,
    checked_date,
    clean_url,
    language_tag,
    shown,
)
from monitor.errors import ParseError
from monitor.feedtext import html_to_text, lookup, text_of
from monitor.jsonfeed import parse_json_feed
from monitor.notafeed import describe
from monitor.oneline import printable_line
from monitor.screen import declaration_alone, inflate, screen, sniff_japanese

__all__ = [  # html_to_text: feedtext's
    "Draft",
    "DraftFeed",
    "Entry",
    "ParsedFeed",
    "html_to_text",
    "parse_drafts",
    "parse_feed",
]


_BENIGN_BOZO = ("CharacterEncodingOverride", "NonXMLContentType")

# feedparser asks for libxml2's SAX driver first and uses it wherever its Python bindings happen
# to be installed (deprecated upstream, with a reported security issue: kurtmckee/feedparser#506).
# The entity screen and the XXE tests are written for expat, so expat it is, on every machine;
# this also spares the failed import feedparser otherwise attempts on every parse.
feedparser.api.PREFERRED_XML_PARSERS = []


feedtuning.install()  # the same results, a fifth sooner (monitor/feedtuning.py)


def parse_feed(
    body: bytes,
    *,
    now: datetime,
    content_type: str | None = None,
    max_bytes: int = 15 * 1024 * 1024,
    max_field: int = 65536,
    base: str | None = None,
    max_items: int = 1000,
) -> ParsedFeed:
    """Parse an RSS, RDF, Atom or JSON Feed body; raise ParseError for anything else. `base`,
    the feed's URL, resolves relative item links; entries over `max_items` are not read
    (`parse_drafts` says which)."""
    drafts = parse_drafts(
        body,
        now=now,
        content_type=content_type,
        max_bytes=max_bytes,
        max_field=max_field,
        base=base,
        max_items=max_items,
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
    base: str | None = None,
    max_items: int = 1000,
) -> DraftFeed:
    """`parse_feed` with each entry left as a Draft, and the items printed in `known` left out.

    `known` holds the prints (DraftFeed.prints) of the previous poll of the same feed: those
    items were parsed then, byte for byte, so feedparser reads only the others. With nothing
    known the entries, errors and warnings are exactly parse_feed's.

    At most `max_items` entries are read, the newest first: the first in the document's order
    (of a body cut into items, the first not known; the first of all when the whole document
    had to be read after all), or the last where the dates of its first and last items say it
    runs oldest first (`Split.newest_last`). 15 MiB of tiny items is some 290,000 of them, a
    minute and 2 GB to record. The rest are counted in `DraftFeed.unread`; of a cut body their
    prints are left out, so the next parse of the body reads them (the poll keeps no
    validators then, see `pollrecord`).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    data = inflate(body, max_bytes=max_bytes)
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["):
        parsed = parse_json_feed(data, now=now, cap=max_field, base=base, max_items=max_items)
        whole = tuple(built(e) for e in parsed.entries)
        return DraftFeed(
            parsed.title, parsed.link, parsed.language, whole, parsed.warnings, unread=parsed.unread
        )
    screen(data, content_type=content_type)
    warnings: list[str] = []
    guessed = sniff_japanese(data, content_type)
    if guessed is not None:
        data = data.decode(guessed).encode("utf-8")
        warnings.append(f"encoding not declared; decoded as {guessed}")
    charsets = _charsets(content_type)
    split = split_items(data) if all(transparent(c) for c in charsets) else None
    prints = split.prints(";".join(charsets).encode()) if split is not None else ()
    new = [i for i, p in enumerate(prints) if p not in known]
    last = split is not None and len(prints) > max_items and split.newest_last()
    keep = frozenset(new[i] for i in _window(len(new), max_items, last))
    result, reduced, shifted = _read(data, content_type, split, keep)
    skipped = len(prints) - len(new) if reduced else 0
    # the items read: those kept, or of the whole document its first (last) entries, which are
    # those items when feedparser found an entry for each item (else the reading is unknown)
    taken = _window(len(result.entries), max_items, last)
    read: Collection[int] | None = keep
    unread = len(new) - len(keep)
    if not reduced:
        read = taken if len(result.entries) == len(prints) else None
        unread = (
            sum(1 for i, p in enumerate(prints) if i not in taken and p not in known)
            if read is not None
            else len(result.entries) - len(taken)
        )
    if unread:  # unread items must not pass for known at the next poll
        prints = (
            tuple(p for i, p in enumerate(prints) if i in read or p in known)
            if read is not None
            else ()
        )
    feed = result.feed
    language = language_tag(feed.get("language"))
    rdf = str(result.get("version", "")).startswith(("rss09", "rss10"))
    bozo = _bozo_reason(result.get("bozo_exception"), shifted) if result.get("bozo") else None
    if bozo:
        warnings.append(bozo)
    drafts = [
        _draft(e, language, rdf, now, max_field, base)
        for e in result.entries[taken.start : taken.stop]
    ]
    kept = tuple(d for d in drafts if d.guid or d.link or _has_text(d.build()))
    if len(kept) < len(drafts):
        warnings.append(f"dropped {len(drafts) - len(kept)} empty entries")
    # A reduced document is only kept when it has a version and no parse error (_faithful),
    # so items skipped as known never make a feed look empty or broken here.
    if not kept:
        if not result.get("version"):
            raise ParseError("not_a_feed", describe(data, base))
        if bozo and type(result.get("bozo_exception")).__name__ not in _BENIGN_BOZO:
            raise ParseError("malformed", f"feed has no recoverable entries ({bozo})")
    return DraftFeed(
        title=capped(text_of(feed.get("title_detail")), max_field),
        link=clean_url(feed.get("link"), max_field),
        language=language,
        entries=kept,
        warnings=tuple(warnings),
        prints=prints,
        skipped=skipped,
        unread=unread,
    )


def _window(count: int, cap: int, last: bool) -> range:
    """The indices of the `cap` first of `count` (the last, when `last`)."""
    return range(max(count - cap, 0), count) if last else range(min(cap, count))


def _read(
    data: bytes, content_type: str | None, split: Split | None, keep: frozenset[int]
) -> tuple[Any, bool, bool]:
    """feedparser's result for the document with only the items in `keep`, whether it is that
    (not when the whole document had to be read after all, see `_faithful`), and whether its
    lines were shifted by one (`declaration_alone`)."""
    headers = {"content-type": content_type} if content_type else {}
    if split is not None and len(keep) < len(split.items):
        try:
            result, shifted = _feedparser(split.reduced(keep), headers)
        except ParseError:  # the whole document's failure, or its parse, is the one to report
            pass
        else:
            if _faithful(result, data):
                return result, True, shifted
    result, shifted = _feedparser(data, headers)
    return result, False, shifted


def _feedparser(data: bytes, headers: dict[str, str]) -> tuple[Any, bool]:
    # A BytesIO, never bare bytes: feedparser tries open() on a bytes argument as a file path.
    # nh3 sanitizes what is displayed, and no base URL is passed, so feedparser's own
    # sanitizing and relative-link pass would only cost time (about 35 % of its parse)
    given = declaration_alone(data)
    # feedparser 6.0 raises on some broken bodies rather than flag them as bozo: its loose parser
    # turns '&#x110000;' into chr(0x110000) (ValueError) and '&#xD800;' into a surrogate it then
    # encodes (UnicodeEncodeError), ends '</height>' without a start with int(None) (TypeError);
    # a declared encoding's name holding a non-UTF-8 byte fails to decode. `malformed` each time.
    try:
        result = feedparser.parse(
            io.BytesIO(given),
            response_headers=headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as exc:  # noqa: BLE001 (a failure of feedparser's own, above)
        reason = printable_line(f"{type(exc).__name__}: {exc}")[:200]
        raise ParseError("malformed", f"feedparser could not read the body ({reason})") from None
    return result, given is not data


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
    except (UnicodeError, LookupError):
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


def _bozo_reason(exc: object, shifted: bool = False) -> str:
    """What was wrong, by the line of the body as served (`shifted`: one line was added)."""
    if isinstance(exc, SAXParseException):
        line = int(exc.getLineNumber() or 0)
        line -= 1 if shifted and line > 1 else 0
        return f"not well-formed XML at line {line}: {exc.getMessage()}"
    return f"{type(exc).__name__}: {exc}"


def _draft(
    e: dict[str, Any],
    feed_language: str | None,
    rdf: bool,
    now: datetime,
    cap: int,
    base: str | None = None,
) -> Draft:
    link = clean_url(lookup(e, "link"), cap, base)
    guid = clean_url(lookup(e, "id"), cap)
    if rdf and guid == link:  # RSS 1.0 has no guid; feedparser copies rdf:about into id
        guid = None
    published = _entry_date(e, now)
    draft = Draft(guid, link, published, lambda: _entry(draft, e, feed_language, cap))
    if guid or link:
        return draft
    # no guid and no link: the texts identify the entry, so it is built now, once
    entry = draft.build()
    return built(entry)


def _entry(draft: Draft, e: dict[str, Any], feed_language: str | None, cap: int) -> Entry:
    summary_detail = lookup(e, "summary_detail")
    contents = [c for c in lookup(e, "content") or [] if lookup(c, "value")]
    display = summary_detail if summary_detail and lookup(summary_detail, "value") else None
    source = lookup(e, "source") or {}
    details = [lookup(e, "title_detail"), summary_detail, *contents]
    return Entry(
        guid=draft.guid,
        link=draft.link,
        title=capped(text_of(lookup(e, "title_detail")), cap),
        summary=capped(text_of(summary_detail), cap),
        content=capped("\n".join(text_of(c) for c in contents), cap),
        published_at=draft.published_at,
        language=next(
            (language_tag(lookup(d, "language")) for d in details if d and lookup(d, "language")),
            feed_language,
        ),
        source_url=clean_url(lookup(source, "href") or lookup(source, "link"), cap),
        source_title=capped(
            text_of(lookup(source, "title_detail")) or str(lookup(source, "title") or ""), cap
        )
        or None,
        _shown=shown(display or (contents[0] if contents else None), cap),
    )


def _entry_date(e: dict[str, Any], now: datetime) -> datetime | None:
    for key in ("published", "updated", "created"):
        # dict.get: FeedParserDict.get aliases updated→published with a DeprecationWarning
        found = checked_date(dict.get(e, key), dict.get(e, f"{key}_parsed"), now)
        if found is not None:
            return found
    return None
