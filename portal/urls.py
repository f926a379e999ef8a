"""The portal's shell: wires the apps together (the one place that reaches up into them)."""

from django.contrib import admin
from django.urls import include, path

from portal import views

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/staff-looks/", views.staff_looks, name="staff_looks"),
    path("healthz", views.healthz, name="healthz"),
    # Browsers ask for /favicon.ico whatever the page's <link rel="icon"> says.
    path("favicon.ico", views.favicon, name="favicon"),
    path("i18n/setlang/", views.set_language, name="set_language"),
    path("accounts/", include("allauth.urls")),
    path("", include("consent.urls")),
    path("", include("inferences.urls")),
    path("", include("disclosure.urls")),
    path("api/v1/", include("portal.api_urls")),
    path("admin/", admin.site.urls),
]
