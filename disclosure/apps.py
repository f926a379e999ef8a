from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DisclosureConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "disclosure"
    verbose_name = _("Data-rights requests")

    def ready(self):
        # The employer admin asks about open requests when a contact changes; it replaces
        # portal's (which may not import this app). Admin modules are discovered by now.
        from disclosure.admin import employers  # noqa: F401
