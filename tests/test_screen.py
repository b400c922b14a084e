"""The entity screen sees a document as feedparser will read it, whatever codec it picks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor import parse
from monitor.errors import ParseError
from monitor.screen import declaration_alone

LAUGHS = (
    '<!DOCTYPE rss [<!ENTITY e "' + "A" * 2000 + '">]>'
    '<rss version="2.0"><channel><title>t</title><item><title>x</title>'
    "<description>" + "&e;" * 2000 + "</description></item></channel></rss>"
)
# UTF-7 spells '<' and '>' so that no byte of the markup is '<'
UTF7 = LAUGHS.replace("<", "+ADw-").replace(">", "+AD4-").encode("ascii")


@pytest.mark.parametrize(
    ("head", "content_type"),
    [
        (b'<?xml version="1.0" encoding="utf-7"?>\n', "application/rss+xml"),
        # feedparser reads the encoding of any processing instruction on the first line…
        (b'<?foo encoding="utf-7"?>\n', "application/rss+xml"),
        # … however far into the declaration it stands
        (b'<?xml version="1.0"' + b" " * 250 + b' encoding="utf-7"?>\n', "application/rss+xml"),
        # and it strips single quotes from a header charset
        (b"", "application/rss+xml; charset='utf-7'"),
        (b"", "text/xml; charset=utf-7"),
    ],
    ids=["declared", "any-pi", "padded", "quoted-header", "header"],
)
def test_utf7_entities_are_refused_before_feedparser(
    head: bytes, content_type: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*_: object, **__: object) -> None:
        raise AssertionError("feedparser was given a document that declares entities")

    monkeypatch.setattr(parse.feedparser, "parse", never)
    with pytest.raises(ParseError) as caught:
        parse.parse_feed(head + UTF7, now=datetime.now(UTC), content_type=content_type)
    assert caught.value.kind == "rejected_entities", caught.value


def test_a_utf7_feed_without_entities_still_parses() -> None:
    plain = (
        '<rss version="2.0"><channel><title>t</title><item><title>Noetra</title>'
        "<guid>g1</guid></item></channel></rss>"
    )
    body = b'<?xml version="1.0" encoding="utf-7"?>\n' + plain.replace("<", "+ADw-").encode()
    feed = parse.parse_feed(body, now=datetime.now(UTC), content_type="application/rss+xml")
    assert [e.title for e in feed.entries] == ["Noetra"]


def test_a_utf7_declaration_far_into_a_long_first_line_is_seen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """feedparser reads `encoding=` anywhere on the first line, past any window of ours."""
    def never(*_: object, **__: object) -> None:
        raise AssertionError("feedparser was given a document that declares entities")

    monkeypatch.setattr(parse.feedparser, "parse", never)
    body = b'<?xml version="1.0"' + b" " * 70_000 + b'?><?foo encoding="utf-7"?>' + UTF7
    with pytest.raises(ParseError) as caught:
        parse.parse_feed(body, now=datetime.now(UTC), content_type="application/rss+xml")
    assert caught.value.kind == "rejected_entities", caught.value


@pytest.mark.parametrize(
    "first_line",
    [
        b"<?xml encoding='" + b"'" * 40_000,  # every quote is tried against the rest of the line
        b"<?" + b"encoding=''" * 1_200,  # and every encoding= multiplies that
    ],
    ids=["quotes", "declarations"],
)
def test_a_first_line_feedparser_would_search_for_minutes_is_refused(
    first_line: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*_: object, **__: object) -> None:
        raise AssertionError("feedparser was given the line")

    monkeypatch.setattr(parse.feedparser, "parse", never)
    with pytest.raises(ParseError) as caught:
        parse.parse_feed(first_line + b"\n<rss/>", now=datetime.now(UTC))
    assert caught.value.kind == "malformed", caught.value
    assert "never closes" in str(caught.value)


def test_a_feed_written_on_one_long_line_still_parses() -> None:
    items = "".join(
        f"<item><title>Story {n}</title><guid>g{n}</guid><description>encoding='{n}' text"
        "</description></item>"
        for n in range(400)
    )
    body = f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>{items}</channel></rss>"
    feed = parse.parse_feed(body.encode(), now=datetime.now(UTC), content_type="application/rss+xml")
    assert len(feed.entries) == 400


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"<?xml version='1.0'?><rss/>", b"<?xml version='1.0'?>\n<rss/>"),
        (b"\xef\xbb\xbf<?xml version='1.0'?><rss/>", b"\xef\xbb\xbf<?xml version='1.0'?>\n<rss/>"),
        (b"<?xml version='1.0'?>\n<rss/>", b"<?xml version='1.0'?>\n<rss/>"),  # already alone
        (b"<?xml version='1.0'\n?><rss/>", b"<?xml version='1.0'\n?><rss/>"),  # line ends inside
        (b"<rss/>", b"<rss/>"),  # no declaration
        (b"<?xml version='1.0'?>", b"<?xml version='1.0'?>"),  # nothing follows
        (b"<?xml version='1.0'", b"<?xml version='1.0'"),  # never closed
    ],
)
def test_the_declaration_gets_a_line_of_its_own(data: bytes, expected: bytes) -> None:
    assert declaration_alone(data) == expected


def test_a_one_line_feed_reports_errors_by_the_line_as_served() -> None:
    with pytest.raises(ParseError) as caught:
        parse.parse_feed(b'<?xml version="1.0"?><rss version="2.0"><channel><ite',
                         now=datetime.now(UTC))
    assert "not well-formed XML at line 1" in str(caught.value)
