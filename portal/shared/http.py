"""Small facts about the current request that every app's views need."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import get_language

from portal.models import Language


def page_language() -> str:
    """The language the page is being rendered in, as a Language value."""
    return Language.EN if (get_language() or "").startswith("en") else Language.JA


def _address(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The address of the person at the other end, for rate limits and the audit log.

    X-Forwarded-For is a header anyone can send, so it counts only when BEHIND_PROXY says a
    proxy stands in front of every request. Our one load balancer appends the address it
    saw to the header, so its last entry is the one it wrote; the earlier entries came from
    the client and are ignored. Without BEHIND_PROXY the header is ignored altogether.
    """
    if settings.BEHIND_PROXY:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            last_hop = _address(forwarded.split(",")[-1])
            if last_hop:
                return last_hop
    return _address(request.META.get("REMOTE_ADDR", ""))


def rate_limit_key(address: str | None) -> str:
    """What a per-address rate limit counts by: the address, or for IPv6 its /64 network,
    because one subscriber holds a whole /64 and could otherwise rotate through it."""
    if address is None:
        return "unknown"
    parsed = ipaddress.ip_address(address)
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False).network_address)
    return address
