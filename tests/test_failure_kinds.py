"""Every failure kind a loopback server can cause, polled by the daemon: the FeedFailed it records."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from monitor import workstate
from monitor.runtime import open_store
from monitor.store import Recorded
from tests.feedserver import FeedServer
from tests.kit import cli, closed_port, load, monitor_cmd, rss, run_once, write_config

FEED = rss([{"title": "Unrelated story", "link": "https://news.example.com/a/1", "guid": "g1"}])


@dataclass(frozen=True)
class Case:
    """One failure: how the server is set up, the settings it needs, and what the message says."""

    arrange: Callable[[FeedServer], str]  # sets the routes up; returns the feed URL
    problem: str  # the part of the message that names the problem
    settings: str = ""
    allow_private: bool = True


def _route(path: str, **options: object) -> Callable[[FeedServer], str]:
    def arrange(server: FeedServer) -> str:
        server.route(path, **options)
        return server.url(path)

    return arrange


def _loop(server: FeedServer) -> str:
    server.route("/loop-a.xml", status=302, redirect_to="/loop-b.xml")
    server.route("/loop-b.xml", status=302, redirect_to="/loop-a.xml")
    return server.url("/loop-a.xml")


def _chain(server: FeedServer) -> str:
    for hop in range(4):  # three hops are allowed here (max_redirects = 2 plus the request)
        server.route(f"/hop{hop}.xml", status=302, redirect_to=f"/hop{hop + 1}.xml")
    server.route("/hop4.xml", body=FEED)
    return server.url("/hop0.xml")


CASES = {
    # fetch: the deadline, the cap, redirects, addresses, transport, status
    "timeout": Case(
        _route("/slow.xml", body=FEED, trickle=50.0),
        "no complete answer within 1 s",
        settings='fetch_timeout = "1s"',
    ),
    "too_large": Case(
        _route("/big.xml", body=FEED + b" " * 2000),
        "body is larger than 1000 bytes once decoded",
        settings="max_feed_bytes = 1000",
    ),
    "redirect_loop": Case(_loop, "redirect loop ("),
    "too_many_redirects": Case(_chain, "more than 2 redirects", settings="max_redirects = 2"),
    "private_address": Case(
        _route("/feed.xml", body=FEED),
        "connecting to 127.0.0.1 refused: loopback address",
        allow_private=False,
    ),
    "decode": Case(
        _route(
            "/zipped.xml",
            body=b"\x1f\x8b\x07" + b"\x00" * 20,
            headers={"Content-Encoding": "gzip"},
        ),
        "compressed body is corrupt",
    ),
    "protocol": Case(_route("/nowhere.xml", status=302), "redirect 302 without a Location"),
    "connect": Case(
        lambda server: f"http://127.0.0.1:{closed_port()}/feed.xml", "connection refused"
    ),
    "tls": Case(
        lambda server: server.url("/feed.xml").replace("http://", "https://"),
        "TLS handshake failed",
    ),
    "dns": Case(lambda server: "http://no-such-host.invalid/feed.xml", "does not resolve"),
    "rate_limited": Case(_route("/busy.xml", status=429), "server answered 429 Too Many Requests"),
    "http_4xx": Case(_route("/missing.xml", status=404), "server answered 404 Not Found"),
    "http_5xx": Case(
        _route("/broken.xml", status=500), "server answered 500 Internal Server Error"
    ),
    "gone": Case(_route("/old.xml", status=410), "server answered 410 Gone"),
    # parse: the body came, and is refused or is no feed
    "rejected_entities": Case(
        _route(
            "/entities.xml",
            body=b'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY a "b">]>\n'
            + FEED.split(b"\n", 1)[1],
        ),
        "body has a DOCTYPE internal subset; refused",
    ),
    "not_a_feed": Case(
        _route(
            "/page.xml",
            body=b"<html><head><title>Access denied</title></head></html>",
            headers={"Content-Type": "text/html"},
        ),
        "body is an HTML page (title 'Access denied')",
    ),
    "malformed": Case(
        _route(
            "/cut.xml",
            body=b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><ite',
        ),
        "feed has no recoverable entries (not well-formed XML",
    ),
}
PARSE_KINDS = ("rejected_entities", "not_a_feed", "malformed")


def poll_failing(tmp_path: Path, server: FeedServer, kind: str) -> tuple[str, list[Recorded]]:
    """Configure one feed that fails with `kind`, poll it with `monitor run --once`, and
    return its URL and the feed's events."""
    case = CASES[kind]
    url = case.arrange(server)
    path = write_config(tmp_path, feeds={"f": url}, extra_settings=case.settings)
    if not case.allow_private:
        text = path.read_text()
        path.write_text(text.replace("allow_private_networks = true", "allow_private_networks = false"))
    run_once(path)
    store = open_store(load(path))
    try:
        return url, list(store.read(stream="feed:f"))
    finally:
        store.close()


@pytest.mark.parametrize("kind", list(CASES))
def test_each_failure_is_recorded_with_its_kind_and_a_sentence(
    tmp_path: Path, feed_server: FeedServer, kind: str
) -> None:
    url, events = poll_failing(tmp_path, feed_server, kind)
    assert [(r.type, r.data["kind"]) for r in events] == [("FeedFailed", kind)]
    failed = events[0].data
    assert failed["url"] == url
    assert CASES[kind].problem in failed["message"]
    assert failed["message"].startswith(f"{url}: ")


@pytest.mark.parametrize("kind", PARSE_KINDS)
def test_parse_failures_name_the_feed_url_in_their_message(
    tmp_path: Path, feed_server: FeedServer, kind: str
) -> None:
    url, events = poll_failing(tmp_path, feed_server, kind)
    assert [r.data["kind"] for r in events] == [kind]
    assert url in events[0].data["message"]


def test_private_address_is_refused_before_any_request(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    _, events = poll_failing(tmp_path, feed_server, "private_address")
    assert [r.data["kind"] for r in events] == ["private_address"]
    assert feed_server.hits("/feed.xml") == 0


def test_the_private_address_hint_names_the_setting_that_allows_it(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.route("/feed.xml", body=FEED)
    path = write_config(tmp_path, feeds={"f": feed_server.url("/feed.xml")})
    text = path.read_text()
    path.write_text(text.replace("allow_private_networks = true", "allow_private_networks = false"))
    result = cli(path, "poll", "f")
    assert result.returncode == 1 and result.stderr.startswith("error: feed 'f': private_address: ")
    assert "hint: set settings.allow_private_networks = true only if" in result.stderr
    path.write_text(text)  # as the hint says
    assert cli(path, "poll", "f").returncode == 0


@pytest.mark.parametrize("status", [302, 307])
def test_temporary_redirect_is_followed_without_moving_the_feed(
    tmp_path: Path, feed_server: FeedServer, status: int
) -> None:
    feed_server.route("/feed.xml", status=status, redirect_to="/today.xml")
    feed_server.route("/today.xml", body=FEED)
    url = feed_server.url("/feed.xml")
    path = write_config(tmp_path, feeds={"f": url})
    run_once(path)
    run_once(path)
    store = open_store(load(path))
    try:
        recorded = [r.type for r in store.read()]
        assert recorded.count("ItemDiscovered") == 1
        assert "FeedMoved" not in recorded and "FeedFailed" not in recorded
        assert workstate.feed_rows(store)["f"].url == url
    finally:
        store.close()
    # the second poll asked the configured URL again, not the redirect's target
    assert feed_server.hits("/feed.xml") == 2 and feed_server.hits("/today.xml") == 2


def test_gzip_body_served_as_gzip_is_decoded_not_a_decode_failure(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    # the counterpart of the "decode" case: the same header with an intact body polls fine
    feed_server.route("/zipped.xml", body=gzip.compress(FEED), headers={"Content-Encoding": "gzip"})
    path = write_config(tmp_path, feeds={"f": feed_server.url("/zipped.xml")})
    run_once(path)
    store = open_store(load(path))
    try:
        assert [r.type for r in store.read(stream="feed:f")] == []
        assert [r.type for r in store.read()].count("ItemDiscovered") == 1
    finally:
        store.close()


def test_xxe_feed_is_refused_and_the_named_file_reaches_no_event_nor_the_database(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    sentinel = tmp_path / "secret.txt"
    secret = "SENTINEL-b7e2a9-must-never-be-stored"
    sentinel.write_text(secret)
    served = "SENTINEL-c41f07-served-never-fetched"
    feed_server.route("/secret.txt", body=served.encode(), headers={"Content-Type": "text/plain"})
    # rss() escapes titles; the references must stay live
    body = rss([{"title": "&file; &web;", "guid": "x"}]).split(b"\n", 1)[1].replace(b"&amp;", b"&")
    prolog = (
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY file SYSTEM "{sentinel.as_uri()}">\n'
        f'<!ENTITY web SYSTEM "{feed_server.url("/secret.txt")}">\n]>\n'
    )
    feed_server.route("/xxe.xml", body=prolog.encode() + body)
    url = feed_server.url("/xxe.xml")
    path = write_config(tmp_path, feeds={"f": url})
    run_once(path)
    store = open_store(load(path))
    try:
        records = list(store.read())
        [failed] = [r for r in records if r.type == "FeedFailed"]
    finally:
        store.close()
    assert (failed.data["kind"], failed.data["url"]) == ("rejected_entities", url)
    assert "ItemDiscovered" not in [r.type for r in records]
    for record in records:
        text = repr((record.data, record.meta))
        assert secret not in text and served not in text, record.type
    assert feed_server.hits("/secret.txt") == 0
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("events.db*"))
    assert url.encode() in stored  # the scan reads what the log holds, as it is stored
    for leaked in (secret, served):
        assert leaked.encode() not in stored and leaked.encode("utf-16-le") not in stored


def test_an_unreadable_redirect_fails_its_feed_and_the_run_goes_on(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """A Location that urljoin cannot even split ("http://[::1") is this feed's failure only."""
    feed_server.route("/bad.xml", status=302, headers={"location": "http://[::1"})
    feed_server.route("/good.xml", body=FEED)
    feeds = {"bad": feed_server.url("/bad.xml"), "good": feed_server.url("/good.xml")}
    path = write_config(tmp_path, feeds=feeds)
    assert run_once(path) == 0
    store = open_store(load(path))
    try:
        [failed] = store.read(stream="feed:bad")
        discovered = list(store.read(types=("ItemDiscovered",)))
        leased = {r.feed_id: r.lease_expires for r in workstate.feed_rows(store).values()}
    finally:
        store.close()
    assert (failed.type, failed.data["kind"]) == ("FeedFailed", "protocol")
    assert "unreadable Location" in failed.data["message"]
    assert [r.data["feed_id"] for r in discovered] == ["good"]
    assert leased["bad"] is None  # released: the next poll is not held back by a lease


def test_an_unforeseen_error_fails_its_feed_and_the_run_goes_on(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug met by one feed (simulated: no server can make the fetcher raise this) is recorded
    as that feed's failure; the other feeds are polled."""
    from monitor.fetch import Fetcher

    real = Fetcher.fetch

    async def fetch(self: Fetcher, url: str, **kwargs: object) -> object:
        if url.endswith("/bug.xml"):
            raise RuntimeError("a bug")
        return await real(self, url, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Fetcher, "fetch", fetch)
    feed_server.route("/bug.xml", body=FEED)
    feed_server.route("/good.xml", body=FEED)
    feeds = {"bug": feed_server.url("/bug.xml"), "good": feed_server.url("/good.xml")}
    path = write_config(tmp_path, feeds=feeds)
    assert run_once(path) == 0
    store = open_store(load(path))
    try:
        [failed] = store.read(stream="feed:bug")
        discovered = list(store.read(types=("ItemDiscovered",)))
    finally:
        store.close()
    assert failed.data["kind"] == "unexpected"
    assert "unexpected RuntimeError: a bug" in failed.data["message"]
    assert len(discovered) == 1


def test_the_poll_summary_counts_every_new_item(tmp_path: Path, feed_server: FeedServer) -> None:
    """An item that moves a milestone is still a new item in `monitor poll`'s summary."""
    feed_server.route("/news.xml", body=rss([
        {"title": "Noetra begins training its model", "link": "https://www.nedo.go.jp/n/1",
         "guid": "n1"},
        {"title": "Harbour weather", "link": "https://news.example.com/a/2", "guid": "n2"},
    ]))
    path = write_config(tmp_path, feeds={"news": feed_server.url("/news.xml")})
    done = monitor_cmd("--config", str(path), "poll", "news")
    assert done.returncode == 0, done.stderr
    assert "2 new items, 0 seen elsewhere, 1 transition" in done.stdout
