"""The admin site: Django's, with the dashboard on its front page and a second factor required.

It becomes the default site through `BackofficeAdminConfig.default_site` (backoffice/apps.py,
in INSTALLED_APPS in place of "django.contrib.admin"), Django's documented way to replace the
site: `admin.site`, which every `@admin.register` and `portal/urls.py` use, is then an
instance of this class, so nothing else changes. Overriding `index` (rather than a template
tag that queries) keeps the figures in plain functions and the template a pure view of them.

The second-factor gate lives here, in `admin_view` and `has_permission`, rather than in a
middleware: `admin_view` is the one door every admin page goes through (Django's own views,
every ModelAdmin's, the apps' extra views, the catch-all), so the gate covers exactly the
admin, whatever its URL, and costs nothing on the students' pages. `has_permission` says no
as well, for anything that asks it directly. Sign-in itself is allauth's (`login` hands off
to it), so its second-factor step applies to staff: there is no password-only way in.
"""

from functools import wraps
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from portal.second_factor import second_factor_active
from portal.shared.redirects import own_path_or


def _lacks_second_factor(request) -> bool:
    user = request.user
    if not (user.is_active and user.is_staff):
        return False
    # Asked several times for one page (the view, the context, the navigation): once a request.
    if not hasattr(request, "_backoffice_second_factor"):
        request._backoffice_second_factor = second_factor_active(user=user)
    return not request._backoffice_second_factor


class BackofficeAdminSite(admin.AdminSite):
    def has_permission(self, request):
        return super().has_permission(request) and not _lacks_second_factor(request)

    def admin_view(self, view, cacheable=False):
        checked = super().admin_view(view, cacheable)
        # Signing out stays open: a staff member stuck at the gate can always leave (Django's
        # own check would send them to the index instead, since has_permission says no).
        unchecked = never_cache(csrf_protect(view))

        @wraps(checked)
        def gated(request, *args, **kwargs):
            if _lacks_second_factor(request):
                if request.path == reverse("admin:logout", current_app=self.name):
                    return unchecked(request, *args, **kwargs)
                return HttpResponseRedirect(reverse("admin:mfa_required", current_app=self.name))
            return checked(request, *args, **kwargs)

        return gated

    def get_urls(self):
        return [
            path("two-factor-required/", self.mfa_required, name="mfa_required"),
            *super().get_urls(),
        ]

    def mfa_required(self, request):
        """Why the admin is closed to this account, and the way to open it."""
        if not _lacks_second_factor(request):
            return HttpResponseRedirect(reverse("admin:index", current_app=self.name))
        return render(request, "backoffice/mfa_required.html")

    def login(self, request, extra_context=None):
        """allauth's sign-in, never Django's password-only form: a POST here signs nobody in."""
        if request.user.is_authenticated:
            # Signed in already (allauth would only send them back here): say what is missing.
            if _lacks_second_factor(request):
                return HttpResponseRedirect(reverse("admin:mfa_required", current_app=self.name))
            if not self.has_permission(request):
                raise PermissionDenied
        next_url = own_path_or(
            request.GET.get("next"), reverse("admin:index", current_app=self.name)
        )
        return HttpResponseRedirect(f"{reverse('account_login')}?{urlencode({'next': next_url})}")

    def index(self, request, extra_context=None):
        # Imported here: this module is loaded while the apps' admin modules register on the
        # site, and the dashboard reads disclosure.admin's filters.
        from backoffice.dashboard import dashboard_for

        extra_context = {**(extra_context or {}), "dashboard": dashboard_for(user=request.user)}
        return super().index(request, extra_context)
