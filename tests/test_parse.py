"""monitor.parse and monitor.screen on hand-built bodies: entities, gzip, dates, text, caps."""

from __future__ import annotations

import gzip
import html
import os
import sys
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import feedparser.mixin
import orjson
import pytest
from feedparser.util import FeedParserDict
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import feedtuning
from monitor.errors import ParseError
from monitor.feedtext import plain
from monitor.parse import ParsedFeed, html_to_text, parse_feed
from monitor.screen import screen
from tests.feedserver import FeedServer

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


def rss(items: str, *, prolog: str = "", channel: str = "<title>T</title>") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n{prolog}<rss version="2.0"><channel>'
        f"{channel}{items}</channel></rss>"
    )


def item(title: str = "t", extra: str = "") -> str:
    return f"<item><title>{title}</title><link>https://example.org/a</link>{extra}</item>"


def parse(body: bytes | str, **kwargs: object) -> ParsedFeed:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return parse_feed(data, now=NOW, **kwargs)  # type: ignore[arg-type]


def rejected(body: bytes, **kwargs: object) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse(body, **kwargs)
    assert caught.value.kind == "rejected_entities", caught.value
    return caught.value


# --- the entity screen -------------------------------------------------------------------

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY lol "lol">\n'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">\n' for i in range(1, 10)
    ).replace("&lol0;", "&lol;")
    + "]>\n"
    + rss(item("&lol9;")).split("\n", 1)[1]
)
# The shape measured against feedparser 6.0.14: one 20 KB entity used 20,000 times.
QUADRATIC_BLOWUP = (
    f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY big "{"x" * 20_000}">]>\n'
    + rss(item("&big;" * 20_000)).split("\n", 1)[1]
)


def hostile_documents(sentinel: Path) -> dict[str, str]:
    uri = sentinel.as_uri()
    body = rss(item("&xxe;")).split("\n", 1)[1]
    return {
        "billion laughs": BILLION_LAUGHS,
        "quadratic blowup": QUADRATIC_BLOWUP,
        "external entity": f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{uri}">]>\n{body}',
        "external DTD": f'<!DOCTYPE rss SYSTEM "{uri}">\n{body}',
        "public DTD with a file system id": (
            f'<!DOCTYPE rss PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "{uri}">\n{body}'
        ),
        "parameter entity": f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "{uri}"> %p;]>\n{body}',
        "entity hidden in a prolog comment": (
            f'<!-- <b>\n<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "{uri}">\n]> -->\n{body}'
        ),
        "doctype after a comment holding a tag": (
            f'<!-- <rss> --><!DOCTYPE rss [<!ENTITY xxe SYSTEM "{uri}">]>\n{body}'
        ),
        # a comment ends at "-->", not at its first ">": else "<b>" would pass for the root
        "doctype after a comment holding '>' and a tag": (
            f'<!-- a > <b> --><!DOCTYPE rss [<!ENTITY xxe SYSTEM "{uri}">]>\n{body}'
        ),
        "lowercase declaration": f'<!doctype rss [<!entity xxe SYSTEM "{uri}">]>\n{body}',
    }


def encodings_of(document: str) -> dict[str, bytes]:
    """The document as UTF-8, and as UTF-16 and UTF-32 with a BOM and without one."""
    return {
        "utf-8": document.encode("utf-8"),
        "utf-16 le bom": b"\xff\xfe" + document.encode("utf-16-le"),
        "utf-16 be bom": b"\xfe\xff" + document.encode("utf-16-be"),
        "utf-16 le no bom": document.encode("utf-16-le"),
        "utf-16 be no bom": document.encode("utf-16-be"),
        "utf-32 le bom": b"\xff\xfe\x00\x00" + document.encode("utf-32-le"),
        "utf-32 be no bom": document.encode("utf-32-be"),
    }


def feedparser_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The documents monitor.parse hands to feedparser from now on, in order."""
    calls: list[bytes] = []
    real = feedparser.parse

    def spy(source: Any, **kwargs: Any) -> Any:
        calls.append(source.getvalue())
        return real(source, **kwargs)

    monkeypatch.setattr("monitor.parse.feedparser.parse", spy)  # the name monitor.parse calls
    return calls


_WATCHERS: list[list[str]] = []  # the lists files_opened is filling; the hook stays for good
_HOOKED: list[bool] = []


def _on_audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _WATCHERS and isinstance(args[0], str | bytes | os.PathLike):
        for seen in _WATCHERS:
            seen.append(os.fsdecode(args[0]))


@contextmanager
def files_opened() -> Iterator[list[str]]:
    """Every path this process opens while the block runs (the `open` audit event, which
    open(), io.open and os.open raise, and so urllib's file: handler and expat's resolver)."""
    if not _HOOKED:  # an audit hook cannot be removed: add one, once, that is idle by default
        sys.addaudithook(_on_audit)
        _HOOKED.append(True)
    seen: list[str] = []
    _WATCHERS.append(seen)
    try:
        yield seen
    finally:
        _WATCHERS.remove(seen)


@pytest.mark.parametrize("encoding", list(encodings_of("")))
def test_entity_declarations_are_refused_in_every_encoding(
    tmp_path: Path, encoding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sentinel = tmp_path / "xxe-sentinel-4f1d9c2e.txt"
    secret = "SENTINEL-4f1d9c2e-never-read"
    sentinel.write_text(secret)
    calls = feedparser_calls(monkeypatch)
    with files_opened() as opened:
        for name, document in hostile_documents(sentinel).items():
            data = encodings_of(document)[encoding]
            error = rejected(data)
            assert secret not in str(error), name
            assert "refused" in str(error), name
    assert calls == []  # refused before feedparser saw any of them
    assert [p for p in opened if sentinel.name in p] == []
    # the spy and the hook are where they must be: a feed reaches feedparser, an open is seen
    parse(rss(item("fine")))
    with files_opened() as opened:
        sentinel.read_text()
    assert len(calls) == 1 and str(sentinel) in opened


def test_dtds_and_entities_on_a_live_server_are_never_fetched(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    feed_server.route("/evil.dtd", body=b'<!ENTITY xxe "FETCHED-DTD-7d1e">')
    feed_server.route("/entity.txt", body=b"FETCHED-ENTITY-7d1e")
    dtd, text = feed_server.url("/evil.dtd"), feed_server.url("/entity.txt")
    body = rss(item("&xxe;")).split("\n", 1)[1]
    hostile = {
        "external entity": f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{text}">]>\n{body}',
        "external DTD": f'<!DOCTYPE rss SYSTEM "{dtd}">\n{body}',
        "parameter entity": f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "{dtd}"> %p;]>\n{body}',
        "public id, loopback system id": (
            f'<!DOCTYPE rss PUBLIC "-//Example//DTD Evil//EN" "{dtd}">\n{body}'
        ),
    }
    calls = feedparser_calls(monkeypatch)
    for name, document in hostile.items():
        error = rejected(document.encode())
        assert "FETCHED" not in str(error), name
    assert calls == []
    # A known public id with an http system id is let through to feedparser, which must not
    # fetch the DTD either (feedparser turns off external entities; expat loads no DTD).
    allowed = (
        '<?xml version="1.0"?>\n<!DOCTYPE rss PUBLIC '
        f'"-//Netscape Communications//DTD RSS 0.91//EN" "{dtd}">\n'
        + rss(item("Old but fine")).split("\n", 1)[1]
    )
    assert [e.title for e in parse(allowed).entries] == ["Old but fine"]
    assert len(calls) == 1
    assert feed_server.hits("/evil.dtd") == 0 and feed_server.hits("/entity.txt") == 0
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with direct.open(dtd) as answer:  # the server counts a fetch when there is one
        assert answer.read().startswith(b"<!ENTITY")
    assert feed_server.hits("/evil.dtd") == 1


@pytest.mark.parametrize("codec", ["shift_jis", "euc-jp"])
def test_entities_are_refused_in_japanese_legacy_encodings(codec: str) -> None:
    document = (
        f'<?xml version="1.0" encoding="{codec}"?>\n<!DOCTYPE rss [<!ENTITY a "国土交通省">]>\n'
        + rss(item("&a;")).split("\n", 1)[1]
    )
    rejected(document.encode(codec))


def test_utf7_spelled_entities_are_refused_from_the_declaration_or_the_header() -> None:
    # Python's UTF-7 codec writes '<' directly, so spell the DOCTYPE the way an attacker would.
    spelled = b'+ADw-!DOCTYPE rss +AFs-+ADw-!ENTITY a "x"+AD4-+AF0-+AD4-\n'
    body = rss(item("&a;")).split("\n", 1)[1].encode()
    rejected(b'<?xml version="1.0" encoding="utf-7"?>\n' + spelled + body)
    rejected(spelled + body, content_type="application/rss+xml; charset=utf-7")


def test_a_body_that_is_a_file_path_is_not_read(tmp_path: Path) -> None:
    # feedparser.parse(bytes) would open() the bytes as a file name; parse_feed never lets it.
    sentinel = tmp_path / "feed.xml"
    sentinel.write_text(rss(item("SENTINEL-TITLE-91c3")))
    with pytest.raises(ParseError) as caught:
        parse(str(sentinel).encode())
    assert caught.value.kind == "not_a_feed"
    assert "SENTINEL-TITLE-91c3" not in str(caught.value)


def test_feedparser_parses_with_expat_even_where_libxml2_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # feedparser prefers libxml2's SAX driver wherever it is importable; the screen is written
    # for expat. A driver that refuses to be used stands in for an installed libxml2.
    (tmp_path / "drv_libxml2.py").write_text(
        "def create_parser():\n    raise RuntimeError('the libxml2 SAX driver was used')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "drv_libxml2", raising=False)
    feed = parse(rss(item("Parsed by expat")))
    assert [e.title for e in feed.entries] == ["Parsed by expat"]


def test_netscape_rss_091_public_dtd_is_allowed() -> None:
    prolog = (
        '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"\n'
        ' "http://my.netscape.com/publish/formats/rss-0.91.dtd">\n'
    )
    feed = parse(rss(item("Old but fine"), prolog=prolog))
    assert [e.title for e in feed.entries] == ["Old but fine"]


def test_entity_text_inside_an_item_is_not_mistaken_for_a_declaration() -> None:
    cdata = "<description><![CDATA[Write <!ENTITY x 'y'> in your DTD]]></description>"
    entry = parse(rss(item("XML tips", cdata))).entries[0]
    assert entry.title == "XML tips"
    assert entry.summary.startswith("Write") and entry.summary.endswith("in your DTD")


@pytest.mark.parametrize(
    ("prolog", "reason"),
    [
        ("<!DOCTYPE rss " + "a" * 5000, "unterminated or oversized DOCTYPE"),
        ('<!DOCTYPE rss "' + "a" * 5000, "unterminated or oversized DOCTYPE"),
        ("<?pi?>" * 10_001, "over 10000 declarations"),
        ('<!DOCTYPE rss SYSTEM "http://example.org/rss.dtd">', "external DTD"),
        ('<!DOCTYPE rss [<!ATTLIST rss version CDATA "2.0">]>', "internal subset"),
    ],
)
def test_pathological_prologs_are_refused_without_a_full_scan(prolog: str, reason: str) -> None:
    error = rejected(rss(item(), prolog=prolog + "\n").encode())
    assert reason in str(error)


def test_screen_accepts_a_plain_feed_and_a_doctype_without_declarations() -> None:
    screen(rss(item()).encode())
    screen(b"<!DOCTYPE html>\n<html><head><title>x</title></head></html>")


# --- gzip and size caps -------------------------------------------------------------------


def test_gzip_body_is_inflated_then_parsed() -> None:
    feed = parse(gzip.compress(rss(item("Zipped")).encode()))
    assert [e.title for e in feed.entries] == ["Zipped"]


def test_gzip_body_is_screened_after_inflating() -> None:
    rejected(gzip.compress(QUADRATIC_BLOWUP.encode()))


def test_concatenated_gzip_members_are_all_inflated() -> None:
    document = rss(item("Two members")).encode()
    body = gzip.compress(document[:40]) + gzip.compress(document[40:])
    assert parse(body).entries[0].title == "Two members"


def test_gzip_bomb_stops_at_the_cap() -> None:
    bomb = gzip.compress(b" " * (2 * 1024 * 1024))
    with pytest.raises(ParseError) as caught:
        parse(bomb, max_bytes=1024 * 1024)
    assert caught.value.kind == "too_large"
    assert "1048576" in str(caught.value)


@pytest.mark.parametrize("compress", [lambda b: b, gzip.compress], ids=["plain", "gzip"])
def test_a_body_of_exactly_the_cap_parses_and_one_byte_more_is_too_large(compress: Any) -> None:
    document = rss(item("At the cap")).encode()
    cap = len(document) + 100
    exact = document + b" " * 100
    assert [e.title for e in parse(compress(exact), max_bytes=cap).entries] == ["At the cap"]
    with pytest.raises(ParseError) as caught:
        parse(compress(exact + b" "), max_bytes=cap)
    assert caught.value.kind == "too_large"
    assert str(cap) in str(caught.value)


def test_plain_body_over_the_cap_is_too_large() -> None:
    with pytest.raises(ParseError) as caught:
        parse(rss(item("x" * 5000)), max_bytes=1000)
    assert caught.value.kind == "too_large"


def test_truncated_gzip_is_not_a_feed() -> None:
    with pytest.raises(ParseError) as caught:
        parse(gzip.compress(rss(item()).encode())[:30])
    assert caught.value.kind == "not_a_feed"
    assert "gzip" in str(caught.value)


# --- bodies that hold no feed --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        (b"", "body is empty"),
        (b" \r\n\t", "body is empty (only whitespace)"),
        (b'{"status": "ok", "items": []}', "body is JSON but not a JSON Feed"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "body is binary (first bytes 89 50 4e 47)"),
        (
            b"<!DOCTYPE html><html><head><title>Access denied</title></head><body/></html>",
            "body is an HTML page (title 'Access denied')",
        ),
        (b"<html><body><p>hello</p></body></html>", "body is an HTML page (no title)"),
        (
            b'<?xml version="1.0"?><note><to>x</to></note>',
            "body is XML but not a feed (root element <note>)",
        ),
        (b"Service Unavailable", "body is plain text starting 'Service Unavailable'"),
    ],
)
def test_non_feed_bodies_say_what_they_looked_like(body: bytes, sentence: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(body)
    assert caught.value.kind == "not_a_feed"
    assert str(caught.value) == sentence


PAGE = """<!DOCTYPE html><html><head><title>METI News</title>
<link rel="stylesheet" type="text/css" href="/s.css">
<link rel="alternate" type="text/html" hreflang="en" href="/english/">
{links}
</head><body>news</body></html>"""


@pytest.mark.parametrize(
    ("links", "found"),
    [
        (
            '<link rel="alternate" type="application/rss+xml" title="RSS" href="/press/rss.xml">',
            "https://www.meti.go.jp/press/rss.xml",
        ),
        (
            (
                "<LINK REL='Alternate feed' TYPE='application/atom+xml; charset=utf-8' "
                "HREF='//feeds.example.org/a?x=1&amp;y=2'>"
            ),
            "https://feeds.example.org/a?x=1&y=2",
        ),
        (
            "<link href=https://example.org/f.json rel=alternate type=application/feed+json>",
            "https://example.org/f.json",
        ),
        (
            (
                '<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">\n'
                '<link rel="alternate" type="application/rss+xml" href="rss2.xml">'
            ),
            "https://www.meti.go.jp/news/rss2.xml",
        ),
        # a relative URL is resolved against the page's <base href>, itself relative
        (
            (
                '<base href="/press/2026/"><link rel="alternate" type="application/rss+xml" '
                'href="rss.xml">'
            ),
            "https://www.meti.go.jp/press/2026/rss.xml",
        ),
        # attribute names after a run of letters (no '=') are still read
        (
            "<link " + "a" * 1900 + ' rel="alternate" type="application/rss+xml" href="r.xml">',
            "https://www.meti.go.jp/news/r.xml",
        ),
    ],
)
def test_an_html_page_that_links_to_a_feed_names_it(links: str, found: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(PAGE.format(links=links), base="https://www.meti.go.jp/news/index.html")
    assert caught.value.kind == "not_a_feed"
    assert str(caught.value) == (
        f"body is an HTML page (title 'METI News'); it links to the feed {found}"
    )


@pytest.mark.parametrize(
    "links",
    [
        "",  # no feed announced
        (
            '<link rel="alternate" type="application/rss+xml" '
            'href="https://u:secret@example.org/rss?token=abc">'
        ),  # credentials are never shown
        '<link rel="alternate" type="application/rss+xml" href="ftp://example.org/rss">',
        '<link rel="alternate" type="application/rss+xml" href="/' + "a" * 400 + '">',
        (
            '<base href="https://u:secret@cdn.example.org/">'  # nor a base's credentials
            '<link rel="alternate" type="application/rss+xml" href="rss.xml">'
        ),
    ],
)
def test_a_page_names_no_feed_it_cannot_show_safely(links: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse(PAGE.format(links=links), base="https://www.meti.go.jp/news/index.html")
    assert str(caught.value) == "body is an HTML page (title 'METI News')"


def test_broken_json_names_the_parse_problem() -> None:
    with pytest.raises(ParseError) as caught:
        parse(b'{"version": "https://jsonfeed.org/version/1.1", ')
    assert caught.value.kind == "not_a_feed"
    assert str(caught.value).startswith("body is JSON that does not parse")


def test_feed_whose_only_item_is_broken_is_malformed() -> None:
    with pytest.raises(ParseError) as caught:
        parse('<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><ite')
    assert caught.value.kind == "malformed"
    assert "not well-formed XML at line 1" in str(caught.value)


def test_valid_feed_without_items_is_an_empty_feed() -> None:
    feed = parse(rss(""))
    assert feed.title == "T"
    assert feed.entries == ()
    assert feed.warnings == ()


def test_bozo_feed_keeps_recovered_entries_and_says_why() -> None:
    feed = parse(rss(item("Good") + item("Bad &amp & worse")))
    assert feed.entries[0].title == "Good"
    assert any("not well-formed" in w for w in feed.warnings)


# --- dates --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("Mon, 01 Jan 0000 00:00:00 GMT", None),
        ("0000-00-00T00:00:00Z", None),
        ("Fri, 31 Dec 9999 23:59:59 GMT", None),
        ("31 Feb 2025 25:61:00 +0000", None),
        ("Thu, 01 Jan 1970 00:00:00 GMT", None),
        ("1518478934", None),
        ("not a date", None),
        ("Wed, 19 Aug 2026 21:04:00 +0900", datetime(2026, 8, 19, 12, 4, tzinfo=UTC)),
        ("20 Aug 2026 03:13:00 +0900", datetime(2026, 8, 19, 18, 13, tzinfo=UTC)),
        ("2026-08-19T23:10:26+09:00", datetime(2026, 8, 19, 14, 10, 26, tzinfo=UTC)),
        ("2020/1/10 14:33:00", datetime(2020, 1, 10, 14, 33, tzinfo=UTC)),
        ("Tue, 01 Aug 2028 00:00:00 GMT", datetime(2028, 8, 1, tzinfo=UTC)),
        ("Mon, 01 Jan 2029 00:00:00 GMT", None),
    ],
)
def test_published_dates_are_utc_or_none(raw: str | None, expected: datetime | None) -> None:
    extra = "" if raw is None else f"<pubDate>{raw}</pubDate>"
    entry = parse(rss(item("dated", extra))).entries[0]
    assert entry.published_at == expected
    assert entry.published_at is None or entry.published_at.utcoffset() is not None


def test_unusable_published_falls_back_to_updated() -> None:
    extra = (
        "<pubDate>31 Feb 2025 25:61:00 +0000</pubDate><dc:date>2026-08-01T09:00:00+09:00</dc:date>"
    )
    prolog_ns = '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
    document = rss(item("x", extra)).replace('<rss version="2.0">', prolog_ns)
    assert parse(document).entries[0].published_at == datetime(2026, 8, 1, tzinfo=UTC)


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_feed(rss(item()).encode(), now=datetime(2026, 1, 1))


# --- text ---------------------------------------------------------------------------------


def test_html_to_text_drops_script_and_style_and_breaks_blocks() -> None:
    markup = (
        "<style>p{color:red}</style><p>NEDO &amp; partners</p><script>alert('x')</script>"
        "<ul><li>one</li><li>two&nbsp;three</li></ul>after<br>break &#x63A1;&#25246;"
    )
    assert html_to_text(markup) == "NEDO & partners\none\ntwo three\nafter\nbreak 採択"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=200))
def test_escaped_text_survives_html_to_text(text: str) -> None:
    # plain() collapses ASCII spaces and NBSP only: U+3000 and U+1680 are text
    assert html_to_text(html.escape(text)) == plain(text)


def test_json_feed_html_is_sanitized_for_display_and_stripped_for_matching() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "J",
        "items": [
            {
                "id": 7,
                "url": "https://example.org/7",
                "title": "Award &amp; more",
                "content_html": '<p onclick="steal()">Hi<script>alert(1)</script>'
                '<a href="javascript:x()">l</a><style>b{}</style></p>',
                "date_published": "2026-08-19T23:10:26+09:00",
                "language": "ja",
            }
        ],
    }
    entry = parse(orjson.dumps(doc)).entries[0]
    assert entry.guid == "7"
    assert entry.title == "Award & more"
    assert entry.content == "Hil"
    assert "<script" not in entry.summary_html and "onclick" not in entry.summary_html
    assert "javascript:" not in entry.summary_html
    assert entry.published_at == datetime(2026, 8, 19, 14, 10, 26, tzinfo=UTC)
    assert entry.language == "ja"


def test_plain_text_summary_is_escaped_for_display() -> None:
    summary = "<summary type='text'>a &lt;b&gt; tag</summary>"
    atom = (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>'
        f"<entry><id>urn:x</id><title>t</title>{summary}</entry></feed>"
    )
    entry = parse(atom).entries[0]
    assert entry.summary == "a <b> tag"
    assert entry.summary_html == "a &lt;b&gt; tag"


# --- caps ---------------------------------------------------------------------------------


def test_every_text_field_is_capped() -> None:
    long = "長" * 5000
    extra = (
        f"<description>&lt;p&gt;{long}&lt;/p&gt;</description>"
        f'<source url="https://x.example/{"p" * 5000}">{long}</source><guid>{"g" * 5000}</guid>'
    )
    feed = parse(rss(item(long, extra), channel=f"<title>{long}</title>"), max_field=1000)
    entry = feed.entries[0]
    assert len(feed.title) == 1000
    for value in (entry.title, entry.summary, entry.guid, entry.source_url, entry.source_title):
        assert value is not None and len(value) == 1000
    assert len(entry.summary_html) <= 1000
    assert entry.summary_html.startswith("<p>長")


def test_an_items_link_and_content_are_capped_in_characters() -> None:
    long = "長" * 5000  # the cap counts characters: 1,000 here is 3,000 bytes of UTF-8
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>T</title>'
        f"<item><title>t</title><link>https://example.org/{'p' * 5000}</link>"
        f"<content:encoded>{long}</content:encoded></item></channel></rss>"
    )
    entry = parse(body, max_field=1000).entries[0]
    assert entry.content == "長" * 1000
    assert entry.link is not None and len(entry.link) == 1000


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet="<>&;ab /=\"'pscript", max_size=300), st.integers(min_value=1, max_value=80)
)
def test_summary_html_never_exceeds_the_cap_nor_cuts_a_tag(markup: str, cap: int) -> None:
    doc = {"version": "https://jsonfeed.org/version/1", "items": [{"content_html": markup}]}
    shown = parse(orjson.dumps(doc), max_field=cap).entries[0].summary_html
    assert len(shown) <= cap
    assert shown.count("<") == shown.count(">") or shown.rfind("<") < shown.rfind(">")
    assert "<script" not in shown


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.text(alphabet='<>!?[]"=&;% abcrsitemDOCTYPENTIYlx\n', max_size=300).map(str.encode),
    )
)
def test_any_body_yields_a_feed_or_a_parse_error(body: bytes) -> None:
    try:
        result = parse(body)
    except ParseError as error:
        assert error.kind in {"not_a_feed", "rejected_entities", "malformed", "too_large"}
    else:
        assert isinstance(result, ParsedFeed)


# --- summary_html made on access ------------------------------------------------------------


def test_entries_of_the_same_item_are_equal_hashable_and_display_alike() -> None:
    first, again = (
        parse(rss(item("x", "<description>&lt;b&gt;y&lt;/b&gt;</description>"))) for _ in "ab"
    )
    assert first.entries == again.entries
    assert len({*first.entries, *again.entries}) == 1
    assert first.entries[0].summary_html == "<b>y</b>"


def test_entries_that_display_differently_are_not_equal() -> None:
    marked = parse(rss(item("x", "<description>&lt;b&gt;y&lt;/b&gt;</description>"))).entries[0]
    plain_ = parse(rss(item("x", "<description>y</description>"))).entries[0]
    assert marked.summary == plain_.summary == "y"
    assert marked.summary_html != plain_.summary_html
    assert marked != plain_


RELATIVE_RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>t</title><link>https://news.example.org/</link>
<item><title>a</title><link>/a/5</link></item>
<item><title>b</title><link>//cdn.example.net/b</link></item>
<item><title>c</title><link>c?id=7</link></item>
<item><title>d</title><link>https://other.example.com/d</link></item>
<item><title>e</title><link>javascript:alert(1)</link></item>
</channel></rss>"""


def test_relative_item_links_are_resolved_against_the_feeds_url() -> None:
    feed = parse_feed(RELATIVE_RSS, now=NOW, base="https://news.example.org/rss/all.xml")
    assert [e.link for e in feed.entries] == [
        "https://news.example.org/a/5",
        "https://cdn.example.net/b",
        "https://news.example.org/rss/c?id=7",
        "https://other.example.com/d",
        "javascript:alert(1)",  # a scheme of its own: kept, and never made a link when shown
    ]
    unresolved = parse_feed(RELATIVE_RSS, now=NOW)  # no base: as the feed gives them
    assert [e.link for e in unresolved.entries][:3] == ["/a/5", "//cdn.example.net/b", "c?id=7"]


def test_relative_json_feed_item_urls_are_resolved_too() -> None:
    body = orjson.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "j",
            "items": [{"id": "1", "url": "/p/77", "content_text": "x"}],
        }
    )
    [entry] = parse_feed(body, now=NOW, base="https://blog.example.net/feed.json").entries
    assert entry.link == "https://blog.example.net/p/77"


_KEYS = sorted(
    {
        *feedtuning.SPECIAL_KEYS,
        "tags",
        "links",
        "published",
        "published_parsed",
        "summary",
        "subtitle",
        "summary_detail",
        "href",
        "id",
        "rights",
        "entries",
        "feed",
        "title",
        "type",
        "value",
        "base64",
        "x",
    }
)
_VALUES = st.one_of(
    st.text(max_size=3),
    st.just([]),
    st.just([FeedParserDict(term="t", rel="license", href="h")]),
    st.just([FeedParserDict(rel="enclosure", href="e")]),
)


@settings(deadline=None)  # a cold first example can take a busy machine's 200 ms
@given(st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=8), st.sampled_from(_KEYS))
def test_tuned_lookups_answer_as_feedparsers_own(items: dict[str, Any], key: str) -> None:
    """FeedParserDict's `get` and `in`, tuned, answer what feedparser's own answer, aliases,
    computed keys and missing keys included (an error raised is the same error)."""
    assert feedtuning.installed()
    data = FeedParserDict(items)

    def answers() -> tuple[object, object]:
        out = []
        for look in (lambda: data.get(key, "absent"), lambda: key in data):
            try:
                out.append(look())
            except Exception as exc:  # noqa: BLE001 (feedparser's own errors, compared)
                out.append(type(exc))
        return out[0], out[1]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        tuned = answers()
        with feedtuning.as_shipped():
            stock = answers()
    assert tuned == stock


@settings(deadline=None)
@given(st.sampled_from(_KEYS), _VALUES, st.dictionaries(st.sampled_from(_KEYS), _VALUES, max_size=4))
def test_tuned_item_assignment_stores_as_feedparsers_own(
    key: str, value: object, items: dict[str, Any]
) -> None:
    tuned = FeedParserDict(items)
    tuned[key] = value
    with feedtuning.as_shipped():
        stock = FeedParserDict(items)
        stock[key] = value
    assert dict.items(tuned) == dict.items(stock)


_URI_STARTS = ["", "http://", "https:///", "HTTP:////", "feed://", "x+y.z://", "1http://", ":///"]


@settings(deadline=None)
@given(
    st.sampled_from(["", "https://news.example.org/a/b", "http:///x/", "mailto:x@y"]),
    st.sampled_from(_URI_STARTS),
    st.text(alphabet="/:.?#%[]@ aé日0", max_size=12),
)
def test_tuned_urljoin_joins_as_feedparsers_own(base: str, start: str, rest: str) -> None:
    """feedparser's URL join, tuned for the empty base it mostly has, joins alike: the slashes
    after a scheme's '//' dropped, brackets that make urllib refuse a URL included."""
    assert feedtuning.installed()
    tuned = feedparser.mixin._urljoin(base, start + rest)
    with feedtuning.as_shipped():
        stock = feedparser.mixin._urljoin(base, start + rest)
    assert tuned == stock


# the C1 controls feedparser maps, their neighbours, and text on either side of the BMP's end
_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(min_codepoint=0x7E, max_codepoint=0xA1),
        st.sampled_from("aé日本語€\ufffd\uffff\U00010000😀\U0010ffff"),
    ),
    max_size=12,
)


@settings(deadline=None)
@given(_TEXT)
def test_tuned_windows_1252_map_translates_as_feedparsers_own(text: str) -> None:
    """feedparser's map of C1 controls to windows-1252 characters, as a table: every text
    comes out alike, characters past the table's end included."""
    assert feedtuning.installed()
    tuned = text.translate(feedparser.mixin._cp1252)
    with feedtuning.as_shipped():
        stock = text.translate(feedparser.mixin._cp1252)
    assert tuned == stock


def test_c1_controls_in_a_feed_read_as_windows_1252_characters() -> None:
    """The table in place: an item title holding U+0080 and U+0099 (a windows-1252 feed read
    as Latin-1) comes out with the euro and trade mark signs feedparser maps them to."""
    body = (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
        "<item><title>5\u0080 \u65e5\u0099</title><guid>g</guid></item></channel></rss>"
    ).encode()
    [entry] = parse_feed(body, now=NOW).entries
    assert entry.title == "5€ 日™"
