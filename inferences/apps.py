from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class InferencesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "inferences"
    verbose_name = _("Inferences about students")
