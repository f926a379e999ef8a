"""The browser headers Django 5.2 has no setting for.

Django's SecurityMiddleware sends Referrer-Policy, X-Content-Type-Options and
Cross-Origin-Opener-Policy, the clickjacking middleware X-Frame-Options, and django-csp the
Content-Security-Policy; this one adds Cross-Origin-Resource-Policy and Permissions-Policy
(settings.CROSS_ORIGIN_RESOURCE_POLICY and settings.PERMISSIONS_POLICY) to every response,
unless a view set its own.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase


def permissions_policy_header(policy: dict[str, list[str]]) -> str:
    """`{"camera": [], "publickey-credentials-get": ["self"]}` as the header's structured
    field: `camera=(), publickey-credentials-get=(self)`; origins other than `self` and `*`
    are quoted strings."""

    def allowlist(origins: list[str]) -> str:
        return " ".join(o if o in ("self", "*") else f'"{o}"' for o in origins)

    return ", ".join(f"{feature}=({allowlist(origins)})" for feature, origins in policy.items())


class SecurityHeadersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        # Built once: the settings do not change while the process runs.
        self.headers = {
            "Cross-Origin-Resource-Policy": settings.CROSS_ORIGIN_RESOURCE_POLICY,
            "Permissions-Policy": permissions_policy_header(settings.PERMISSIONS_POLICY),
        }

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        for name, value in self.headers.items():
            if value:
                response.headers.setdefault(name, value)
        return response
