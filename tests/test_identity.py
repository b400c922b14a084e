"""Item identity: normalization, offset maps, canonical URLs, item ids and publishers."""

from __future__ import annotations

import hashlib
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import identity, textfold
from monitor.identity import canonical_url, item_id, publisher
from monitor.textfold import normalize, normalize_mapped


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ＮＥＤＯ", "nedo"),
        ("ﾉｴﾄﾗ", "ノエトラ"),
        ("ﾃﾞｰﾀ", "データ"),
        ("１２３億円", "123億円"),
        ("Straße", "strasse"),
        ("①", "1"),
        ("㈱ソニー", "(株)ソニー"),
        ("  Press \n\t Release  ", "press release"),
        ("\u3000全角\u3000\u3000空白\u3000", "全角 空白"),
        ("Cafe\u0301", "café"),
        ("", ""),
    ],
)
def test_normalize_folds_width_case_and_space(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(
    ("text", "normalized", "original"),
    [
        ("ﾃﾞｰﾀ", "デ", "ﾃﾞ"),
        ("ﾃﾞｰﾀ", "ータ", "ｰﾀ"),
        ("Straße AG", "ss", "ß"),
        ("Straße AG", "ag", "AG"),
        ("第①回", "1", "①"),
        ("㈱ソニー", "株", "㈱"),
        ("㈱ソニー", "ソニー", "ソニー"),
        ("a  \n b", "a b", "a  \n b"),
        ("  ＮＥＣは", "nec", "ＮＥＣ"),
        ("x¨y", "y", "y"),
    ],
)
def test_mapped_span_names_the_original_text(text: str, normalized: str, original: str) -> None:
    mapped = normalize_mapped(text)
    start = mapped.text.index(normalized)
    first, last = mapped.original_span(start, start + len(normalized))
    assert text[first:last] == original


def test_mapped_text_refuses_empty_span() -> None:
    with pytest.raises(ValueError, match="empty"):
        normalize_mapped("abc").original_span(1, 1)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTPS://Example.COM/a/B", "https://example.com/a/B"),
        ("https://example.com:443/x", "https://example.com/x"),
        ("http://example.com:80/x", "http://example.com/x"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("https://example.com/x#comments", "https://example.com/x"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/x?utm_source=rss&utm_medium=feed", "https://example.com/x"),
        ("https://example.com/x?b=2&fbclid=abc&a=1", "https://example.com/x?b=2&a=1"),
        ("https://e.com/?gclid=1&id=7&mc_cid=2&mc_eid=3&_ga=4", "https://e.com/?id=7"),
        ("https://e.com/?UTM_Campaign=x&q=a%20b+c", "https://e.com/?q=a%20b+c"),
        ("https://e.com/?igshid=1&ref_src=twsrc&yclid=2&msclkid=3&dclid=4", "https://e.com/"),
        ("https://e.com/?ref=home", "https://e.com/?ref=home"),
        ("https://e.com/?utm%5Fsource=x&id=1", "https://e.com/?id=1"),  # the key decoded
        ("https://e.com/x?&a=1&&b=2&", "https://e.com/x?a=1&b=2"),  # empty pairs dropped
        ("  https://e.com/a  ", "https://e.com/a"),
        ("https://user@Example.com:443/", "https://user@example.com/"),
        ("http://[::1", "http://[::1"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_item_id_prefers_guid() -> None:
    got = item_id(guid=" tag:nedo,2024:1 ", link="https://e.com/a", title="t", summary="s")
    assert got == _sha("guid:tag:nedo,2024:1")


def test_item_id_falls_back_to_canonical_link_when_guid_blank() -> None:
    a = item_id(guid="  ", link="https://E.com/a?utm_source=x#top", title="t", summary="s")
    b = item_id(guid=None, link="https://e.com/a", title="other", summary="other")
    assert a == b == _sha("link:https://e.com/a")


def test_item_id_falls_back_to_normalized_text() -> None:
    a = item_id(guid=None, link=None, title="ＮＥＤＯ  採択", summary="Award\n")
    b = item_id(guid="", link=" ", title="nedo 採択", summary="award")
    assert a == b == _sha("text:nedo 採択\naward")


@pytest.mark.parametrize(
    ("guid", "expected"),
    [
        ("https://news.example.com/a/1", True),
        ("tag:nedo.go.jp,2026:press-1", True),
        ("urn:uuid:0b7a4f4e-7d0f-4e0a-9c1e-3b2a6f0d1c2e", True),
        ("  tag:x,2026:1  ", True),
        ("1", False),
        ("tn-20261101-1", False),
        ("note: 12", False),  # a colon then a space is text, not a URI scheme
        ("id:", False),
        ("12:34", False),  # a scheme starts with a letter
    ],
)
def test_a_guid_with_a_uri_scheme_is_global(guid: str, expected: bool) -> None:
    assert identity.global_guid(guid) is expected


def test_item_id_differs_by_summary() -> None:
    a = item_id(guid=None, link=None, title="t", summary="one")
    assert a != item_id(guid=None, link=None, title="t", summary="two")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://www3.nhk.or.jp/news/html/1.html", "nhk.or.jp"),
        ("https://news.google.com/rss/articles/x", "google.com"),
        ("https://www.nikkei.co.jp/", "nikkei.co.jp"),
        ("https://www.meti.go.jp/press/", "meti.go.jp"),
        ("https://www.bbc.co.uk/news", "bbc.co.uk"),
        ("https://WWW.Example.COM:8443/a", "example.com"),
        ("https://www.example.com./a", "example.com"),
        ("rss.itmedia.co.jp/rss/2.0/aiplus.xml", "itmedia.co.jp"),
        ("http://192.168.1.10/feed", None),
        ("http://[2001:db8::1]/feed", None),
        ("http://localhost:8080/", None),
        ("https://co.jp/", None),
        ("not a url at all", None),
        ("http://[::1", None),
        ("", None),
        (None, None),
    ],
)
def test_publisher(url: str | None, expected: str | None) -> None:
    assert publisher(url) == expected


def test_publisher_uses_only_the_bundled_list(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("publisher() tried to open a connection")

    identity._extractor.cache_clear()
    identity._registrable.cache_clear()
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert publisher("https://www.asahi.com/articles/x") == "asahi.com"


def _mostly(plain: str, *others: str) -> st.SearchStrategy[str]:
    """`plain` three times in four: most generated links should be plain ones."""
    return st.sampled_from([plain] * 3 * len(others) + list(others))


_url_parts = st.tuples(
    _mostly("https", "http", "HTTP", "ftp"),
    _mostly("", "user@", "u:p@"),
    st.text("abcXYZ019.-", min_size=1, max_size=12),
    _mostly("", ":80", ":443", ":8080", ":x"),
    st.one_of(st.text("/abc%;=~.-_ é", max_size=12),
              st.lists(st.text("abc%;=~.-_é", max_size=5), max_size=3).map(
                  lambda segments: "".join("/" + s for s in segments))),
    st.lists(st.sampled_from(["a=1", "utm_source=x", "", "fbclid=2", "b", "UTM_Medium=y"]),
             max_size=4),
    _mostly("", "#frag", "#"),
    _mostly("", "?"),
)


def _slow_publisher(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url if "://" in url else "//" + url).hostname
    except ValueError:
        return None
    return identity._registrable(host.rstrip(".")) if host else None


@settings(max_examples=500, deadline=None)
@given(_url_parts)
def test_links_canonical_as_written_take_the_short_way_to_the_same_answer(
        parts: tuple[str, str, str, str, str, list[str], str, str]) -> None:
    scheme, user, host, port, path, query, fragment, mark = parts
    url = f"{scheme}://{user}{host}{port}{path}" + (f"?{'&'.join(query)}" if query else mark)
    url += fragment
    assert canonical_url(url) == identity._rebuilt(url.strip())
    assert publisher(url) == _slow_publisher(url)


def test_prepare_builds_the_character_tables_before_the_first_poll() -> None:
    """The tables non-ASCII normalizing and explaining use take a fraction of a second to
    build; `prepare` (called when a poller is made) builds them, so no poll pays for them."""
    tables = (textfold._irregular, textfold._unstable)
    for table in tables:
        table.cache_clear()
    identity.prepare()
    assert [t.cache_info().currsize for t in tables] == [1, 1]
    assert normalize("ｎｏｅｔｒａ　学習") == "noetra 学習"
    assert [t.cache_info().misses for t in tables] == [1, 1]  # nothing built again
