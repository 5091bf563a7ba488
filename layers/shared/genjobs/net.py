"""Which URLs and addresses may receive webhooks (SSRF): one rule for the API (checked when an endpoint is
saved) and the sender (checked again on the address it connects to, resolved at delivery time).

In AWS only `https` URLs, and only addresses that are globally routable: no private (RFC 1918, ULA),
loopback, link-local (169.254.0.0/16 holds the instance metadata service 169.254.169.254), shared
(100.64.0.0/10), multicast, reserved or unspecified address, IPv4-mapped IPv6 judged as its IPv4.
`allow_private` (WEBHOOK_ALLOW_PRIVATE_URLS, the local runner only) lifts both rules.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

ALLOWED_SCHEMES = ("https",)
LOCAL_SCHEMES = ("http", "https")


def address_refusal(address: str) -> str | None:
    """Why a delivery must not connect to `address` (an IP literal), or None when it may."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address (the instance metadata service lives there)"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved or not ip.is_global:
        return "a special-purpose address"
    return None


def url_refusal(url: str, *, allow_private: bool) -> str | None:
    """Why `url` cannot be a webhook endpoint, or None. A host name is resolved only at delivery time."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    schemes = LOCAL_SCHEMES if allow_private else ALLOWED_SCHEMES
    if parts.scheme not in schemes:
        return f"the scheme must be {' or '.join(schemes)}"
    host = parts.hostname
    if not host:
        return "the URL has no host"
    if parts.username is not None or parts.password is not None:
        return "the URL must not carry credentials"
    if parts.fragment:
        return "the URL must not have a fragment"
    if port == 0:
        return "port 0 is not a port"
    if allow_private:
        return None
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return f"{host} is not a public host"
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None  # a name: checked on every delivery, against what it resolves to then
    refusal = address_refusal(host)
    return None if refusal is None else f"{host} is {refusal}"
