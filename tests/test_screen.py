"""The entity screen sees a document as feedparser will read it, whatever codec it picks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor import parse
from monitor.errors import ParseError

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
