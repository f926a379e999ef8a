from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BackofficeConfig(AppConfig):
    """The support back office on top of every app: staff roles, the admin dashboard and the
    retention job. Like the portal's shell it may import any app; no app imports it."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "backoffice"
    verbose_name = _("Back office")
