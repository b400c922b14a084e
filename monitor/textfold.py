"""Text folded for matching and identity: NFKC, case folding, white space.

`MappedText` maps the offsets of the folded text back to the original on demand.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache, partial

# Inner white space that normalize() merges; a lone white-space character maps 1:1 to " ".
_WS_RUN = re.compile(r"\s\s+")


def _fold(text: str) -> str:
    """NFKC, case-fold, NFKC again (case folding can leave text that is not NFKC)."""
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def normalize(text: str) -> str:
    """NFKC + case folding, white space folded to single spaces and stripped."""
    return " ".join(_fold_text(text).split())


@cache
def _composes_backwards() -> frozenset[str]:
    """Starters and marks that canonical composition can merge into the character before them."""
    found = {chr(cp) for cp in range(0x1161, 0x1176)} | {chr(cp) for cp in range(0x11A8, 0x11C3)}
    for cp in range(0x30000):  # beyond this plane no character has a two-part decomposition
        parts = unicodedata.decomposition(chr(cp)).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            found.add(chr(int(parts[1], 16)))
    return frozenset(found)


def _starts_segment(ch: str) -> bool:
    """True when nothing before `ch` can change how `ch` and what follows it normalize."""
    back = _composes_backwards()
    heads = (
        ch,
        unicodedata.normalize("NFKD", ch)[:1],
        unicodedata.normalize("NFKD", _fold(ch))[:1],
    )
    return all(h and not unicodedata.combining(h) and h not in back for h in heads)


_safe_start = lru_cache(maxsize=8192)(_starts_segment)


def _runs_outside(keep: Callable[[str], bool]) -> re.Pattern[str]:
    """Runs of characters other than the basic plane's characters that `keep` accepts."""
    ranges: list[tuple[int, int]] = []
    for cp in range(0x10000):
        if 0xD800 <= cp < 0xE000:
            continue
        if keep(chr(cp)):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    body = "".join(f"\\u{a:04x}-\\u{b:04x}" if a != b else f"\\u{a:04x}" for a, b in ranges)
    return re.compile(f"[^{body}]+")


@cache
def _irregular() -> re.Pattern[str]:
    """Characters outside the basic plane's 1:1 segment starters: they need exact segmentation."""
    return _runs_outside(lambda ch: len(_fold(ch)) == 1 and _starts_segment(ch))


@cache
def _unstable() -> re.Pattern[str]:
    """Characters NFKC may change, or that may change the character before them."""
    return _runs_outside(lambda ch: unicodedata.is_normalized("NFKC", ch) and _starts_segment(ch))


# Pieces around irregular characters are short and recur (a dakuten, a full-width date).
_nfkc_piece = lru_cache(maxsize=8192)(partial(unicodedata.normalize, "NFKC"))
_fold_piece = lru_cache(maxsize=8192)(_fold)


def _fold_text(text: str) -> str:
    """_fold(text), with NFKC (the costly step) applied only around the runs it can change."""
    if text.isascii():
        return text.lower()
    if unicodedata.is_normalized("NFKC", text):  # a quick check: no run to look for
        return unicodedata.normalize("NFKC", text.casefold())
    out: list[str] = []
    pos = 0
    for run in _unstable().finditer(text):
        start = max(run.start() - 1, pos)  # the starter before a run may compose with it
        out += (text[pos:start], _nfkc_piece(text[start : run.end()]))
        pos = run.end()
    nfkc = "".join(out) + text[pos:] if pos else text
    return unicodedata.normalize("NFKC", nfkc.casefold())


@dataclass(slots=True)
class _Map:
    """Piecewise map from target offsets to source spans; no pieces means the identity."""

    at: list[int] = field(default_factory=list)  # target offset where each piece starts
    src: list[tuple[int, int, bool]] = field(default_factory=list)  # (start, end, one-to-one)

    def add(self, at: int, start: int, end: int, linear: bool) -> None:
        self.at.append(at)
        self.src.append((start, end, linear))

    def span(self, start: int, end: int) -> tuple[int, int]:
        if not self.at:
            return start, end
        i = bisect_right(self.at, start) - 1
        s0, _, linear = self.src[i]
        first = s0 + (start - self.at[i]) if linear else s0
        j = bisect_right(self.at, end - 1) - 1
        s1, e1, linear = self.src[j]
        return first, (s1 + (end - self.at[j]) if linear else e1)


def _fold_mapped(text: str, folded: str) -> _Map:
    """Map each character of folded = _fold(text) to the segment of `text` it came from."""
    mapping, pos, n = _Map(), 0, 0
    out: list[str] = []
    runs = [] if text.isascii() else list(_irregular().finditer(text))
    if not runs:
        return mapping

    def emit(start: int, end: int, linear: bool) -> None:
        nonlocal n
        # Between runs every character folds to one, on its own: that piece of `folded` is it.
        piece = folded[n : n + end - start] if linear else _fold_piece(text[start:end])
        if piece:
            mapping.add(n, start, end, linear and len(piece) == end - start)
            out.append(piece)
            n += len(piece)

    for run in runs:
        # The character before a run may compose with it ("ﾃ" + "ﾞ" -> "デ").
        start = max(run.start() - 1, pos)
        emit(pos, start, True)
        seg = start
        for i in range(start + 1, run.end()):
            if _safe_start(text[i]):
                emit(seg, i, False)
                seg = i
        emit(seg, run.end(), False)
        pos = run.end()
    emit(pos, len(text), True)
    if "".join(out) != folded:  # a composition the segmentation missed: fall back to coarse
        mapping = _Map([0], [(0, len(text), False)])
    return mapping


def _fold_space_map(folded: str) -> _Map:
    """normalize()'s white-space step, remembering where each output character came from."""
    mapping, n = _Map(), 0
    pos, stop = len(folded) - len(folded.lstrip()), len(folded.rstrip())
    runs = [run.span() for run in _WS_RUN.finditer(folded, pos, stop)]
    if pos or stop < len(folded) or runs:
        for start, end in runs:
            mapping.add(n, pos, start, True)
            mapping.add(n + start - pos, start, end, False)
            n, pos = n + start - pos + 1, end
        if pos < stop:
            mapping.add(n, pos, stop, True)
    return mapping


class MappedText:
    """normalize(original), and on demand the span of the original each of its spans came from."""

    __slots__ = ("_folded", "_maps", "original", "text")

    def __init__(self, original: str) -> None:
        self.original = original
        self._folded = folded = _fold_text(original)
        # Printable text has no white space but " "; then only doubled or outer spaces change.
        tidy = folded.isprintable() and "  " not in folded and folded[:1] != " " != folded[-1:]
        self.text = folded if tidy else " ".join(folded.split())
        self._maps: tuple[_Map, _Map] | None = None

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """The smallest span of `original` whose normalization covers text[start:end]."""
        if not 0 <= start < end <= len(self.text):
            raise ValueError(f"span [{start}, {end}) is empty or outside the normalized text")
        if self._maps is None:  # built lazily: most texts never need explaining
            # Equal lengths: no white space was stripped or merged, so that step kept every offset.
            same = len(self.text) == len(self._folded)
            spaces = _Map() if same else _fold_space_map(self._folded)
            self._maps = (_fold_mapped(self.original, self._folded), spaces)
        folds, spaces = self._maps
        if folds.at or spaces.at:
            return folds.span(*spaces.span(start, end))
        return start, end


def normalize_mapped(text: str) -> MappedText:
    """Normalize `text` like normalize() and keep the means to map offsets back to it."""
    return MappedText(text)


def prepare() -> None:
    """Build the character tables that folding and explaining non-ASCII text use (about
    0.4 s) now, rather than in the first polls."""
    _irregular()
    _unstable()


# No character beyond this case-folds to anything but itself (tests/test_store_contract.py checks
# every code point); scanning the rest would cost `log --grep` a tenth of a second.
_CASED_BELOW = 0x30000


@cache
def _folded_from() -> dict[str, frozenset[str]]:
    """Character -> the non-ASCII characters whose casefold() differs from them and holds it
    (σ: Σ and ς; s: ß, ẞ, ſ, ﬅ, ﬆ)."""
    found: dict[str, set[str]] = {}
    for cp in range(0x80, _CASED_BELOW):
        ch = chr(cp)
        folded = ch.casefold()
        if folded != ch:
            for part in folded:
                found.setdefault(part, set()).add(ch)
    return {part: frozenset(chars) for part, chars in found.items()}


def folded_from(text: str) -> frozenset[str]:
    """The non-ASCII characters whose case folding yields some character of `text`.

    A text without any of them case-folds as its ASCII capitals lowered alone; so a folded
    `text` found in a text's casefold() is found in the ASCII-lowered text too, unless that
    text holds one of these (how the database finds what `monitor log --grep` may show).
    """
    table = _folded_from()
    return frozenset().union(*(table.get(ch, frozenset()) for ch in set(text)))
