"""The job site's own systems that take part in every request (a request's calls to them
are shown, and acted on, on the request's page)."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from audit.log import audit_record
from audit.mixins import AuditedModelAdmin
from audit.models import AuditEntry
from disclosure.models import DataSource, _source_secret


@admin.register(DataSource)
class DataSourceAdmin(AuditedModelAdmin):
    """The site's own systems that take part in every request. The signing secret is
    generated, never typed, kept sealed, and shown once: to the superuser who makes the
    source, or who makes a new secret for it (then given to the system's owners)."""

    list_display = ["name", "endpoint", "active", "created_at"]
    list_filter = ["active"]
    search_fields = ["name", "holds"]
    fields = ["name", "holds", "endpoint", "active", "created_at", "signing_secret"]

    def get_readonly_fields(self, request, obj=None):
        return ["created_at", "signing_secret"]

    def get_urls(self):
        new_secret = self.admin_site.admin_view(self.new_secret_view)
        return [
            path("<int:pk>/new-secret/", new_secret, name="disclosure_datasource_new_secret"),
            *super().get_urls(),
        ]

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

    def response_add(self, request, obj, post_url_continue=None):
        return self._show_once(request, obj, made=True)

    def new_secret_view(self, request: HttpRequest, pk: int):
        """GET: what a new secret means; POST: make it, record it, show it once."""
        if not request.user.is_superuser:
            raise PermissionDenied
        source = get_object_or_404(DataSource, pk=pk)
        if request.method == "GET":
            context = {**self.admin_site.each_context(request), "opts": self.opts, "source": source}
            return TemplateResponse(request, "admin/disclosure/datasource/new_secret.html", context)
        if request.method != "POST":
            return HttpResponseNotAllowed(["GET", "POST"])
        with transaction.atomic():
            source.secret = _source_secret()
            source.save(update_fields=["secret"])
            audit_record(
                action=AuditEntry.Action.ACTION,
                name="disclosure.new_source_secret",
                request=request,
                target=source,
            )
        return self._show_once(request, source, made=False)

    def _show_once(self, request, source: DataSource, *, made: bool):
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "source": source,
            "secret": source.secret,
            "made": made,
        }
        response = TemplateResponse(request, "admin/disclosure/datasource/secret.html", context)
        response["Cache-Control"] = "no-store"
        return response
