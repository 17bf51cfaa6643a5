"""The client's address, believing X-Forwarded-For only when it was written by a trusted proxy.

Anyone can send an X-Forwarded-For header, so taking it at face value would let a client pick its
own rate-limit and login-throttle bucket. The header is read only when the direct peer is one of
TRUSTED_PROXIES (the ingress), and then from the right: each trusted hop vouches for the address
to its left, and the first address that is not a trusted proxy is the client.
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from starlette.requests import HTTPConnection

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address

UNKNOWN = "unknown"
# Hops looked at, from the right; a longer chain is not a real proxy path.
MAX_HOPS = 32


def _parse(value: str) -> Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "192.0.2.1:443"
        value = value.partition(":")[0]
    try:
        address = ip_address(value)
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; compare them as IPv4.
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def client_address(connection: HTTPConnection, trusted_proxies: Sequence[Network]) -> str:
    """The right-most address not among ``trusted_proxies`` (the direct peer when it is untrusted)."""
    peer = connection.client.host if connection.client else None
    current = _parse(peer) if peer else None
    if current is None:
        return peer or UNKNOWN
    if not trusted_proxies or not _trusted(current, trusted_proxies):
        return str(current)
    forwarded = ",".join(connection.headers.getlist("x-forwarded-for"))
    for hop in reversed(forwarded.split(",")[-MAX_HOPS:] if forwarded else []):
        parsed = _parse(hop)
        if parsed is None:  # garbage in the chain: stop at the last hop we could vouch for
            break
        current = parsed
        if not _trusted(current, trusted_proxies):
            break
    return str(current)
