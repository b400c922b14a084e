"""The bytes-level screen in front of feedparser: inflate, refuse entities, sniff the codec.

feedparser 6.0.14 expands internal entities (a 20 KB entity used 20,000 times became 400 million
characters, 32 s, 1.17 GiB) and lifts `<!ENTITY` declarations out of prolog comments into a fresh
DOCTYPE, so any entity declaration before the root element is refused here, in every encoding
feedparser might decode the document with.
"""

from __future__ import annotations

import codecs
import re
import zlib

from feedparser.encodings import parse_content_type

from monitor.errors import ParseError

_WINDOW = 64 * 1024  # bytes decoded first; real prologs end within a few hundred
_GZIP_MAGIC = b"\x1f\x8b"
_WIDE = ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
_EBCDIC_XML = b"\x4c\x6f\xa7\x94"  # '<?xm' in cp037, the marker feedparser sniffs
_MARKUP = re.compile(r"<(!--|\?|!|[A-Za-z0-9_])")
_ENTITY = re.compile(r"<!ENTITY", re.IGNORECASE)
_DOCTYPE = re.compile(r"<!DOCTYPE", re.IGNORECASE)
# Quoted literals may hold '>' or '['; alternatives start with distinct characters, so no
# backtracking blow-up, and the bound keeps a DOCTYPE with no end from costing a full scan.
_DOCTYPE_DECL = re.compile(
    r"<!DOCTYPE(?:[^>\[\"']|\"[^\"]*\"|'[^']*'){0,4096}?(?P<end>[>\[])", re.IGNORECASE
)
_MAX_PROLOG_PARTS = 10_000  # comments, PIs and declarations before the root; real feeds have few
_LITERAL = re.compile(r"\"([^\"]*)\"|'([^']*)'")
_XML_ENCODING = re.compile(r"<\?xml[^>]{0,200}?encoding\s*=\s*[\"']([A-Za-z0-9._:-]{1,40})")
_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9._:-]{1,40})", re.IGNORECASE)
_PI_ENCODING = re.compile(r"encoding=['\"]([A-Za-z0-9._:-]{1,40})['\"]")
_LONG_LINE = 4096  # characters of a first line feedparser's encoding search reads at no risk
# Public identifiers that feedparser recognises or that HTML error pages carry; never fetched.
_KNOWN_FPI = ("-//W3C//DTD ", "-//Netscape Communications//DTD RSS 0.91//EN")


def screen(body: bytes, *, content_type: str | None = None) -> None:
    """Raise ParseError("rejected_entities") if the prolog declares entities or an unsafe DTD,
    or ParseError("malformed") for a first line that feedparser would take minutes to read.

    The prolog is checked in every codec feedparser may decode the document with, found as
    feedparser finds them, and in the byte-for-byte view.
    """
    sniffed = _sniffed_codecs(body)
    declared = [m.group(1) for m in _CHARSET.finditer(content_type or "")]
    declared.append(parse_content_type(content_type or "")[1])  # feedparser strips ' quotes
    for codec in sniffed:  # the views feedparser searches for a declared encoding
        head = body[:_WINDOW].decode(codec, errors="replace")
        first = _first_line(body, codec, head)
        _check_first_line(first, declaration_alone=codec == "latin-1")  # the bytes as sent
        declared += _XML_ENCODING.findall(head[:512])
        # feedparser honours `encoding=` in any processing instruction on the first line,
        # however far into it: every value there gets a view (a superset of feedparser's pick)
        if first.startswith("<?"):
            declared += _PI_ENCODING.findall(first)
    for codec in _known(sniffed, declared):
        text = _decoded(body[:_WINDOW], codec)
        if (text is None or not _check_prolog(text)) and len(body) > _WINDOW:
            whole = _decoded(body, codec)
            if whole is not None:
                _check_prolog(whole)


def _decoded(data: bytes, codec: str) -> str | None:
    """`data` in `codec`, or None where feedparser cannot read it in that codec either."""
    try:
        return data.decode(codec, errors="replace")
    except (LookupError, TypeError):  # 'base64' and friends are not text encodings
        return None
    except UnicodeError:  # no 'replace' (idna, punycode): feedparser decodes strictly anyway
        try:
            return data.decode(codec)
        except UnicodeError:
            return None


def _first_line(body: bytes, codec: str, head: str) -> str:
    """The body's first line in `codec`; `head` is the body's first _WINDOW bytes decoded."""
    if "\n" in head or len(body) <= _WINDOW:
        return head.partition("\n")[0]
    return body.decode(codec, errors="replace").partition("\n")[0]  # longer than the window


def declaration_alone(data: bytes) -> bytes:
    """`data` with a line break after its first processing instruction, where more follows on
    the same line (a feed written on one line).

    feedparser looks for the encoding with `^<\\?.*encoding=['"](.*?)['"].*\\?>` over the
    whole first line. On a long line that search backtracks (a 40 KB one-line feed whose items
    mention `encoding='…'` 400 times: 2.2 s), and it honours an `encoding=` of any later
    processing instruction on that line. With the declaration on a line of its own, feedparser
    reads that declaration alone, as XML does; the break itself is white space XML allows there.
    Wide codecs (UTF-16/32, EBCDIC) are left as they are: `screen` refuses their slow lines.
    """
    start = 3 if data.startswith(codecs.BOM_UTF8) else 0
    if not data.startswith(b"<?", start):
        return data
    end = data.find(b"?>", start)
    if end < 0 or b"\n" in data[start:end]:
        return data  # no end, or the first line ends inside it: nothing follows on that line
    end += 2
    return data if data[end : end + 1] in (b"\n", b"") else data[:end] + b"\n" + data[end:]


def _check_first_line(line: str, *, declaration_alone: bool) -> None:
    """Refuse a first line on which feedparser's encoding search would backtrack for minutes.

    feedparser reads a declared encoding with `^<\\?.*encoding=['"](.*?)['"].*\\?>` on the
    first line. When the last `encoding=` there has no closing quote followed by `?>`, the match
    fails only after trying every quote after it against the rest of the line: a 40 KB line of
    quotes took 0.7 s, and each further `encoding=` multiplies that (13 KB of them: 5.7 s).
    A line that `declaration_alone` will cut after its first `?>` is safe.
    """
    if len(line) <= _LONG_LINE or not line.startswith("<?"):
        return
    if declaration_alone and "?>" in line:
        return
    last = max(line.rfind("encoding='"), line.rfind('encoding="'))
    if last < 0:
        return
    value = last + len("encoding='")
    closing = min((i for i in (line.find("'", value), line.find('"', value)) if i >= 0), default=-1)
    if closing < 0 or "?>" not in line[closing + 1 :]:
        raise ParseError(
            "malformed",
            f"body's first line ({len(line)} characters) has an encoding declaration that never "
            "closes; refused before parsing (feedparser would search it for minutes)",
        )


def inflate(body: bytes, *, max_bytes: int) -> bytes:
    """Return the body, gunzipped if it starts with the gzip magic; never more than max_bytes."""
    if len(body) > max_bytes:
        raise ParseError("too_large", f"body is {len(body)} bytes, over the {max_bytes}-byte cap")
    if not body.startswith(_GZIP_MAGIC):
        return body
    out = bytearray()
    data = body
    try:
        while data.startswith(_GZIP_MAGIC):  # concatenated members, as gzip(1) writes them
            inflater = zlib.decompressobj(wbits=31)
            while data and not inflater.eof:
                out += inflater.decompress(data, max_bytes + 1 - len(out))
                if len(out) > max_bytes:
                    raise ParseError(
                        "too_large", f"gzip body inflates past the {max_bytes}-byte cap"
                    )
                data = inflater.unconsumed_tail
            if not inflater.eof:
                raise ParseError("not_a_feed", "body is truncated gzip data")
            data = inflater.unused_data
    except zlib.error as exc:
        raise ParseError("not_a_feed", f"body is corrupt gzip data ({exc})") from None
    return bytes(out)


def _sniffed_codecs(body: bytes) -> list[str]:
    """The views feedparser reads a body in before any declaration: the bytes as sent (which
    stand for UTF-8, Shift_JIS, EUC-JP and every other ASCII superset), and a BOM's or a
    wide character pattern's codec."""
    found = ["latin-1"]
    found += _wide_codecs(body[:4]) or (_WIDE[:2] if b"\x00" in body[:256] else ())
    if body.startswith(_EBCDIC_XML):
        found.append("cp037")
    return found


def _known(sniffed: list[str], declared: list[str]) -> list[str]:
    """Every decoding under which `<!ENTITY` could appear to feedparser's parsers: UTF-7
    spells '<' as '+ADw-', so each declared codec gets its own view."""
    found = list(sniffed)
    for name in declared:
        try:
            found.append(codecs.lookup(name).name)
        except (LookupError, ValueError):  # ValueError: a NUL in the name
            continue  # feedparser cannot decode with an unknown codec either
    return list(dict.fromkeys(found))


def _wide_codecs(head: bytes) -> tuple[str, ...]:
    """The UTF-16/32 codec a BOM or the NUL pattern of '<' names (XML 1.0 appendix F)."""
    nul = tuple(i for i, byte in enumerate(head) if byte == 0)
    if head.startswith(codecs.BOM_UTF32_LE) or nul == (1, 2, 3):
        return ("utf-32-le",)
    if head.startswith(codecs.BOM_UTF32_BE) or nul == (0, 1, 2):
        return ("utf-32-be",)
    if head.startswith(codecs.BOM_UTF16_LE) or nul[:1] == (1,):
        return ("utf-16-le",)
    if head.startswith(codecs.BOM_UTF16_BE) or nul[:1] == (0,):
        return ("utf-16-be",)
    return ()


def _check_prolog(text: str) -> bool:
    """Refuse entity declarations before the root element; True once the root is reached."""
    pos, root, parts = 0, -1, 0
    # Jump in C between markup starts; a '<' followed by anything else is text to skip.
    while (found := _MARKUP.search(text, pos)) is not None:
        parts += 1
        if parts > _MAX_PROLOG_PARTS:
            raise ParseError(
                "rejected_entities", "body has over 10000 declarations before its root"
            )
        lt, kind = found.start(), found.group(1)
        if kind == "!--":
            pos = _after(text, "-->", lt + 4)
        elif kind == "?":
            pos = _after(text, "?>", lt + 2)
        elif _DOCTYPE.match(text, lt):
            pos = _check_doctype(text, lt)
        elif kind == "!":
            pos = _after(text, ">", lt + 2)
        else:  # feedparser ends its prolog at the first <\w, so the root is never earlier
            root = lt
            break
        if pos < 0:
            break
    # Comments count too: feedparser's replace_doctype lifts declarations out of them.
    if _ENTITY.search(text, 0, len(text) if root < 0 else root):
        raise ParseError("rejected_entities", "body declares XML entities; refused before parsing")
    return root >= 0


def _after(text: str, token: str, start: int) -> int:
    end = text.find(token, start)
    return -1 if end < 0 else end + len(token)


def _check_doctype(text: str, start: int) -> int:
    """Refuse an internal subset or an unknown external DTD; return the index after the '>'."""
    decl = _DOCTYPE_DECL.match(text, start)
    if decl is None:
        raise ParseError("rejected_entities", "body has an unterminated or oversized DOCTYPE")
    if decl.group("end") == "[":
        raise ParseError("rejected_entities", "body has a DOCTYPE internal subset; refused")
    literals = [a or b for a, b in _LITERAL.findall(decl.group(0))]
    external = literals or re.search(r"\b(SYSTEM|PUBLIC)\b", decl.group(0), re.IGNORECASE)
    if external and not _harmless_external_id(literals):
        shown = ", ".join(repr(x[:60]) for x in literals) or "no literal"
        raise ParseError("rejected_entities", f"body refers to an external DTD ({shown}); refused")
    return decl.end()


def _harmless_external_id(literals: list[str]) -> bool:
    def known(x: str) -> bool:
        return x.startswith(_KNOWN_FPI) or x == "about:legacy-compat"

    def allowed(x: str) -> bool:
        return known(x) or re.match(r"https?://[^\s]+$", x) is not None

    return any(known(x) for x in literals) and all(allowed(x) for x in literals)


def sniff_japanese(body: bytes, content_type: str | None) -> str | None:
    """Name the Japanese legacy codec of an undeclared, non-UTF-8 body, or None.

    feedparser without chardet falls back to windows-1252 and turns EUC-JP and Shift_JIS
    into mojibake; a strict decode that yields plenty of kana is a reliable tell.
    """
    if _CHARSET.search(content_type or "") or body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return None
    if _XML_ENCODING.search(body[:512].decode("latin-1")):
        return None
    try:
        body.decode("utf-8")
        return None
    except UnicodeDecodeError:
        pass
    for codec in ("euc-jp", "cp932"):
        try:
            text = body.decode(codec)
        except UnicodeDecodeError:
            continue
        wide = [c for c in text[:_WINDOW] if ord(c) > 0x7F]
        kana = sum(1 for c in wide if "\u3040" <= c <= "\u30ff")
        if wide and kana * 5 >= len(wide):
            return codec
    return None
