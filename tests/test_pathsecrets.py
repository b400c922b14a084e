"""Tokens in a URL's path are redacted wherever a URL is shown; ordinary feed paths never are."""

from __future__ import annotations

import base64
import hashlib
import re
import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.pathsecrets import looks_random
from monitor.redact import REDACTED, redact_text, redact_url, redacted_line

R = REDACTED
FEEDS = Path(__file__).parent / "fixtures" / "feeds"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # known by place, whatever the token holds
        ("https://hooks.slack.com/services/T000/B000/XXXXXXXX",
         f"https://hooks.slack.com/services/T000/B000/{R}"),
        ("https://hooks.slack.com/services/T0AB12CD3/B0EF45GH6/abcdefghijklmnopqrstuvwx/",
         f"https://hooks.slack.com/services/T0AB12CD3/B0EF45GH6/{R}/"),
        ("https://hooks.slack.com/triggers/T0AB12CD3/123456/plainword",
         f"https://hooks.slack.com/triggers/T0AB12CD3/123456/{R}"),
        ("https://discord.com/api/webhooks/123/abcdef",
         f"https://discord.com/api/webhooks/123/{R}"),
        ("https://discordapp.com/api/v10/webhooks/112233/tok-EN_1/slack?wait=true",
         f"https://discordapp.com/api/v10/webhooks/112233/{R}/slack?wait=true"),
        ("https://canary.discord.com/api/webhooks/1/short",
         f"https://canary.discord.com/api/webhooks/1/{R}"),
        # looks random, on any host; the rest of the path stays readable
        ("https://hooks.example.org/hook/9f3c2a1be47d4c0a8e5b6f7a8b9c0d1e.json",
         f"https://hooks.example.org/hook/{R}.json"),
        ("https://n8n.example.org/webhook/3f2a9c4e-1b7d-4c8e-9f0a-2b3c4d5e6f70",
         f"https://n8n.example.org/webhook/{R}"),
        ("https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage",
         f"https://api.telegram.org/{R}/sendMessage"),
        ("https://maker.ifttt.com/trigger/alert/with/key/dH3kR9xQ-mP2vL8nW5tYzB",
         f"https://maker.ifttt.com/trigger/alert/with/key/{R}"),
        ("https://x.example/in/aGVsbG8gd29ybGQgdG9rZW4gMTIzNDU2Nzg5MA==?page=2",
         f"https://x.example/in/{R}?page=2"),
        # with the password and query rules, in one URL
        ("https://u:pw@x.example/k4GYn8fX19ugqko9vbmEJFC27Y0?token=T&page=2",
         f"https://u:{R}@x.example/{R}?token={R}&page=2"),
    ],
)
def test_a_token_in_the_path_is_redacted_and_the_shape_kept(url: str, expected: str) -> None:
    assert redact_url(url) == expected


ORDINARY = [
    "https://example.org/news/2026/11/rss.xml",
    "https://example.org/feeds/world",
    "https://www.nhk.or.jp/rss/news/cat0.xml",
    "https://www.blogger.com/feeds/1234567890123456789/posts/default",
    "https://example.org/2026/11/29/noetra-begins-training-its-first-foundation-model/feed",
    "https://feeds.feedburner.com/GoogleOnlineSecurityBlog",
    "https://feeds.feedburner.com/TechCrunchIT/startups",
    "https://example.org/igri-dlja-nokia-5800-i-nokia-n97-asphalt-4-elite-racing-3d-v101.html",
    "https://example.org/COVID19_558_558_COVID19_COVID19.atom",
    "https://example.org/rss/%E3%83%8B%E3%83%A5%E3%83%BC%E3%82%B9%E9%80%9F%E5%A0%B1.xml",
    "https://www.google.com/reader/public/atom/user%2F10334955238873162315%2Fstate%2Fbroadcast",
    "https://www.meti.go.jp/ml_index_release_atom.xml",
    "https://example.org/services/T000/B000/XXXXXXXX",  # Slack's shape, not Slack's host
    "https://discord.com/api/webhooks/123",  # no token in it
    "sqlite:////var/lib/9f3c2a1be47d4c0a8e5b6f7a8b9c0d1e/events.db",  # not a web URL
]


@pytest.mark.parametrize("url", ORDINARY)
def test_an_ordinary_path_is_shown_unchanged(url: str) -> None:
    assert redact_url(url) == url


def test_a_cited_page_keeps_its_path_but_not_its_credentials() -> None:
    """An evidence source is a public page: the id in its path is what it cites."""
    page = "https://u:pw@www.digital.go.jp/news/cb912b3b-49c9-4a02-aa46-4056b96c1d4f?key=K"
    assert redact_url(page, paths=False) == (
        f"https://u:{R}@www.digital.go.jp/news/cb912b3b-49c9-4a02-aa46-4056b96c1d4f?key={R}"
    )


def _feed_addresses() -> list[str]:
    """Each corpus feed's own address and its site's: rel="self" links, channel links."""
    found: set[str] = set()
    self_link = re.compile(rb"<[^>]*rel=[\"']self[\"'][^>]*>")
    href = re.compile(rb"href=[\"'](https?://[^\"']+)")
    channel_link = re.compile(rb"<channel[^>]*>.*?<link>\s*(https?://[^<\s]+)", re.DOTALL)
    for path in FEEDS.rglob("*"):
        if path.is_file() and path.suffix != ".md":
            data = path.read_bytes()[:200_000]
            links = [m for tag in self_link.findall(data) for m in href.findall(tag)]
            links += channel_link.findall(data)
            found.update(link.decode("utf-8", "replace") for link in links)
    return sorted(found)


def test_no_feed_or_site_address_of_the_corpus_is_redacted() -> None:
    addresses = _feed_addresses()
    assert len(addresses) > 50
    assert [u for u in addresses if redact_url(u) != u] == []


@pytest.mark.parametrize(
    ("text", "random"),
    [
        ("k4GYn8fX19ugqko9vbmEJFC27Y0", True),
        ("3f2a9c4e-1b7d-4c8e-9f0a-2b3c4d5e6f70", True),
        ("0123456789abcdef0123", True),  # hexadecimal, 20 digits mixing both
        ("JBSWY3DPEHPK3PXPJBSWY3DP", True),  # base32
        ("abcdefghijklmnopqrs", False),  # 19 characters: too short to tell
        ("internationalbusinessnews", False),
        ("2026-11-29-noetra-begins-training", False),
        ("12345678901234567890123", False),  # a number
        ("GoogleOnlineSecurityBlog", False),
        ("XXXXXXXXXXXXXXXXXXXXXXXX", False),  # a placeholder: only Slack's place reveals it
    ],
)
def test_what_looks_random(text: str, random: bool) -> None:
    assert looks_random(text) is random


# --- properties --------------------------------------------------------------------------

TOKEN_CHARS = string.ascii_letters + string.digits + "-_"
B62 = string.digits + string.ascii_letters


def _base62(digest: bytes) -> str:
    number, out = int.from_bytes(digest, "big"), ""
    while number:
        number, digit = divmod(number, 62)
        out += B62[digit]
    return out


@st.composite
def generated_tokens(draw: st.DrawFn) -> str:
    """A token as services make them: random bytes (here a hash of drawn bytes) encoded."""
    digest = hashlib.sha256(draw(st.binary())).digest() * 2
    hexa = digest.hex()
    # Long enough to be caught every time: shorter ones, and a few base64url tokens of 32
    # bytes in a million, read as words (measured in pathsecrets.py).
    return draw(st.sampled_from([
        hexa[: draw(st.integers(32, 128))],
        hexa.upper()[:40],
        base64.urlsafe_b64encode(digest[:48]).decode(),
        _base62(digest[:32]),
        "-".join((hexa[:8], hexa[8:12], hexa[12:16], hexa[16:20], hexa[20:32])),  # a UUID
    ]))


LETTER_WORDS = [  # lower-case or capitalized, as words run together are written
    "news", "world", "feeds", "feed", "rss", "atom", "index", "business", "technology", "ja",
    "en", "release", "press", "topics", "ai", "noetra", "training", "Science", "Markets",
    "headlines", "posts", "default", "nedo", "go", "jp", "kouseiroudoushou", "Breaking",
    "front", "page", "strengths", "tech", "crunch", "Tech", "Crunch", "Online",
]
WORDS = st.sampled_from(
    [*LETTER_WORDS, "UPDATE", "NHK", "2026", "11", "29", "cat0", "v2", "h264", "COVID19"]
)
SLUGS = st.one_of(
    # words and numbers between separators: 2026-11-29-noetra-begins, cat0_rss
    st.lists(WORDS | st.integers(0, 10**12).map(str), min_size=1, max_size=10).flatmap(
        lambda words: st.sampled_from(["-", "_", "."]).map(lambda sep: sep.join(words))
    ),
    # words run together: worldnewsfrontpage, GoogleOnlineSecurityBlog
    st.lists(st.sampled_from(LETTER_WORDS), min_size=1, max_size=6).map("".join),
)
ORDINARY_PATHS = st.lists(SLUGS, min_size=1, max_size=6).flatmap(
    lambda parts: st.sampled_from(["", ".xml", ".rss", ".atom", ".json", ".html", "/"]).map(
        lambda end: "/" + "/".join(parts) + end
    )
)
HOSTS = st.sampled_from(["example.org", "hooks.example.net:8443", "www.nhk.or.jp", "127.0.0.1"])


@given(host=HOSTS, before=ORDINARY_PATHS, token=generated_tokens(),
       after=st.sampled_from(["", "/", ".json", "/send", "?page=2", "#top", "/x?wait=true"]))
def test_a_generated_token_never_shows_in_a_url(
    host: str, before: str, token: str, after: str
) -> None:
    url = f"https://{host}{before.rstrip('/')}/{token}{after}"
    shown = redact_url(url)
    assert token not in shown and REDACTED in shown
    for end in ["", ",", ".", ")", ":", "。", "\n"]:
        text = f"webhook failed: {url}{end} retrying"
        assert token not in redact_text(text)
        assert token not in redacted_line(text)


@given(
    token=st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=80),
    team=st.text(alphabet=string.ascii_uppercase + string.digits, min_size=1, max_size=12),
    hook_id=st.integers(0, 10**20),
    query=st.sampled_from(["", "?wait=true", "?thread_id=12"]),
)
def test_a_slack_or_discord_token_is_redacted_whatever_it_holds(
    token: str, team: str, hook_id: int, query: str
) -> None:
    slack = f"https://hooks.slack.com/services/T{team}/B{team}/{token}{query}"
    assert redact_url(slack) == f"https://hooks.slack.com/services/T{team}/B{team}/{R}{query}"
    discord = f"https://discord.com/api/webhooks/{hook_id}/{token}{query}"
    assert redact_url(discord) == f"https://discord.com/api/webhooks/{hook_id}/{R}{query}"


@given(host=HOSTS, path=ORDINARY_PATHS,
       query=st.sampled_from(["", "?page=2", "?format=rss&lang=ja", "#latest"]))
def test_an_ordinary_feed_path_is_never_redacted(host: str, path: str, query: str) -> None:
    url = f"https://{host}{path}{query}"
    assert redact_url(url) == url
    assert redact_text(f"feed 'a': {url}: server answered 404") == (
        f"feed 'a': {url}: server answered 404"
    )
