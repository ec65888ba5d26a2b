"""Requests OMO makes to servers its users name (webhooks, notification URLs).

A brand or merchant chooses the URL, so without a check OMO could be made to call its own
network: the database's admin port, a cloud metadata service at 169.254.169.254, a router
(server-side request forgery). A destination must be http(s) and every address its host
resolves to must be a public one, unless the operator allows private networks (a deployment
whose brands' servers sit on the same LAN, development, tests). The check runs when the URL is
saved and again before every delivery, since DNS answers change.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

__all__ = ["RefusedDestination", "check_destination"]


class RefusedDestination(ValueError):  # noqa: N818 - reads as the domain term
    """The URL may not be called; `reason` says why: malformed, scheme, credentials,
    unresolvable or private (callers turn it into a translated message)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _port(scheme: str, port: int | None) -> int:
    return port or (443 if scheme == "https" else 80)


async def check_destination(url: str, *, allow_private: bool) -> None:
    """Raise RefusedDestination unless `url` is an http(s) URL of public addresses only."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RefusedDestination("malformed", "The URL is not well formed.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RefusedDestination("scheme", "Use an http or https URL with a host name.")
    if parts.username or parts.password:
        raise RefusedDestination("credentials", "Do not put credentials in the URL.")
    if allow_private:
        return
    try:
        answers = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname, _port(parts.scheme, port), type=socket.SOCK_STREAM
        )
    except OSError:
        raise RefusedDestination("unresolvable", "The host name does not resolve.") from None
    for _family, _type, _proto, _name, address in answers:
        ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            raise RefusedDestination("private", "The URL points into a private network.")
