from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class BackofficeConfig(AppConfig):
    """The support back office on top of every app: staff roles, the admin dashboard and the
    retention job. Like the portal's shell it may import any app; no app imports it."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "backoffice"
    verbose_name = _("Back office")


class BackofficeAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the back office's site as `admin.site` (backoffice/site.py).
    Listed in INSTALLED_APPS in place of "django.contrib.admin"."""

    default = False  # "backoffice" alone still means BackofficeConfig
    default_site = "backoffice.site.BackofficeAdminSite"
