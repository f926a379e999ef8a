"""The API's clients and their keys: made (and shown once) here, renamed, revoked with a
reason; never deleted."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from audit.log import audit_record
from audit.mixins import AuditedModelAdmin
from audit.models import AuditEntry
from consent.admin.common import _iso
from consent.admin.forms import ApiKeyCreateForm, AuditReasonForm
from consent.api.keys import api_key_create
from consent.models import ApiClient
from portal.shared.admin import EMPLOYER_SEARCH


@admin.register(ApiClient)
class ApiClientAdmin(AuditedModelAdmin):
    """Staff with the permission make a key here (shown once; only its SHA-256 is stored),
    rename keys and revoke them. `manage.py create_api_key` does the same on the server."""

    list_display = [
        "name",
        "kind",
        "employer",
        "scopes",
        "key_prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["kind", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "key_prefix", *EMPLOYER_SEARCH]
    list_select_related = ["employer"]
    fields = [
        "name",
        "kind",
        "employer",
        "scopes",
        "key_prefix",
        "key_sha256",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    # A key's scope is fixed when it is made: a new key is made for a new scope.
    readonly_fields = [
        "kind",
        "employer",
        "scopes",
        "key_prefix",
        "key_sha256",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    def has_delete_permission(self, request, obj=None):
        # Provision records name the key that recorded them; a key is revoked, not deleted.
        return False

    def has_revoke_permission(self, request):
        return request.user.has_perm("consent.change_apiclient")

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "create_help": _(
                "A new key is shown once, when it is made (here, or on the server with "
                "“python manage.py create_api_key”); only its SHA-256 is stored."
            ),
        }
        return super().changelist_view(request, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        """Make a key and show it once. Not the model form: the key is made by the service."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ApiKeyCreateForm(request.POST if request.method == "POST" else None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Create an API key"),
            "form": form,
        }
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            employer = data["employer"] if data["kind"] == ApiClient.Kind.EMPLOYER else None
            with transaction.atomic():
                client, key = api_key_create(
                    name=data["name"].strip(), employer=employer, scopes=data["scopes"]
                )
                audit_record(
                    action=AuditEntry.Action.ACTION,
                    name="consent.create_api_key",
                    request=request,
                    target=client,
                    changes={
                        "name": [None, client.name],
                        "kind": [None, client.kind],
                        "employer": [None, str(employer) if employer else None],
                        "scopes": [None, client.scopes],
                        "key_prefix": [None, client.key_prefix],
                    },
                    reason=data["reason"].strip(),
                )
            context.update(title=_("API key created"), client=client, key=key)
            # admin_view marks every admin page never-cache: the key is not kept by a cache.
            return TemplateResponse(request, "admin/consent/apiclient/created.html", context)
        return TemplateResponse(request, "admin/consent/apiclient/add.html", context)

    @admin.action(description=_("Revoke selected keys"), permissions=["revoke"])
    def revoke(self, request, queryset):
        """Asks for a reason first (like Django's delete confirmation), then revokes."""
        live = queryset.filter(revoked_at__isnull=True)
        form = AuditReasonForm(request.POST if request.POST.get("post") else None)
        if not form.is_bound or not form.is_valid():
            return TemplateResponse(
                request,
                "admin/consent/apiclient/revoke.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.model._meta,
                    "title": _("Revoke API keys"),
                    "queryset": queryset,
                    "live": live,
                    "form": AuditReasonForm(),
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )
        now = timezone.now()
        reason = form.cleaned_data["reason"].strip()
        revoked = 0
        with transaction.atomic():
            for client in live.order_by("pk"):
                # Conditional: a key revoked earlier (or meanwhile, by someone else) keeps the
                # time it was revoked, and is not logged twice.
                if not ApiClient.objects.filter(pk=client.pk, revoked_at=None).update(
                    revoked_at=now
                ):
                    continue
                revoked += 1
                audit_record(
                    action=AuditEntry.Action.ACTION,
                    name="consent.revoke_api_key",
                    request=request,
                    target=client,
                    changes={"revoked_at": [None, _iso(now)]},
                    reason=reason,
                )
        self.message_user(
            request,
            ngettext("Revoked %(count)d key.", "Revoked %(count)d keys.", revoked)
            % {"count": revoked},
            messages.SUCCESS,
        )
        return None
