"""feedparser, faster and reading the same: four of its hot paths done the quick way.

A changed poll spends most of its time in feedparser, and a quarter of feedparser's own time
goes to generic paths that its data never needs:

- For every title, summary and content it stores, feedparser deep-copies the element's content
  parameters, a FeedParserDict of strings and flags (type, language, base, src, the base64
  flag; feedparser 6.0 puts nothing else there), through `copy`'s generic machinery. A
  shallow copy of strings is the same copy.
- `FeedParserDict.get`, `in` and `d[key] = …` go through its chain of special keys and aliases
  (and an exception for every missing key) for every lookup, feedparser's own included:
  thousands a feed. A key that is neither special nor an alias is a plain dict's key, so it is
  looked up and stored as one; the others take feedparser's own path.
- At every start tag and every link, feedparser joins a URL to its base with a regex
  substitution and `urljoin`; its base is empty unless the feed has an xml:base (no URL is
  passed to it), and a join to an empty base is the URL with the substitution's one change
  (the slashes after a scheme's '//' dropped), made here by a match.
- Every text it stores goes through `str.translate` with a dict that maps the C1 controls
  U+0080–U+009F (windows-1252 bytes read as Latin-1) to the characters they stand for. For a
  text that is not all ASCII, the dict raises and clears a KeyError for every character it
  lacks: for every character of a Japanese summary. A table that answers every code point of
  the Basic Multilingual Plane, itself or its windows-1252 character, maps alike without one;
  a code point past it is missing from both, and stays as it is.

Measured on feedparser alone, stock against tuned in turns: 0.72× its time on the benchmark's
feed and on the corpus's news feeds with the first three; the fourth takes 7 % more off both. `install` puts them in place (monitor.parse does, once);
`as_shipped` takes them out for a while, for a reference measurement. tests/test_parse_corpus.py
reads the whole corpus both ways and compares; tests/test_parse.py checks each shortcut against
feedparser's own on any input.
"""

from __future__ import annotations

import array
import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import feedparser.mixin
import feedparser.urls
from feedparser.util import FeedParserDict

# keys FeedParserDict reads its own way: computed ones, the updated→published fallback, aliases
SPECIAL_KEYS = frozenset(
    {"category", "enclosures", "license", "updated", "updated_parsed", *FeedParserDict.keymap}
)
_ALIASES = frozenset(FeedParserDict.keymap)
_STOCK_GET = FeedParserDict.get
_STOCK_CONTAINS = FeedParserDict.__contains__
_STOCK_SETITEM = FeedParserDict.__setitem__
_STOCK_URLJOIN = feedparser.urls._urljoin
_URIFIXER = feedparser.urls._urifixer
_STOCK_CP1252 = feedparser.mixin._cp1252


class _ContentParamsCopy:
    """The `copy` module as feedparser's element handling sees it, but for deep copies of its
    content parameters, which are shallow; everything else is `copy`'s own."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        if type(value) is FeedParserDict:  # feedparser's contentparams: never anything mutable
            return FeedParserDict(value)
        return copy.deepcopy(value, memo)


def _get(self: FeedParserDict, key: Any, default: Any = None) -> Any:
    if key in SPECIAL_KEYS:
        return _STOCK_GET(self, key, default)
    return dict.get(self, key, default)


def _contains(self: FeedParserDict, key: Any) -> bool:
    if key in SPECIAL_KEYS:
        return bool(_STOCK_CONTAINS(self, key))
    return dict.__contains__(self, key)


def _setitem(self: FeedParserDict, key: Any, value: Any) -> None:
    if key in _ALIASES:
        _STOCK_SETITEM(self, key, value)
    else:
        dict.__setitem__(self, key, value)


def _urljoin(base: str, uri: str) -> str:
    """feedparser's: slashes after a scheme's '//' dropped, then joined to `base`. With no base
    (feedparser has none but an xml:base, and no URL is passed to it), the join is `uri`."""
    if base:
        return str(_STOCK_URLJOIN(base, uri))
    fixed = _URIFIXER.match(uri)
    if fixed is None or fixed.end(2) == fixed.start(2):
        return uri
    return uri[: fixed.end(1)] + uri[fixed.end(2) :]


def _cp1252_table() -> array.array[int]:
    """feedparser's windows-1252 map as a table indexed by code point, U+0000 to U+FFFF."""
    table = array.array("H", range(0x10000))
    for code, char in _STOCK_CP1252.items():
        table[code] = ord(char)
    return table


_CP1252 = _cp1252_table()


def install() -> None:
    feedparser.mixin.copy = _ContentParamsCopy()
    feedparser.mixin._urljoin = _urljoin
    feedparser.mixin._cp1252 = _CP1252
    FeedParserDict.get = _get
    FeedParserDict.__contains__ = _contains
    FeedParserDict.__setitem__ = _setitem


def installed() -> bool:
    tuned_dict = FeedParserDict.get is _get and type(feedparser.mixin.copy) is _ContentParamsCopy
    return tuned_dict and feedparser.mixin._cp1252 is _CP1252


@contextmanager
def as_shipped() -> Iterator[None]:
    """feedparser as it ships inside the block (for a reference parse); as it was after.
    Process-wide: for a moment when no other thread parses (the benchmarks between polls)."""
    tuned = installed()
    feedparser.mixin.copy = copy
    feedparser.mixin._urljoin = _STOCK_URLJOIN
    feedparser.mixin._cp1252 = _STOCK_CP1252
    FeedParserDict.get = _STOCK_GET
    FeedParserDict.__contains__ = _STOCK_CONTAINS
    FeedParserDict.__setitem__ = _STOCK_SETITEM
    try:
        yield
    finally:
        if tuned:
            install()
