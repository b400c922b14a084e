"""The address policy and numeric host literals, table-driven and property-based."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address, IPv6Address, ip_address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.netguard import is_forbidden, parse_host_literal


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.255", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "reserved"),
        ("198.18.0.1", "reserved"),
        ("203.0.113.9", "reserved"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "IPv4-mapped"),
        ("::ffff:8.8.8.8", "IPv4-mapped"),
        ("::127.0.0.1", "reserved"),
        ("fc00::1", "unique local"),
        ("fd12:3456::1", "unique local"),
        ("fe80::1", "link-local"),
        ("fec0::1", "reserved"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "reserved"),
        ("2001:0:4136:e378::1", "reserved"),
        # not in the table, but not global either (IANA): the fallback names them
        ("2001:2::1", "reserved"),  # benchmarking, RFC 5180
        ("2001:10::1", "reserved"),  # ORCHID, RFC 4843
        ("64:ff9b::7f00:1", "loopback (embedded in NAT64)"),
        ("64:ff9b::a00:1", "private (embedded in NAT64)"),
        ("64:ff9b:1::1", "private"),
        ("2002:7f00:1::", "loopback (embedded in 6to4)"),
        ("2002:c0a8:101::1", "private (embedded in 6to4)"),
        ("2002:a9fe:a9fe::", "link-local (embedded in 6to4)"),
    ],
)
def test_forbidden_address_names_its_reason(address: str, reason: str) -> None:
    assert is_forbidden(ip_address(address)) == reason


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.215.14",
        "100.63.255.255",
        "100.128.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "2606:4700:4700::1111",
        "2a00:1450:4001:82a::200e",
        "64:ff9b::808:808",  # NAT64 of a public address
        "2002:808:808::1",  # 6to4 of a public address
    ],
)
def test_public_address_is_allowed(address: str) -> None:
    assert is_forbidden(ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("0X7F.0.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("10.0x10000", "10.1.0.0"),
        ("0", "0.0.0.0"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("[fe80::1%25eth0]", "fe80::1"),
    ],
)
def test_numeric_host_reads_as_libc_does(host: str, expected: str) -> None:
    assert parse_host_literal(host) == ip_address(expected)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "localhost",
        "1.2.3.4.5",
        "256.0.0.1",
        "1.2.3.256",
        "1.2.65536",
        "4294967296",
        "08.0.0.1",
        "0x",
        "1..2",
        "",
        "[::1",
        "[not:an:address]",
        "1.2.3.4.com",
    ],
)
def test_name_or_malformed_number_is_not_a_literal(host: str) -> None:
    assert parse_host_literal(host) is None


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_ipv4_notation_reads_back_the_same_address(value: int) -> None:
    ip = IPv4Address(value)
    a, b, c, d = ip.packed
    for notation in (
        str(value),
        hex(value),
        f"0{value:o}",
        f"{a}.{(b << 16) | (c << 8) | d}",
        f"{a}.{b}.{(c << 8) | d}",
        f"{a:#x}.0{b:o}.{c}.{d:#x}",
    ):
        assert parse_host_literal(notation) == ip, notation


@given(st.text(alphabet="0123456789abcdefxX.", min_size=1, max_size=20))
def test_ipv4_reading_agrees_with_inet_aton(text: str) -> None:
    try:
        expected: IPv4Address | None = IPv4Address(socket.inet_aton(text))
    except OSError:
        expected = None
    assert parse_host_literal(text) == expected


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_ipv6_text_reads_back_the_same_address(value: int) -> None:
    ip = IPv6Address(value)
    assert parse_host_literal(f"[{ip}]") == ip
    assert parse_host_literal(ip.exploded) == ip
