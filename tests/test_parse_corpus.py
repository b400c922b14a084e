"""monitor.parse against the real-world corpus in tests/fixtures/feeds (origins in SOURCES.md)."""

from __future__ import annotations

import email.utils
import gzip
import io
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import orjson
import pytest

from monitor import feedtuning
from monitor.errors import ParseError
from monitor.parse import ParsedFeed, parse_feed
from monitor.screen import inflate

FEEDS = Path(__file__).parent / "fixtures" / "feeds"
NOW = datetime(2026, 9, 1, tzinfo=UTC)
CORPUS = sorted(
    p.relative_to(FEEDS).as_posix() for p in FEEDS.rglob("*") if p.is_file() and p.suffix != ".md"
)
KINDS = {"not_a_feed", "rejected_entities", "malformed", "too_large"}


def load(name: str) -> bytes:
    return (FEEDS / name).read_bytes()


def parsed(name: str) -> ParsedFeed:
    return parse_feed(load(name), now=NOW)


def failure(name: str) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parsed(name)
    return caught.value


def independent_count(data: bytes) -> int | None:
    """Items counted by ElementTree (or json), or None when that parser refuses the body."""
    if data.startswith(b"\x1f\x8b"):
        data = gzip.decompress(data)
    if data.lstrip()[:1] == b"{":
        return len(orjson.loads(data).get("items", []))
    try:
        root = ET.fromstring(data)  # the corpus is curated: no entity tricks in it
    except (ET.ParseError, ValueError):  # ValueError: expat refuses multi-byte legacy codecs
        return None
    items = (el for el in root.iter() if re.fullmatch(r"(\{.*\})?(item|entry)", str(el.tag)))
    return sum(1 for el in items if len(el) or (el.text or "").strip())  # '<item />' is no item


def test_the_whole_corpus_is_present() -> None:
    assert len(CORPUS) == 71
    listed = (FEEDS / "SOURCES.md").read_text()
    assert all(f"`{name}`" in listed for name in CORPUS)


def test_tuned_feedparser_reads_every_feed_as_feedparser_as_it_ships() -> None:
    """monitor.feedtuning's shortcuts change nothing feedparser reads from any feed of the
    corpus: the same feed and entries, details and all."""
    assert feedtuning.installed()

    def read(data: bytes) -> tuple[object, object]:
        got = feedparser.parse(io.BytesIO(data), sanitize_html=False, resolve_relative_uris=False)
        return got.feed, got.entries

    compared = 0
    for name in CORPUS:
        try:
            parsed(name)  # feeds the monitor reads: no entity bombs, nothing over the caps
        except ParseError:
            continue
        data = inflate(load(name), max_bytes=15 * 1024 * 1024)
        with feedtuning.as_shipped():
            assert not feedtuning.installed()
            stock = read(data)
        assert feedtuning.installed()
        assert read(data) == stock, name
        compared += bool(stock[1])
    assert compared >= 50


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_file_yields_entries_or_a_named_parse_error(name: str) -> None:
    try:
        feed = parsed(name)
    except ParseError as error:
        assert error.kind in KINDS
        assert str(error) and "\n" not in str(error)
        return
    expected = independent_count(load(name))
    if expected is not None:
        assert len(feed.entries) == expected
    for entry in feed.entries:
        assert entry.title or entry.link or entry.guid or entry.summary or entry.content
        assert "<script" not in entry.summary_html.lower()
        assert not re.search(r"\son\w+\s*=", entry.summary_html)
        for text in (entry.title, entry.summary, entry.content, entry.summary_html):
            assert len(text) <= 65536
        when = entry.published_at
        assert when is None or (
            when.tzinfo is UTC and 1990 <= when.year and when <= NOW + timedelta(days=731)
        )


def test_nhk_one_has_seven_titled_items_with_dates_converted_to_utc() -> None:
    name = "ja_news/nhk_one_cat0_2026-08-19.xml"
    feed = parsed(name)
    raw = re.findall(r"<pubDate>([^<]+)</pubDate>", load(name).decode())[-7:]
    assert feed.title == "NHKONEニュース"
    assert len(feed.entries) == 7
    assert all(
        e.title and e.link and e.link.startswith("https://news.web.nhk/") for e in feed.entries
    )
    expected = [email.utils.parsedate_to_datetime(r).astimezone(UTC) for r in raw]
    assert all(r.endswith("+0900") for r in raw)
    assert [e.published_at for e in feed.entries] == expected
    assert feed.entries[0].published_at == datetime(2026, 8, 19, 12, 4, tzinfo=UTC)


def test_mainichi_rdf_entries_have_links_but_no_guid() -> None:
    feed = parsed("ja_news/mainichi_flash_2026-08-19.rdf")
    assert len(feed.entries) == 20
    assert all(
        e.guid is None and e.link and e.link.startswith("https://mainichi.jp/")
        for e in feed.entries
    )
    first = feed.entries[0]
    assert first.title == "西武・源田壮亮がサヨナラ打\u3000「初球狙う」を有言実行"
    assert first.published_at == datetime(2026, 8, 19, 14, 10, 26, tzinfo=UTC)  # 23:10:26+09:00
    assert feed.language == "ja"


def test_meti_atom_keeps_its_near_miss_headlines() -> None:
    feed = parsed("ja_gov/meti_release_atom_2026-06.xml")
    texts = [f"{e.title}\n{e.summary}" for e in feed.entries]
    assert feed.title == "経済産業省 | 新着情報"
    assert len(texts) == 25
    assert any("デジタル化・AI導入補助金において優先採択" in t for t in texts)
    assert any("2027年ベオグラード国際博覧会" in t for t in texts)
    assert any("AI分野を中心とした新たな五庁協力" in t for t in texts)
    assert feed.entries[0].published_at == datetime(2026, 6, 19, 5, 0, tzinfo=UTC)
    assert feed.language == "ja"


def test_nec_press_feed_has_no_guids_and_the_acoustic_foundation_model() -> None:
    feed = parsed("ja_corp/nec_press_2026-08.xml")
    assert feed.title == "NEC プレスリリース"
    assert len(feed.entries) == 100
    assert all(e.guid is None for e in feed.entries)
    assert any("水中音響基盤モデル" in e.title for e in feed.entries)


def test_google_news_items_carry_publisher_and_redirect_link() -> None:
    feed = parsed("en_news/monumentwatch_google_news_search_2026-07.xml")
    assert len(feed.entries) == 92
    first = feed.entries[0]
    assert first.source_url == "https://www.washingtonpost.com"
    assert first.source_title == "The Washington Post"
    for entry in feed.entries:
        assert entry.link and entry.link.startswith("https://news.google.com/rss/articles/")
        assert entry.source_url and entry.source_url.startswith("http")
        assert entry.source_title and entry.title.endswith(f" - {entry.source_title}")
    # The cluster description is escaped HTML: one line per listed article in plain text.
    assert first.summary.splitlines()[0] == (
        "Trump again shrinks two national monuments in Utah The Washington Post"
    )


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("ja_gov/mlit_pressrelease_shiftjis_2026-08.rdf", "国土交通省ホームページプレスリリース"),
        ("ja_gov/soumu_news_shiftjis_2026-08.rdf", "総務省 ホームページ新着情報"),
        ("encoding/plagger_tdiary_eucjp_2006.rdf", "いしなお!"),
    ],
)
def test_declared_japanese_legacy_encodings_decode(name: str, title: str) -> None:
    feed = parsed(name)
    assert feed.title == title
    assert feed.entries and all("\ufffd" not in e.title for e in feed.entries)


@pytest.mark.parametrize(
    ("name", "codec", "title"),
    [
        ("encoding/feedparser_chardet_eucjp_nodecl.xml", "euc-jp", "ゲーム三昧な正月"),
        (
            "encoding/feedparser_chardet_shiftjis_nodecl.xml",
            "cp932",
            "DrecomRSSに記事投稿が反映されない…",
        ),
    ],
)
def test_undeclared_japanese_encodings_are_sniffed(name: str, codec: str, title: str) -> None:
    feed = parsed(name)
    assert [e.title for e in feed.entries] == [title]
    assert f"encoding not declared; decoded as {codec}" in feed.warnings


def test_charset_from_the_content_type_header_is_honoured() -> None:
    data = load("encoding/feedparser_chardet_shiftjis_nodecl.xml")
    feed = parse_feed(data, now=NOW, content_type="application/atom+xml; charset=Shift_JIS")
    assert feed.entries[0].title == "DrecomRSSに記事投稿が反映されない…"
    assert not any("guessed" in w or "decoded as" in w for w in feed.warnings)


def test_latin1_without_declaration_is_not_taken_for_japanese() -> None:
    feed = parsed("encoding/miniflux_iso8859-1_nodecl.xml")
    assert not any("decoded as" in w for w in feed.warnings)
    assert feed.entries[0].title.startswith("Perturbateurs endocriniens")


def test_utf16_feed_with_bom_parses() -> None:
    feed = parsed("encoding/fastfeedparser_utf16.xml")
    assert feed.title == "UTF-16 Encoded Feed"
    assert feed.entries[0].title == "UTF-16 Entry 1"


@pytest.mark.parametrize(
    ("name", "title", "count"),
    [
        ("formats/feedjira_json_feed.json", "inessential.com", 20),
        ("formats/feedrs_jsonfeed_elastic_1.1.json", "Blog – InfluxData", 3),
        ("formats/feedparser_json_example.json", "My Example Feed", 2),
    ],
)
def test_json_feeds_parse(name: str, title: str, count: int) -> None:
    feed = parsed(name)
    assert feed.title == title
    assert len(feed.entries) == count
    assert all(e.title or e.content for e in feed.entries)


def test_json_feed_dates_are_converted_to_utc() -> None:
    first = parsed("formats/feedjira_json_feed.json").entries[0]
    assert first.published_at == datetime(2017, 6, 3, 5, 5, 47, tzinfo=UTC)  # 22:05:47-07:00


@pytest.mark.parametrize(
    ("name", "sentence"),
    [
        (
            "hostile/speedparser_html_error_page_zh.html.xml",
            "body is an HTML page (title '您的访问请求被拒绝 - ITeye技术社区')",
        ),
        ("hostile/speedparser_html_frameset.xml", "body is an HTML page (title 'Amy Ziari')"),
        (
            "hostile/rssparser_unrecognized_html.rss",
            "body is an HTML page (title 'Document Moved')",
        ),
        (
            "hostile/miniflux_iso88591_utf8_mismatch.xml",
            "body is XML but not a feed (root element <note>)",
        ),
    ],
)
def test_pages_that_are_not_feeds_are_named(name: str, sentence: str) -> None:
    error = failure(name)
    assert error.kind == "not_a_feed"
    assert str(error) == sentence


def test_php_warning_is_not_a_feed() -> None:
    error = failure("hostile/speedparser_php_warning_only.xml")
    assert error.kind == "not_a_feed"
    assert str(error).startswith("body is plain text starting 'Warning: Cannot modify header")


@pytest.mark.parametrize(
    ("name", "title", "count"),
    [
        ("hostile/speedparser_gzip_bytes_as_feed.bin", "Your fantasy is killing me.", 10),
        ("hostile/nodefeedparser_gzipped_nshipster.xml.gz", "NSHipster", 25),
    ],
)
def test_gzip_bodies_are_decompressed(name: str, title: str, count: int) -> None:
    assert load(name)[:2] == b"\x1f\x8b"
    feed = parsed(name)
    assert (feed.title, len(feed.entries)) == (title, count)


@pytest.mark.timeout(20)
def test_truncated_cdata_terminates_as_malformed() -> None:
    # Historically an infinite loop in feedparser; the only item is cut inside '<![CD'.
    error = failure("hostile/feedparser_incomplete_cdata.xml")
    assert error.kind == "malformed"
    assert "line 6" in str(error)


def test_truncated_feed_without_items_is_malformed() -> None:
    error = failure("en_news/feedrs_reuters_most_read_truncated_2020.xml")
    assert error.kind == "malformed"
    assert "line 19" in str(error)


def test_junk_after_the_feed_keeps_its_items() -> None:
    feed = parsed("hostile/speedparser_script_after_rss.xml")
    assert len(feed.entries) == 5
    assert any("junk after document element" in w for w in feed.warnings)


def test_nasty_script_and_style_never_reach_text_or_display_html() -> None:
    entry = parsed("hostile/plagger_nasty_script_style.rdf").entries[0]
    assert entry.content.splitlines() == ["foo bar baz", "bar", "foo"]
    for text in (entry.content, entry.summary_html):
        assert "foo()" not in text and "blah" not in text
    assert "<script" not in entry.summary_html and "onclick" not in entry.summary_html
    assert "<style" not in entry.summary_html and "style=" not in entry.summary_html
    assert '<a href="foo.html"' in entry.summary_html
