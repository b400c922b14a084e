"""Item identity: canonical URLs, item ids, publishers (registrable domains)."""

from __future__ import annotations

import hashlib
import ipaddress
import re
from functools import cache, lru_cache
from typing import Any
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from monitor import textfold

# Query keys that only track the reader; a link with and without them is the same article.
_TRACKING_KEYS = frozenset(
    {
        "fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "yclid", "_ga", "_gl",
        "igshid", "ref_src", "gbraid", "wbraid", "twclid", "li_fat_id", "_hsenc", "_hsmi",
        "mkt_tok", "oly_anon_id", "oly_enc_id", "vero_id", "rb_clickid", "s_cid",
    }
)  # fmt: skip
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Links that are canonical as written (lower-case http(s) scheme and host, no port, user or
# fragment, a path, query parameters that are all non-empty): most feed links. Recognising
# them is several times cheaper than taking them apart, and every new item has one.
_PLAIN_URL = re.compile(r"https?://([a-z0-9.-]+)(?:/[^?#\s]*)(?:\?([^&#\s]+(?:&[^&#\s]+)*))?")
# The host of an absolute URL without user, port or IPv6 literal, as urlsplit would read it.
_PLAIN_HOST = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#@:\[\]\s\\]+)(?:[/?#]|$)")


def canonical_url(url: str) -> str:
    """Scheme and host lower-cased; default port, fragment and tracking parameters dropped."""
    url = url.strip()
    plain = _PLAIN_URL.fullmatch(url)
    if plain is not None and not any(map(_is_tracking, (plain[2] or "").split("&"))):
        return url
    return _rebuilt(url)


def _rebuilt(url: str) -> str:
    """canonical_url by taking the URL apart and putting it back together."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    if parts.hostname is not None:
        host = parts.hostname
        if ":" in host:
            host = f"[{host}]"
        userinfo = netloc.rpartition("@")[0]
        keep_port = port is not None and port != _DEFAULT_PORTS.get(scheme)
        netloc = (f"{userinfo}@" if userinfo else "") + host + (f":{port}" if keep_port else "")
    path = parts.path or ("/" if netloc and scheme in _DEFAULT_PORTS else "")
    query = "&".join(p for p in parts.query.split("&") if p and not _is_tracking(p))
    return urlunsplit((scheme, netloc, path, query, ""))


def _is_tracking(param: str) -> bool:
    key = unquote_plus(param.partition("=")[0]).lower()
    return key.startswith("utm_") or key in _TRACKING_KEYS


def item_id(*, guid: str | None, link: str | None, title: str, summary: str) -> str:
    """Stable id: from the guid if any, else the canonical link, else the normalized text."""
    if guid is not None and guid.strip():
        basis = "guid:" + guid.strip()
    elif link is not None and link.strip():
        basis = "link:" + canonical_url(link)
    else:
        basis = "text:" + textfold.normalize(title) + "\n" + textfold.normalize(summary)
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()


# A GUID with a URI scheme (a permalink, `tag:`, `urn:uuid:`) names one article everywhere;
# one without (`1`, `tn-1`) is unique only among its publisher's items.
_GLOBAL_GUID = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S")


def global_guid(guid: str) -> bool:
    return _GLOBAL_GUID.match(guid.strip()) is not None


def scoped_item_id(guid: str, scope: str) -> str:
    """The id of an item whose scheme-less GUID another publisher's article already holds:
    the GUID within `scope` (the publisher, or the feed when the item names none)."""
    basis = "guid:" + guid.strip() + "\nscope:" + scope
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()


@cache
def _extractor() -> Any:
    import tldextract

    # No suffix_list_urls and no cache_dir: the bundled snapshot only, never the network or disk.
    return tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@lru_cache(maxsize=4096)
def _registrable(host: str) -> str | None:
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    found = _extractor()(host)
    if not found.suffix or not found.domain:
        return None
    return f"{found.domain}.{found.suffix}"


def prepare() -> None:
    """Build the tables identity keeps once per process now, at start, rather than in the
    first polls: the public-suffix list, and the character tables of `textfold` (about 0.5 s
    in all)."""
    _extractor()("example.org")
    textfold.prepare()


def publisher(url: str | None) -> str | None:
    """The registrable domain (eTLD+1) of `url`, or None for IP addresses and junk."""
    if not url or not url.strip():
        return None
    url = url.strip()
    plain = _PLAIN_HOST.match(url)
    if plain is not None:
        return _registrable(plain[1].lower().rstrip("."))
    try:
        host = urlsplit(url if "://" in url else "//" + url).hostname
    except ValueError:
        return None
    if not host:
        return None
    return _registrable(host.rstrip("."))
