"""A feed document cut into its items at the byte level, so known items need not be parsed.

A changed feed usually carries one new item beside twenty it already had, and feedparser costs
about 0.4 ms an item. `split_items` cuts the bytes into head, items, the gaps between them and
tail, with one compiled regex per item name that walks comments, CDATA sections, processing
instructions and quoted attribute values in C; `Split.reduced` rebuilds the document without
the items a caller already knows, and `Split.newest_last` tells by the dates of the first and
last items a body listed oldest first. Whenever the cut is not certain the answer is None and
the caller parses the whole document.

The cut is made on bytes, so it is only sound where the bytes '<' and '>' mean those characters
wherever they occur: ASCII supersets whose multibyte characters never use them (UTF-8,
Shift_JIS, EUC-JP, GB18030, Big5 …). UTF-16/32 (NUL bytes, BOMs), ISO-2022-JP (ESC shifts into
two-byte characters made of ASCII bytes) and any declared codec that reads ASCII bytes otherwise
(UTF-7, HZ, EBCDIC) are refused.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from hashlib import blake2b

__all__ = ["Split", "split_items", "transparent"]


@dataclass(frozen=True, slots=True)
class Split:
    """head + items[0] + gaps[0] + items[1] + … + items[-1] + tail == the document."""

    head: bytes  # everything before the first item element
    items: tuple[bytes, ...]  # each item element exactly, start tag through end tag
    gaps: tuple[bytes, ...]  # the bytes between consecutive items, len(items) - 1 of them
    tail: bytes
    root: bytes = b""  # the prolog and the root's start tag: declaration, namespaces, xml:base

    def reduced(self, keep: Collection[int]) -> bytes:
        """The document with only the items whose index is in `keep`; every gap stays."""
        parts = [self.head]
        for index, item in enumerate(self.items):
            if index:
                parts.append(self.gaps[index - 1])
            if index in keep:
                parts.append(item)
        parts.append(self.tail)
        return b"".join(parts)

    def prints(self, context: bytes = b"") -> tuple[str, ...]:
        """A 64-bit fingerprint per item, in document order: equal bytes read in an equal
        context (the root's start tag and the caller's `context`, say a header charset) give an
        equal print. The volatile rest of the head (a build date) does not count."""
        key = blake2b(self.root + b"\0" + context, digest_size=32).digest()
        return tuple(blake2b(item, digest_size=8, key=key).hexdigest() for item in self.items)

    def newest_last(self) -> bool:
        """Whether the items run oldest first (an archive's order: new items at the end), by
        the dates of the first and last, of a kind both carry, in feedparser's preference:
        published, updated, created. Undated or dated alike: newest first, the usual order."""
        if len(self.items) < 2:
            return False
        first, last = _dates(self.items[0]), _dates(self.items[-1])
        kind = next((k for k in sorted(first) if k in last), None)
        return kind is not None and first[kind] < last[kind]


# An item's dates, whatever their prefix, by the kind feedparser reads each as: 0 published
# (RSS pubDate, Atom, dcterms:issued), 1 updated (Atom, dc:date, dcterms:modified), 2 created
_DATE = re.compile(
    rb"<(?:[^\s<>/!?\"'=:]*+:)?(pubDate|published|issued|updated|date|modified|created)\s*+>"
    rb"\s*+([^<]{1,80}?)\s*+</"
)
_DATE_KINDS = {
    b"pubDate": 0, b"published": 0, b"issued": 0,
    b"updated": 1, b"date": 1, b"modified": 1,
    b"created": 2,
}  # fmt: skip

# Names are read leniently (the parser downstream judges them); '<' in an attribute value is
# not well-formed XML, so a value holding one makes the document untokenisable.
_NAME = rb"[^\s<>/!?\"'=]++"
_ATTRS = rb"(?:\s++[^\s<>/!?\"'=]++\s*+=\s*+(?:\"[^<\"]*+\"|'[^<']*+'))*+\s*+"
# Unrolled loops: runs of ordinary bytes in one step, where a lazy '.*?' would step byte by byte
_MARKUP = (
    rb"<!--[^-]*+(?:-(?!->)[^-]*+)*+-->"
    rb"|<!\[CDATA\[[^\]]*+(?:\](?!\]>)[^\]]*+)*+\]\]>"
    rb"|<\?[^?]*+(?:\?(?!>)[^?]*+)*+\?>"
)
_DOCTYPE = rb"<!DOCTYPE(?:[^\[>\"']++|\"[^\"]*+\"|'[^']*+')*+>"  # '[' opens an internal subset
_ROOT = re.compile(
    rb"(?:\xef\xbb\xbf)?(?:[ \t\r\n]++|" + _MARKUP + b"|" + _DOCTYPE + rb")*+"
    rb"<(?P<name>" + _NAME + b")" + _ATTRS + b">",
    re.DOTALL,
)
_ITEM_NAMES = {b"rss": b"item", b"RDF": b"item", b"feed": b"entry"}  # by the root's local name
_DECLARED = re.compile(rb"(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*[\"']([^\"'>]{1,40})")
# Every ASCII byte but the backslash (a lone one makes unicode_escape warn), then escapes
# that a codec reading ASCII as something else would turn into '<'.
_PROBE = bytes(b for b in range(128) if b != 0x5C) + b"\\x3c+ADw-~{"


def _content(excluded: bytes) -> bytes:
    """Text and markup up to the next start or end tag whose name matches `excluded`.

    A tag runs to the first '>' outside quotes; its name and attributes are the parser's to
    judge. Possessive repeats: the scan never backtracks, so a broken document costs one pass.
    """
    quoted = rb"\"[^<\"]*+\"|'[^<']*+'"
    tag = (
        rb"<(?!/?" + excluded + rb"[\s/>])/?[^\s<>\"'/=!?][^<>\"']*+"
        rb"(?:>|(?:" + quoted + rb")(?:[^<>\"']++|" + quoted + rb")*+>)"
    )
    return rb"[^<]*+(?:(?:" + tag + b"|" + _MARKUP + rb")[^<]*+)*+"


# Up to the first item element, whatever its prefix: its name as written is then the item name.
_PREFIXED = rb"(?:[^\s<>/!?\"'=:]*+:)?"
_FIRST = {
    local: re.compile(
        _content(_PREFIXED + local) + rb"(?=<(?P<name>" + _PREFIXED + local + rb")[\s/>])",
        re.DOTALL,
    )
    for local in set(_ITEM_NAMES.values())
}


@lru_cache(maxsize=32)
def _splitter(name: bytes) -> re.Pattern[bytes]:
    """Content up to the next item, then that item; an item holding its own name never matches."""
    own = re.escape(name)
    content = _content(own)
    item = b"<" + own + _ATTRS + b"(?:/>|>" + content + b"</" + own + rb"\s*+>)"
    return re.compile(content + b"(" + item + b")?", re.DOTALL)


def split_items(data: bytes) -> Split | None:
    """The document cut at its item elements, or None when the cut is not certain."""
    if b"\x00" in data or b"\x1b" in data or data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    declared = _DECLARED.match(data)
    if declared and not transparent(declared.group(1).decode("ascii", "replace")):
        return None
    root = _ROOT.match(data)
    if root is None:
        return None
    local = _ITEM_NAMES.get(root.group("name").rpartition(b":")[2])
    first = None if local is None else _FIRST[local].match(data, root.end())
    if first is None:
        return None
    return _cut(data, first.end(), _splitter(first.group("name")), root.end())


def _cut(data: bytes, start: int, splitter: re.Pattern[bytes], root: int) -> Split | None:
    """The items from `start` on, or None unless item-free content runs from the last to the end."""
    items: list[bytes] = []
    gaps: list[bytes] = []
    pos = start
    while (found := splitter.match(data, pos)) is not None:
        begin, end = found.span(1)
        if begin < 0:
            break
        if items:
            gaps.append(data[pos:begin])
        items.append(data[begin:end])
        pos = end
    if found is None or found.end() != len(data):  # a stray '<', a nested or unclosed item
        return None
    return Split(data[:start], tuple(items), tuple(gaps), data[pos:], data[:root])


def _dates(item: bytes) -> dict[int, datetime]:
    """An item's first date of each kind (`_DATE_KINDS`) that reads as one."""
    found: dict[int, datetime] = {}
    for match in _DATE.finditer(item):
        kind = _DATE_KINDS[match.group(1)]
        if kind not in found and (when := _date(match.group(2))) is not None:
            found[kind] = when
    return found


def _date(text: bytes) -> datetime | None:
    """An RFC 3339 (Atom, Dublin Core) or RFC 822 (RSS) date, UTC when it names no zone."""
    written = text.decode("ascii", "replace")  # the cut admits ASCII-transparent codecs only
    try:
        when = datetime.fromisoformat(written)
    except ValueError:
        try:
            when = parsedate_to_datetime(written)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@lru_cache(maxsize=64)
def transparent(codec: str) -> bool:
    """Whether cutting text in `codec` at the bytes '<' and '>' always cuts between characters.

    It must read every ASCII byte as itself and never put '<' or '>' in a wider character. A
    name Python does not know passes: feedparser cannot decode with it either and moves on to
    UTF-8 and windows-1252.
    """
    try:
        name = codecs.lookup(codec).name
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        return True
    try:
        if _PROBE.decode(name) != _PROBE.decode("ascii"):
            return False
    except (UnicodeError, LookupError):  # LookupError: 'base64' is no text encoding
        return False  # UnicodeError: 'punycode' and 'undefined' fail on it as such
    for lead in range(0x80, 0x100):
        for mark in b"<>":
            try:
                text = bytes((lead, mark)).decode(name)
            except UnicodeError:
                continue
            if not text.endswith(chr(mark)):
                return False
    return True
