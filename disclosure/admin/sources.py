"""The job site's own systems that take part in every request (a request's calls to them
are shown, and acted on, on the request's page)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from audit.mixins import AuditedModelAdmin
from disclosure.models import DataSource


@admin.register(DataSource)
class DataSourceAdmin(AuditedModelAdmin):
    """The site's own systems that take part in every request. The signing secret is
    generated, never typed, and shown to superusers only (who configure the system)."""

    list_display = ["name", "endpoint", "active", "created_at"]
    list_filter = ["active"]
    search_fields = ["name", "holds"]
    fields = ["name", "holds", "endpoint", "active", "created_at", "signing_secret"]

    def get_readonly_fields(self, request, obj=None):
        return ["created_at", "signing_secret"]

    @admin.display(description=_("signing secret"))
    def signing_secret(self, obj):
        if obj is None or obj.pk is None:
            return _("Generated when the source is saved.")
        if not self._request_is_superuser:
            return _("Shown to superusers only.")
        return obj.secret

    def get_form(self, request, obj=None, **kwargs):
        self._request_is_superuser = request.user.is_superuser
        return super().get_form(request, obj, **kwargs)
