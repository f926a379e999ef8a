"""The browser headers Django 5.2 has no setting for, and two refusals before any view.

Django's SecurityMiddleware sends Referrer-Policy, X-Content-Type-Options and
Cross-Origin-Opener-Policy, the clickjacking middleware X-Frame-Options, and django-csp the
Content-Security-Policy; this one adds Cross-Origin-Resource-Policy and Permissions-Policy
(settings.CROSS_ORIGIN_RESOURCE_POLICY and settings.PERMISSIONS_POLICY) to every response,
unless a view set its own.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBadRequest, HttpResponseBase
from django.utils.cache import patch_cache_control


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


class RefuseNulMiddleware:
    """A NUL byte in a path or query string is never ours: 400 before any view, which
    would otherwise pass it to the database (PostgreSQL refuses such a string: a 500)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        # The API validates its own input and answers in JSON, naming the field (fuzzed).
        if request.path.startswith("/api/"):
            return self.get_response(request)
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            return HttpResponseBadRequest(
                "リクエストに使えない文字（NUL）が含まれています。 / "
                "The address contains a character that cannot be used (NUL).",
                content_type="text/plain; charset=utf-8",
            )
        return self.get_response(request)


class PrivatePagesMiddleware:
    """Every page answered to a signed-in person is theirs alone: `private, no-store`, so
    a shared PC's browser (or a proxy) keeps no copy after sign-out."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            patch_cache_control(response, private=True, no_store=True)
        return response
