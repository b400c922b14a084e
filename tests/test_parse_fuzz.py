"""parse_drafts on mutated real feeds: entries or a named ParseError, and known items skipped
exactly.

The bodies are the smaller files of tests/fixtures/feeds, each changed a few times by a byte
flip, a cut, a deletion or an inserted piece of hostile markup.
"""

from __future__ import annotations

import encodings.aliases
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from monitor.errors import ParseError
from monitor.parse import DraftFeed, parse_drafts
from monitor.screen import inflate

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
NOW = datetime(2026, 9, 1, tzinfo=UTC)
KINDS = {"not_a_feed", "rejected_entities", "malformed", "too_large"}
CAP = 65536
BODIES = {
    p.relative_to(FEEDS).as_posix(): inflate(p.read_bytes(), max_bytes=1 << 30)
    for p in sorted(FEEDS.rglob("*"))
    if p.is_file() and p.suffix != ".md" and p.stat().st_size < 40_000
}
PIECES = [
    b"&#x110000;",
    b"&#xD800;",
    b"&#99999999999;",
    b"&#0;",
    b"&nbsp;",
    b"&x;",
    b"</height>",
    b"<![CDATA[",
    b"]]>",
    b"<![CDATA[<item>]]>",
    b"<item>",
    b"</item>",
    b"<entry>",
    b"</entry>",
    b"<!-- <!ENTITY x 'y'> -->",
    b"<!DOCTYPE rss [<!ENTITY a 'b'>]>",
    b"<?xml version='1.0' encoding='utf-7'?>",
    b"<?xml version='1.0' encoding='windo\xc8-1252'?>",
    b"\x00",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\x1b[31m",
    b"<pubDate>Mon, 31 Feb 2026 25:61:99 +9999</pubDate>",
    b"<dc:date>2026-13-45T99:99:99+25:00</dc:date>",
    b"<title>" + b"t" * 70_000 + b"</title>",
    b"<link>http://[::1</link>",
]
RSS = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>T</title>'
    b"<item><title>%s</title><link>https://example.org/a</link></item></channel></rss>"
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = BODIES[draw(st.sampled_from(sorted(BODIES)))]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        op = draw(st.sampled_from(["flip", "cut", "delete", "insert"]))
        if op == "flip" and at < len(data):
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
        elif op == "cut":
            data = data[:at]
        elif op == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 200)) :]
        else:
            data = data[:at] + draw(st.sampled_from(PIECES)) + data[at:]
    return data


def parsed(body: bytes, known: frozenset[str] = frozenset()) -> DraftFeed | ParseError:
    try:
        return parse_drafts(body, now=NOW, known=known)
    except ParseError as error:
        return error


def keys(feed: DraftFeed) -> list[tuple[Any, ...]]:
    built = (d.build() for d in feed.entries)
    return [(e.guid, e.link, e.title, e.summary, e.published_at) for e in built]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
@example(RSS % b"&#x110000;")  # feedparser's loose parser: chr() ValueError
@example(RSS % b"&#xD800;")  # a surrogate it then encodes: UnicodeEncodeError
@example(RSS % b"&#99999999999;")  # OverflowError
@example(RSS % b"a</height>")  # int(None): TypeError
@example(RSS.replace(b"utf-8", b"utf\xc8-8"))  # a declared name feedparser cannot decode
def test_a_mutated_feed_yields_entries_or_a_named_parse_error(body: bytes) -> None:
    feed = parsed(body)
    if isinstance(feed, ParseError):
        assert feed.kind in KINDS
        assert str(feed) and "\n" not in str(feed)
        return
    for entry in (d.build() for d in feed.entries):
        for text in (entry.title, entry.summary, entry.content, entry.summary_html):
            assert len(text) <= CAP
        for url in (entry.guid, entry.link, entry.source_url):
            assert url is None or len(url) <= CAP
        when = entry.published_at
        assert when is None or (1990 <= when.year and when <= NOW + timedelta(days=731))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(BODIES)), mutated())
def test_known_items_leave_exactly_the_new_entries_of_a_changed_feed(
    previous_name: str, body: bytes
) -> None:
    """The last recorded body's prints, given to the parse of a changed body, leave out exactly
    the entries of the items printed in both."""
    previous = parsed(BODIES[previous_name])
    whole = parsed(body)
    if isinstance(previous, ParseError) or isinstance(whole, ParseError):
        return
    known = frozenset(previous.prints)
    part = parsed(body, known)
    assert isinstance(part, DraftFeed), part
    assert part.prints == whole.prints
    assert (part.title, part.link, part.language) == (whole.title, whole.link, whole.language)
    if not part.skipped:  # read whole after all
        assert keys(part) == keys(whole)
        return
    new = [i for i, p in enumerate(whole.prints) if p not in known]
    assert part.skipped == len(whole.prints) - len(new)
    everything = keys(whole)
    if len(everything) == len(whole.prints):  # one entry per item
        assert keys(part) == [everything[i] for i in new]
    else:  # empty entries were dropped: none invented
        assert all(k in everything for k in keys(part))


# every codec Python knows by name, text or not, and a name no lookup accepts
CODECS = sorted({*encodings.aliases.aliases.values(), "idna", "punycode", "undefined", "utf-8\0"})


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(CODECS), st.sampled_from(CODECS) | st.none())
@example("idna", None)  # no 'replace' error handler: UnicodeError in the screen
@example("punycode", None)
@example("undefined", None)
@example("utf-8", "undefined")  # as a header charset: UnicodeError in chunks.transparent
@example("utf-8", "utf-8\0")  # ValueError from codecs.lookup
def test_any_declared_or_header_codec_yields_entries_or_a_named_parse_error(
    declared: str, charset: str | None
) -> None:
    body = RSS.replace(b"utf-8", declared.encode("latin-1")) % "café".encode()
    content_type = None if charset is None else f"text/xml; charset={charset}"
    try:
        feed = parse_drafts(body, now=NOW, content_type=content_type)
    except ParseError as error:
        assert error.kind in KINDS
        assert str(error) and "\n" not in str(error)
        return
    again = parse_drafts(body, now=NOW, content_type=content_type, known=frozenset(feed.prints))
    assert again.entries == () or again.skipped == 0
