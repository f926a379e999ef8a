"""The job site's own systems that take part in every request (a request's calls to them
are shown, and acted on, on the request's page)."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from audit.mixins import AuditedModelAdmin
from disclosure.admin.signing_secrets import SecretShownOnceMixin
from disclosure.models import DataSource


@admin.register(DataSource)
class DataSourceAdmin(SecretShownOnceMixin, AuditedModelAdmin):
    """The site's own systems that take part in every request. The signing secret is
    generated, never typed, kept sealed, and shown once: to the superuser who makes the
    source, or who makes a new secret for it (then given to the system's owners)."""

    shown_once_as = "source"
    new_one_audited_as = "disclosure.new_source_secret"
    list_display = ["name", "endpoint", "active", "created_at"]
    list_filter = ["active"]
    search_fields = ["name", "holds"]
    fields = ["name", "holds", "endpoint", "active", "created_at", "signing_secret"]

    def get_readonly_fields(self, request, obj=None):
        return ["created_at", "signing_secret"]

    @admin.display(description=_("signing secret"))
    def signing_secret(self, obj):
        if obj is None or obj.pk is None:
            return _("Made when the source is saved, and shown once.")
        if not self._request_is_superuser:
            return _("Kept sealed; a superuser can make a new one.")
        url = reverse("admin:disclosure_datasource_new_secret", args=[obj.pk])
        return format_html(
            '{} <a href="{}">{}</a>',
            _("Kept sealed; it was shown once, when it was made."),
            url,
            _("Make a new signing secret"),
        )

    def get_form(self, request, obj=None, **kwargs):
        self._request_is_superuser = request.user.is_superuser
        return super().get_form(request, obj, **kwargs)

    def may_make_secret(self, request, obj) -> bool:
        return request.user.is_superuser
