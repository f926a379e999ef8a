"""Small facts about the current request that every app's views need."""

from django.http import HttpRequest
from django.utils.translation import get_language

from portal.models import Language


def page_language() -> str:
    """The language the page is being rendered in, as a Language value."""
    return Language.EN if (get_language() or "").startswith("en") else Language.JA


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR is the proxy's address behind a load balancer; production sets
    # BEHIND_PROXY and the proxy overwrites X-Forwarded-For, so its last hop is trusted.
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and request.META.get("HTTP_X_FORWARDED_PROTO"):
        return forwarded.split(",")[-1].strip() or None
    return request.META.get("REMOTE_ADDR") or None
