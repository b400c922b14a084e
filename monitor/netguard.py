"""Which addresses an outgoing connection may reach, and what a numeric host name stands for.

Both functions are pure. `monitor.connect` applies `is_forbidden` at connect time, to the
addresses a connection actually uses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

__all__ = ["IPAddress", "Policy", "is_forbidden", "parse_host_literal"]

IPAddress = IPv4Address | IPv6Address
Policy = Callable[[IPAddress], str | None]

# Checked in order; the first match names the reason. Ranges from the IANA special-purpose
# address registries (RFC 6890 and its updates).
_V4_RANGES: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "unspecified"),
        ("127.0.0.0/8", "loopback"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("169.254.0.0/16", "link-local"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),  # includes the broadcast address
        ("192.0.0.0/24", "reserved"),
        ("192.0.2.0/24", "reserved"),
        ("192.88.99.0/24", "reserved"),
        ("198.18.0.0/15", "reserved"),
        ("198.51.100.0/24", "reserved"),
        ("203.0.113.0/24", "reserved"),
    )
)

_V6_RANGES: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), reason)
    for net, reason in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "reserved"),  # deprecated IPv4-compatible addresses
        ("64:ff9b:1::/48", "private"),  # local-use NAT64, RFC 8215
        ("100::/64", "reserved"),  # discard-only
        ("2001::/32", "reserved"),  # Teredo hides its IPv4 address; nothing to check it against
        ("2001:db8::/32", "reserved"),
        ("fc00::/7", "unique local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "reserved"),  # deprecated site-local
        ("ff00::/8", "multicast"),
    )
)

_NAT64 = IPv6Network("64:ff9b::/96")
_SIX_TO_FOUR = IPv6Network("2002::/16")


def is_forbidden(ip: IPAddress) -> str | None:
    """Why a fetch must not connect to `ip` ("loopback", "private", …), or None if it may."""
    if isinstance(ip, IPv4Address):
        return _v4_reason(ip)
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped"
    embedded = _embedded_v4(ip)
    if embedded is not None:
        inner = _v4_reason(embedded)
        return None if inner is None else f"{inner} (embedded in {_embedding(ip)})"
    for net, reason in _V6_RANGES:
        if ip in net:
            return reason
    return None if ip.is_global else "reserved"


def _v4_reason(ip: IPv4Address) -> str | None:
    for net, reason in _V4_RANGES:
        if ip in net:
            return reason
    return None if ip.is_global else "reserved"


def _embedded_v4(ip: IPv6Address) -> IPv4Address | None:
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    return None


def _embedding(ip: IPv6Address) -> str:
    return "NAT64" if ip in _NAT64 else "6to4"


def parse_host_literal(host: str) -> IPAddress | None:
    """The address a numeric host stands for, read as inet_aton and browsers do; None for names.

    Accepts `[::1]` and bare IPv6 text, and the IPv4 forms `127.0.0.1`, `127.1`, `2130706433`,
    `0x7f.0.0.1`, `0177.0.0.1` (1 to 4 parts, each decimal, 0-octal or 0x-hex, the last part
    filling the remaining bytes).
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        try:
            return IPv6Address(text.split("%", 1)[0])
        except ipaddress.AddressValueError:
            return None
    return _parse_v4(text)


def _parse_v4(text: str) -> IPv4Address | None:
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers: list[int] = []
    for part in parts:
        number = _parse_number(part)
        if number is None:
            return None
        numbers.append(number)
    *leading, last = numbers
    if any(n > 0xFF for n in leading) or last >= 1 << (8 * (5 - len(numbers))):
        return None
    value = last
    for index, number in enumerate(leading):
        value |= number << (8 * (3 - index))
    return IPv4Address(value)


def _parse_number(part: str) -> int | None:
    lowered = part.lower()
    if lowered.startswith("0x"):
        digits, base = lowered[2:], 16
    elif len(lowered) > 1 and lowered.startswith("0"):
        digits, base = lowered[1:], 8
    else:
        digits, base = lowered, 10
    if not digits or not all(c in "0123456789abcdef"[:base] for c in digits):
        return None
    return int(digits, base)
