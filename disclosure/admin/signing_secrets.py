"""A signing secret shown once: what the data sources' and the webhooks' admins share. The
portal keeps the secret sealed (SealedCharField); staff see it on the page after the object
is saved, or after they make a new one (audited), and never again."""

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path

from audit.log import audit_record
from audit.models import AuditEntry
from disclosure.models import _source_secret


class SecretShownOnceMixin:
    """For a ModelAdmin whose model has a sealed `secret`. Templates:
    admin/<app>/<model>/new_secret.html (what a new one means) and secret.html (shown once),
    each given the object under the name `shown_once_as`."""

    shown_once_as: str  # the templates' name for the object ("source", "webhook")
    new_one_audited_as: str  # the audit log's name for making a new one

    def may_make_secret(self, request: HttpRequest, obj) -> bool:
        raise NotImplementedError

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_new_secret"
        view = self.admin_site.admin_view(self.new_secret_view)
        return [path("<int:pk>/new-secret/", view, name=name), *super().get_urls()]

    def response_add(self, request, obj, post_url_continue=None):
        return self._show_once(request, obj, made=True)

    def new_secret_view(self, request: HttpRequest, pk: int):
        """GET: what a new secret means; POST: make it, record it, show it once."""
        obj = get_object_or_404(self.model, pk=pk)
        if not self.may_make_secret(request, obj):
            raise PermissionDenied
        if request.method == "GET":
            return TemplateResponse(
                request, self._secret_template("new_secret"), self._secret_context(request, obj)
            )
        if request.method != "POST":
            return HttpResponseNotAllowed(["GET", "POST"])
        with transaction.atomic():
            obj.secret = _source_secret()
            obj.save(update_fields=["secret"])
            audit_record(
                action=AuditEntry.Action.ACTION,
                name=self.new_one_audited_as,
                request=request,
                target=obj,
            )
        return self._show_once(request, obj, made=False)

    def _show_once(self, request, obj, *, made: bool):
        context = {**self._secret_context(request, obj), "secret": obj.secret, "made": made}
        response = TemplateResponse(request, self._secret_template("secret"), context)
        response["Cache-Control"] = "no-store"
        return response

    def _secret_context(self, request, obj) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            self.shown_once_as: obj,
        }

    def _secret_template(self, name: str) -> str:
        return f"admin/{self.opts.app_label}/{self.opts.model_name}/{name}.html"
