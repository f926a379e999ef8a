"""The admin site: Django's, with the dashboard on its front page.

It becomes the default site through `BackofficeAdminConfig.default_site` (backoffice/apps.py,
in INSTALLED_APPS in place of "django.contrib.admin"), Django's documented way to replace the
site: `admin.site`, which every `@admin.register` and `portal/urls.py` use, is then an
instance of this class, so nothing else changes. Overriding `index` (rather than a template
tag that queries) keeps the figures in plain functions and the template a pure view of them.
"""

from django.contrib import admin


class BackofficeAdminSite(admin.AdminSite):
    def index(self, request, extra_context=None):
        # Imported here: this module is loaded while the apps' admin modules register on the
        # site, and the dashboard reads disclosure.admin's filters.
        from backoffice.dashboard import dashboard_for

        extra_context = {**(extra_context or {}), "dashboard": dashboard_for(user=request.user)}
        return super().index(request, extra_context)
