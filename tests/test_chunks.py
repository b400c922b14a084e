"""monitor.chunks on literal documents and generated feeds, and parse_drafts skipping known items.

The corpus is tests/fixtures/feeds, the same files as ../shared/corpus/feeds (SOURCES.md there).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import feedparser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import parse
from monitor.chunks import Split, split_items, transparent
from monitor.errors import ParseError
from monitor.parse import DraftFeed, parse_drafts
from monitor.screen import inflate

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
CORPUS = sorted(
    p.relative_to(FEEDS).as_posix() for p in FEEDS.rglob("*") if p.is_file() and p.suffix != ".md"
)
NOW = datetime(2026, 9, 1, tzinfo=UTC)


def joined(split: Split) -> bytes:
    """head + items[0] + gaps[0] + … + items[-1] + tail."""
    middle = [x for pair in zip(split.items, (*split.gaps, b""), strict=True) for x in pair]
    return split.head + b"".join(middle) + split.tail


def cut(document: str | bytes) -> Split:
    data = document.encode() if isinstance(document, str) else document
    split = split_items(data)
    assert split is not None
    assert joined(split) == data
    return split


# --- split_items on literal documents ---------------------------------------------------------

RSS = (
    '<?xml version="1.0" encoding="utf-8"?>\n<!-- generated -->\n<rss version="2.0"><channel>'
    "<title>T</title>{}<link>https://example.org/</link></channel></rss>\n"
)
RDF = (
    '<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
    ' xmlns="http://purl.org/rss/1.0/"><channel rdf:about="https://example.org/"><title>T</title>'
    '<items><rdf:Seq><rdf:li rdf:resource="https://example.org/1"/></rdf:Seq></items></channel>'
    "{}</rdf:RDF>"
)
ATOM = '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>{}</feed>'


@pytest.mark.parametrize(
    ("document", "items"),
    [
        (RSS.format("<item><title>a</title></item>\n<item><title>b</title></item>"), 2),
        (RDF.format('<item rdf:about="https://example.org/1"><title>a</title></item>'), 1),
        (ATOM.format("<entry><id>urn:1</id></entry><entry><id>urn:2</id></entry>"), 2),
        (
            (
                '<atom:feed xmlns:atom="http://www.w3.org/2005/Atom"><atom:title>A</atom:title>'
                "<atom:entry><atom:id>urn:1</atom:id></atom:entry></atom:feed>"
            ),
            1,
        ),
        (RDF.format("<rss:item>a</rss:item><rss:item>b</rss:item>").replace("rdf:RDF", "RDF"), 2),
        (
            RSS.format(
                "<item><description><![CDATA[<item>x</item> ]] ]]]></description></item><item/>"
            ),
            2,
        ),
        (RSS.format("<item>a<!-- </item> <item> -- - --></item><!-- <item> --><item>b</item>"), 2),
        (RSS.format("<item><?php echo '</item>'; ?></item>"), 1),
        (RSS.format('<item x="a>b" y=\'c>d\'><link href="?a>b"/></item>'), 1),
        (RSS.format('<item/><item rdf:about="x" /><item>c</item>'), 3),
        (RSS.format("<itemlist><items/></itemlist><item>a</item><foo:item>b</foo:item>"), 1),
        (
            '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "x>y">\n'
            + RSS.format("<item>a</item>").split("\n", 1)[1],
            1,
        ),
    ],
    ids=[
        "rss 2.0",
        "rdf 1.0",
        "atom",
        "atom prefixed",
        "rdf unprefixed root and rss: items",
        "cdata holding items",
        "comments holding items",
        "processing instruction",
        "attribute values holding '>'",
        "self-closing items",
        "names that only look like item",
        "doctype without internal subset",
    ],
)
def test_split_cuts_exactly_at_item_elements(document: str, items: int) -> None:
    split = cut(document)
    assert len(split.items) == items
    assert len(split.gaps) == items - 1
    name = split.items[0][1:].split(b">")[0].split()[0].rstrip(b"/")
    for item in split.items:
        assert item.startswith(b"<" + name)
        assert item.endswith((b"</" + name + b">", b"/>"))


def test_split_parts_are_the_ones_written() -> None:
    split = cut(RSS.format('<item>a</item> <!-- x --> <item x="1">b</item>'))
    assert split.head.endswith(b"<channel><title>T</title>")
    assert split.items == (b"<item>a</item>", b'<item x="1">b</item>')
    assert split.gaps == (b" <!-- x --> ",)
    assert split.tail == b"<link>https://example.org/</link></channel></rss>\n"


@pytest.mark.parametrize(
    "document",
    [
        RSS.format("<item><title>a</title><item>b</item></item>"),
        RSS.format("<item><title>a</title>"),
        RSS.format("<item>a</item><item><description>x</description>"),
        RSS.format("</item>"),
        '<!DOCTYPE rss [<!ENTITY e "x">]>' + RSS.format("<item>&e;</item>").split("\n", 1)[1],
        RSS.format(""),
        RSS.format("<item>a < b</item>"),
        RSS.format("<item x=unquoted>a</item>"),
        RSS.format('<item><a title="x<y">a</a></item>'),
        RSS.format("<item><!-- unclosed </item>"),
        RSS.format("<item><![CDATA[ unclosed </item>"),
        RSS.format("<item><!ELEMENT x ANY></item>"),
        "<html><body><item>a</item></body></html>",
        '<?xml version="1.0"?><note><item>a</item></note>',
        "junk before the root <rss><channel><item>a</item></channel></rss>",
        '<?xml version="1.0" encoding="utf-7"?><rss><channel><item>a</item></channel></rss>',
    ],
    ids=[
        "nested same-name item",
        "unclosed item",
        "last item unclosed",
        "stray end tag",
        "internal subset doctype",
        "no items",
        "stray '<' in text",
        "unquoted attribute on an item",
        "'<' in an attribute value",
        "unclosed comment",
        "unclosed cdata",
        "declaration in the body",
        "html root",
        "unknown root",
        "text before the root",
        "declared utf-7",
    ],
)
def test_split_refuses_what_it_cannot_cut_with_certainty(document: str) -> None:
    assert split_items(document.encode()) is None


JAPANESE = RSS.format("<item><title>国土交通省 表示</title></item><item><title>ソ能</title></item>")


@pytest.mark.parametrize(
    ("data", "items"),
    [
        (b"\xff\xfe" + JAPANESE.encode("utf-16-le"), None),
        (JAPANESE.encode("utf-16-be"), None),
        (JAPANESE.encode("utf-32"), None),
        (JAPANESE.replace("utf-8", "iso-2022-jp").encode("iso-2022-jp"), None),
        (JAPANESE.replace("utf-8", "shift_jis").encode("shift_jis"), 2),
        (JAPANESE.replace("utf-8", "euc-jp").encode("euc-jp"), 2),
        (JAPANESE.encode("utf-8"), 2),
        (b"\xef\xbb\xbf" + JAPANESE.encode("utf-8"), 2),
    ],
    ids=[
        "utf-16 bom",
        "utf-16 no bom",
        "utf-32",
        "iso-2022-jp",
        "shift_jis",
        "euc-jp",
        "utf-8",
        "utf-8 bom",
    ],
)
def test_split_takes_ascii_compatible_encodings_only(data: bytes, items: int | None) -> None:
    split = split_items(data)
    assert (None if split is None else len(split.items)) == items
    if split is not None:
        assert joined(split) == data


def test_shift_jis_trail_bytes_stay_inside_their_item() -> None:
    # 表 and ソ end in 0x5C, 能 in 0x5C too: ASCII-range trail bytes, never '<' or '>'
    data = JAPANESE.replace("utf-8", "shift_jis").encode("shift_jis")
    split = cut(data)
    assert [i.decode("shift_jis") for i in split.items] == [
        "<item><title>国土交通省 表示</title></item>",
        "<item><title>ソ能</title></item>",
    ]


@pytest.mark.parametrize(
    ("codec", "expected"),
    [
        ("utf-8", True),
        ("Shift_JIS", True),
        ("cp932", True),
        ("EUC-JP", True),
        ("gb2312", True),
        ("gb18030", True),
        ("big5", True),
        ("windows-1252", True),
        ("iso-8859-7", True),
        ("no-such-codec", True),
        ("utf-7", False),
        ("hz", False),
        ("utf-16", False),
        ("utf-32", False),
        ("cp037", False),
        ("johab", False),
        ("unicode_escape", False),
        ("base64", False),
    ],
)
def test_transparent_codecs_read_ascii_as_ascii_and_never_hide_angle_brackets(
    codec: str, expected: bool
) -> None:
    assert transparent(codec) is expected


def test_reduced_keeps_every_gap_and_only_the_kept_items() -> None:
    split = cut(RSS.format("<item>a</item>1<item>b</item>2<item>c</item>"))
    assert split.reduced(range(3)) == joined(split)
    assert split.reduced({0, 2}) == RSS.format("<item>a</item>12<item>c</item>").encode()
    assert split.reduced(()) == RSS.format("12").encode()


def test_prints_are_per_item_bytes() -> None:
    split = cut(RSS.format("<item>a</item><item>b</item><item>a</item>"))
    first, second, third = split.prints()
    assert first == third != second
    assert len(first) == 16 and int(first, 16) >= 0
    assert (
        cut(ATOM.format("<entry>a</entry>")).prints() != cut(RSS.format("<item>a</item>")).prints()
    )


@pytest.mark.parametrize("document, newest_last", [
    # RSS pubDate (RFC 822), either way, and in two zones that put the later one first
    (RSS.format("<item><pubDate>Mon, 01 Jun 2026 09:00:00 GMT</pubDate></item><item/>"
                "<item><pubDate>Tue, 02 Jun 2026 09:00:00 +0900</pubDate></item>"), True),
    (RSS.format("<item><pubDate>Tue, 02 Jun 2026 09:00:00 +0900</pubDate></item>"
                "<item><pubDate>Mon, 01 Jun 2026 09:00:00 GMT</pubDate></item>"), False),
    (RSS.format("<item><pubDate>Mon, 01 Jun 2026 09:00:00 -0500</pubDate></item>"
                "<item><pubDate>Mon, 01 Jun 2026 20:00:00 +0900</pubDate></item>"), False),
    # Atom: published before updated, whichever is written first; RFC 3339
    (ATOM.format("<entry><updated>2026-06-09T00:00:00Z</updated>"
                 "<published>2026-06-01T00:00:00Z</published></entry>"
                 "<entry><published>2026-06-02T00:00:00Z</published>"
                 "<updated>2026-06-03T00:00:00Z</updated></entry>"), True),
    # like with like: the first item's published is not compared with the last's updated
    (ATOM.format("<entry><published>2026-06-01T00:00:00Z</published>"
                 "<updated>2026-06-09T00:00:00Z</updated></entry>"
                 "<entry><updated>2026-06-05T00:00:00Z</updated></entry>"), False),
    # RSS 1.0's dc:date, with its prefix
    (RDF.format('<item rdf:about="https://example.org/1"><dc:date>2026-06-01</dc:date></item>'
                '<item rdf:about="https://example.org/2"><dc:date>2026-06-02</dc:date></item>'),
     True),
    # undated, dated on one end only, unreadable, equal, or a single item: newest first
    (RSS.format("<item>a</item><item>b</item>"), False),
    (RSS.format("<item>a</item><item><pubDate>Tue, 02 Jun 2026 09:00:00 GMT</pubDate></item>"),
     False),
    (RSS.format("<item><pubDate>yesterday</pubDate></item>"
                "<item><pubDate>Tue, 02 Jun 2026 09:00:00 GMT</pubDate></item>"), False),
    (RSS.format("<item><pubDate>Tue, 02 Jun 2026 09:00:00 GMT</pubDate></item>" * 2), False),
    (RSS.format("<item><pubDate>Tue, 02 Jun 2026 09:00:00 GMT</pubDate></item>"), False),
])
def test_newest_last_reads_the_dates_of_the_first_and_last_items(
        document: str, newest_last: bool) -> None:
    assert cut(document).newest_last() is newest_last


def test_an_item_read_in_another_context_prints_differently() -> None:
    based = '<rss version="2.0" xml:base="https://b.example/"><channel>{}</channel></rss>'
    plain, rebased = cut(RSS.format("<item>a</item>")), cut(based.format("<item>a</item>"))
    assert plain.items == rebased.items
    assert plain.prints() != rebased.prints()
    assert plain.prints() != plain.prints(b"shift_jis")
    dated = RSS.format("<lastBuildDate>today</lastBuildDate><item>a</item>")
    assert cut(dated).prints() == plain.prints()  # the volatile head does not count


# --- generated feeds ----------------------------------------------------------------------------

TEXT = st.lists(
    st.sampled_from([*"ab <>&;'\"\n]", "]]>", "日本", "採択", "ｱ", "\u3000", "é"]), max_size=24
).map("".join)
WHEN = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2030, 1, 1)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)


@st.composite
def texts(draw: st.DrawFn) -> str:
    """A text field's markup: escaped, or in a CDATA section when it can be."""
    text = draw(TEXT)
    if "]]>" not in text and draw(st.booleans()):
        return f"<![CDATA[{text}]]>"
    return escape(text)


@st.composite
def items(draw: st.DrawFn, atom: bool) -> str:
    n = draw(st.integers(min_value=0, max_value=10_000))
    when = draw(WHEN)
    title, summary = draw(texts()), draw(texts())
    between = draw(st.sampled_from(["", "\n  ", "<!-- </item></entry> -->", "<?pi <item>?>"]))
    if atom:
        return (
            f'<entry><id>urn:x:{n}</id><link href="https://example.org/{n}?a=1&amp;b=&gt;"/>'
            f"<title>{title}</title>{between}<summary>{summary}</summary>"
            f"<updated>{when.isoformat()}</updated></entry>"
        )
    return (
        f'<item><guid isPermaLink="false">g{n}</guid><link>https://example.org/{n}</link>'
        f"<title>{title}</title>{between}<description>{summary}</description>"
        f"<pubDate>{format_datetime(when)}</pubDate></item>"
    )


@st.composite
def documents(draw: st.DrawFn) -> tuple[bytes, int]:
    atom = draw(st.booleans())
    entries = draw(st.lists(items(atom), min_size=1, max_size=6))
    gaps = draw(
        st.lists(
            st.sampled_from(["", "\n", "<!-- <item> -->", " <x a='>'/> "]),
            min_size=len(entries),
            max_size=len(entries),
        )
    )
    body = "".join(g + e for g, e in zip(gaps, entries, strict=True))
    head = '<?xml version="1.0" encoding="utf-8"?>\n'
    if atom:
        document = f'{head}<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>{body}</feed>'
    else:
        document = f'{head}<rss version="2.0"><channel><title>T</title>{body}</channel></rss>'
    return document.encode(), len(entries)


@settings(max_examples=300, deadline=None)
@given(documents())
def test_generated_feeds_split_into_their_items_and_join_back(document: tuple[bytes, int]) -> None:
    data, count = document
    split = split_items(data)
    assert split is not None
    assert len(split.items) == count
    assert joined(split) == data


def entry_fields(data: bytes) -> list[tuple[Any, ...]]:
    result = feedparser.parse(io.BytesIO(data), sanitize_html=False, resolve_relative_uris=False)
    assert not result.bozo, result.get("bozo_exception")
    keys = ("id", "link", "title", "summary", "published_parsed", "updated_parsed")
    return [tuple(dict.get(e, k) for k in keys) for e in result.entries]


@settings(max_examples=100, deadline=None)
@given(documents(), st.data())
def test_feedparser_reads_kept_items_of_a_reduced_feed_as_in_the_whole(
    document: tuple[bytes, int], data: st.DataObject
) -> None:
    whole, count = document
    keep = data.draw(st.sets(st.integers(min_value=0, max_value=count - 1)))
    split = split_items(whole)
    assert split is not None
    expected = [e for i, e in enumerate(entry_fields(whole)) if i in keep]
    assert entry_fields(split.reduced(keep)) == expected


# --- parse_drafts on the corpus ------------------------------------------------------------------


def drafts(data: bytes, known: frozenset[str] = frozenset()) -> DraftFeed | ParseError:
    try:
        return parse_drafts(data, now=NOW, known=known)
    except ParseError as error:
        return error


def keys(feed: DraftFeed) -> list[tuple[Any, ...]]:
    built = (d.build() for d in feed.entries)
    return [(e.guid, e.link, e.title, e.published_at) for e in built]


def inflated(name: str) -> bytes:
    return inflate((FEEDS / name).read_bytes(), max_bytes=1 << 30)


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) == 71
    assert sum(split_items(inflated(name)) is not None for name in CORPUS) >= 55


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_file_prints_every_item_or_none(name: str) -> None:
    data = inflated(name)
    split = split_items(data)
    if split is not None:
        assert joined(split) == data
        assert split.reduced(range(len(split.items))) == data
    feed = drafts(data)
    if isinstance(feed, ParseError):
        return
    assert feed.skipped == 0
    if split is None or name.endswith(".json"):
        assert feed.prints == ()
    else:  # sniffed Japanese is printed after its transcoding to UTF-8: the same items
        assert len(feed.prints) == len(split.items)


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_file_with_every_item_known_fails_only_as_before(name: str) -> None:
    data = (FEEDS / name).read_bytes()
    whole = drafts(data)
    if isinstance(whole, ParseError):  # no prints come back: take them from the bytes
        split = split_items(inflated(name))
        again = drafts(data, frozenset(split.prints() if split else ()))
        assert isinstance(again, ParseError)
        assert (again.kind, str(again)) == (whole.kind, str(whole))
        return
    known = drafts(data, frozenset(whole.prints))
    assert isinstance(known, DraftFeed), known
    assert known.prints == whole.prints
    if known.skipped:
        assert known.skipped == len(whole.prints)
        assert known.entries == ()
        assert (known.title, known.link, known.language) == (
            whole.title,
            whole.link,
            whole.language,
        )
    else:  # read whole after all: the same entries
        assert keys(known) == keys(whole)


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_file_with_every_second_item_known_yields_exactly_the_others(name: str) -> None:
    data = (FEEDS / name).read_bytes()
    whole = drafts(data)
    if isinstance(whole, ParseError) or len(whole.prints) < 2:
        return
    odd, even = frozenset(whole.prints[1::2]), frozenset(whole.prints[0::2])
    half = drafts(data, odd)
    assert isinstance(half, DraftFeed)
    if not half.skipped:  # the reduced document was malformed or decoded otherwise
        assert keys(half) == keys(whole)
        return
    assert half.skipped == len(whole.prints) // 2
    everything = keys(whole)
    if len(everything) == len(whole.prints):  # one entry per item: the known ones, exactly
        assert keys(half) == everything[0::2]
        return
    other = drafts(data, even - odd)  # empty entries were dropped: no entry lost nor invented
    assert isinstance(other, DraftFeed) and other.skipped
    assert sorted(keys(half) + keys(other), key=repr) == sorted(everything, key=repr)


def test_corpus_has_reduced_parses_and_fallbacks() -> None:
    """The table above must exercise both branches, or it proves nothing."""
    skipped = fell_back = 0
    for name in CORPUS:
        whole = drafts((FEEDS / name).read_bytes())
        if isinstance(whole, DraftFeed) and len(whole.prints) >= 2:
            half = drafts((FEEDS / name).read_bytes(), frozenset(whole.prints[1::2]))
            assert isinstance(half, DraftFeed)
            skipped += bool(half.skipped)
            fell_back += not half.skipped
    assert skipped >= 40
    assert fell_back >= 3


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_file_with_nothing_known_parses_as_the_whole_document(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = (FEEDS / name).read_bytes()
    now = drafts(data)
    monkeypatch.setattr(parse, "split_items", lambda data: None)  # today's path: never split
    before = drafts(data)
    if isinstance(before, ParseError):
        assert isinstance(now, ParseError) and (now.kind, str(now)) == (before.kind, str(before))
        return
    assert isinstance(now, DraftFeed)
    assert (now.title, now.link, now.language, now.warnings) == (
        before.title,
        before.link,
        before.language,
        before.warnings,
    )
    built_now = [d.build() for d in now.entries]
    built_before = [d.build() for d in before.entries]
    assert built_now == built_before
    assert [e.summary_html for e in built_now] == [e.summary_html for e in built_before]


# --- parse_drafts skipping known items ---------------------------------------------------------


def rss_items(*items: bytes, declaration: bytes = b'<?xml version="1.0"?>') -> bytes:
    return (
        declaration
        + b'<rss version="2.0"><channel><title>T</title>'
        + b"".join(items)
        + b"</channel></rss>"
    )


def rss_item(n: int, title: bytes) -> bytes:
    return (
        b"<item><guid>https://example.org/"
        + str(n).encode()
        + b"</guid><title>"
        + title
        + b"</title></item>"
    )


def test_only_the_new_item_is_parsed_beside_known_ones() -> None:
    old = [rss_item(n, b"old %d" % n) for n in range(3)]
    first = parse_drafts(rss_items(*old), now=NOW)
    assert first.skipped == 0 and len(first.prints) == 3
    second = parse_drafts(rss_items(rss_item(9, b"new"), *old), now=NOW, known=first.prints)
    assert [d.build().title for d in second.entries] == ["new"]
    assert second.skipped == 3
    assert second.prints[1:] == first.prints
    assert second.title == "T" and second.warnings == ()


def test_a_feed_whose_items_are_all_known_is_an_empty_feed_not_an_error() -> None:
    body = rss_items(rss_item(1, b"a"), rss_item(2, b"b"))
    known = parse_drafts(body, now=NOW).prints
    again = parse_drafts(body, now=NOW, known=known)
    assert (again.entries, again.skipped, again.prints, again.title) == ((), 2, known, "T")


def test_a_malformed_new_item_makes_the_whole_document_read() -> None:
    good = rss_item(1, b"good")
    body = rss_items(good, rss_item(2, b"bad &amp & worse"))
    whole = parse_drafts(body, now=NOW)
    again = parse_drafts(body, now=NOW, known=frozenset(whole.prints[:1]))
    assert again.skipped == 0
    assert [d.build() for d in again.entries] == [d.build() for d in whole.entries]
    assert again.warnings == whole.warnings and any("not well-formed" in w for w in whole.warnings)


def test_a_known_item_that_changes_the_codec_makes_the_whole_document_read() -> None:
    # The known item is windows-1252 (é as 0xE9), so the whole body is not UTF-8 and feedparser
    # reads it all as windows-1252; the new item alone would pass as UTF-8 and read otherwise.
    body = rss_items(rss_item(1, b"caf\xe9"), rss_item(2, "it’s 日本".encode()))
    whole = parse_drafts(body, now=NOW)
    assert [d.build().title for d in whole.entries] == ["café", "itâ€™s æ—¥æœ¬"]
    again = parse_drafts(body, now=NOW, known=frozenset(whole.prints[:1]))
    assert again.skipped == 0
    assert [d.build().title for d in again.entries] == ["café", "itâ€™s æ—¥æœ¬"]


def test_a_known_item_in_the_codec_the_whole_uses_is_skipped() -> None:
    body = rss_items(rss_item(1, b"caf\xe9"), rss_item(2, b"cr\xe8me"))
    whole = parse_drafts(body, now=NOW)
    again = parse_drafts(body, now=NOW, known=frozenset(whole.prints[:1]))
    assert again.skipped == 1
    assert [d.build().title for d in again.entries] == ["crème"]
    assert again.warnings == whole.warnings


def test_a_header_charset_that_hides_angle_brackets_is_never_split() -> None:
    body = rss_items(rss_item(1, b"a"))
    assert parse_drafts(body, now=NOW).prints != ()
    for content_type in ("application/rss+xml; charset=utf-7", "text/xml; charset='hz'"):
        assert parse_drafts(body, now=NOW, content_type=content_type).prints == ()


def test_json_feeds_have_no_prints() -> None:
    body = b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "1", "title": "t"}]}'
    feed = parse_drafts(body, now=NOW, known=frozenset(["x"]))
    assert (feed.prints, feed.skipped, len(feed.entries)) == ((), 0, 1)
