"""The consent API's routes, under /api/v1/ (namespace "api")."""

import os

from django.conf import settings
from django.urls import path, re_path

from consent.api import views

app_name = "api"


def bench_routes_enabled() -> bool:
    """The benchmark's bare view exists only in a benchmark's server: DEBUG off (as in
    production, so the numbers mean something) and PORTAL_BENCH=1, which no deployment sets."""
    return not settings.DEBUG and os.environ.get("PORTAL_BENCH") == "1"


urlpatterns = [
    path("openapi.json", views.openapi_document, name="openapi"),
    path("consents/check", views.consents_check, name="consents_check"),
    path("consents/changes", views.consent_changes, name="consent_changes"),
    path("provisions", views.provisions, name="provisions"),
]
if bench_routes_enabled():
    urlpatterns.append(path("_bench/bare", views.bench_bare, name="bench_bare"))
# Last: any other path under /api/v1/ answers JSON, not the site's HTML 404 page.
urlpatterns.append(re_path(r"^", views.not_found, name="not_found"))
