"""feedparser, faster and reading the same: two of its hot paths done the quick way.

A changed poll spends most of its time in feedparser, and a fifth of feedparser's own time goes
to two generic paths that its data never needs:

- For every title, summary and content it stores, feedparser deep-copies the element's content
  parameters, a FeedParserDict of strings and flags (type, language, base, src, the base64
  flag; feedparser 6.0 puts nothing else there), through `copy`'s generic machinery. A
  shallow copy of strings is the same copy.
- `FeedParserDict.get` and `in` go through `__getitem__`'s chain of special keys and aliases
  (and an exception for every missing key) for every lookup, feedparser's own included:
  thousands a feed. A key that is neither special nor an alias is a plain dict's key, so it is
  looked up as one; the others take feedparser's own path.

Measured on feedparser alone, each change by itself: 0.83–0.92× its time on the benchmark's feed
and 0.89–0.91× on the corpus's news feeds (the copy); 0.90× and 0.85× (the lookups).
`install` puts both in place (monitor.parse does, once); `as_shipped` takes them out for a
while, for a reference measurement. tests/test_parse_corpus.py reads the whole corpus both ways
and compares, and tests/test_parse.py checks the lookups against feedparser's on any keys.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import feedparser.mixin
from feedparser.util import FeedParserDict

# keys FeedParserDict reads its own way: computed ones, the updated→published fallback, aliases
SPECIAL_KEYS = frozenset(
    {"category", "enclosures", "license", "updated", "updated_parsed", *FeedParserDict.keymap}
)
_STOCK_GET = FeedParserDict.get
_STOCK_CONTAINS = FeedParserDict.__contains__


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


def install() -> None:
    feedparser.mixin.copy = _ContentParamsCopy()
    FeedParserDict.get = _get
    FeedParserDict.__contains__ = _contains


def installed() -> bool:
    return FeedParserDict.get is _get and type(feedparser.mixin.copy) is _ContentParamsCopy


@contextmanager
def as_shipped() -> Iterator[None]:
    """feedparser as it ships inside the block (for a reference parse); as it was after."""
    tuned = installed()
    feedparser.mixin.copy = copy
    FeedParserDict.get = _STOCK_GET
    FeedParserDict.__contains__ = _STOCK_CONTAINS
    try:
        yield
    finally:
        if tuned:
            install()
