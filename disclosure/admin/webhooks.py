"""Companies' webhooks (docs/api.md, "Webhooks"): registered by staff, the signing secret
generated, kept sealed and shown once; each webhook's recent deliveries; every delivery, with
a "failed" filter and "deliver again" (audited)."""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from audit.log import audit_record
from audit.mixins import AuditedModelAdmin
from audit.models import AuditEntry
from disclosure.admin.common import _request_link
from disclosure.admin.signing_secrets import SecretShownOnceMixin
from disclosure.models import Webhook, WebhookDelivery
from disclosure.services.webhooks import webhook_delivery_retry
from portal.shared.admin import LargeListMixin, ReadOnlyAdminMixin

RECENT_DELIVERIES = 20


def _deliveries_url(webhook: Webhook, **filters) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"webhook__id__exact": webhook.pk, **filters}.items())
    return reverse("admin:disclosure_webhookdelivery_changelist") + "?" + query


@admin.register(Webhook)
class WebhookAdmin(SecretShownOnceMixin, AuditedModelAdmin):
    """A company's endpoint for its new tasks. The signing secret is generated, never typed,
    kept sealed, and shown once: to the staff member who registers the webhook, or who makes
    a new secret for it (then given to the company)."""

    shown_once_as = "webhook"
    new_one_audited_as = "disclosure.new_webhook_secret"

    list_display = ["employer", "endpoint", "active", "created_at", "failed_deliveries"]
    list_filter = ["active"]
    search_fields = ["employer__name", "endpoint"]
    raw_id_fields = ["employer"]
    list_select_related = ["employer"]
    fields = [
        "employer",
        "endpoint",
        "active",
        "created_at",
        "signing_secret",
        "recent_deliveries",
    ]

    def get_readonly_fields(self, request, obj=None):
        readonly = ["created_at", "signing_secret", "recent_deliveries"]
        # The company is fixed once registered: a new company gets a webhook of its own.
        return ["employer", *readonly] if obj is not None else readonly

    def get_form(self, request, obj=None, **kwargs):
        self._may_change = self.has_change_permission(request, obj)
        return super().get_form(request, obj, **kwargs)

    @admin.display(description=_("signing secret"))
    def signing_secret(self, obj):
        if obj is None or obj.pk is None:
            return _("Made when the webhook is saved, and shown once.")
        if not getattr(self, "_may_change", False):
            return _("Kept sealed.")
        url = reverse("admin:disclosure_webhook_new_secret", args=[obj.pk])
        return format_html(
            '{} <a href="{}">{}</a>',
            _("Kept sealed; it was shown once, when it was made."),
            url,
            _("Make a new signing secret"),
        )

    def get_queryset(self, request):
        failed = Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.FAILED))
        return super().get_queryset(request).annotate(failed_count=failed)

    @admin.display(description=_("failed deliveries"), ordering="failed_count")
    def failed_deliveries(self, obj):
        count = obj.failed_count
        if not count:
            return "0"
        return format_html(
            '<a href="{}">{}</a>',
            _deliveries_url(obj, status__exact=WebhookDelivery.Status.FAILED),
            count,
        )

    @admin.display(description=_("recent deliveries"))
    def recent_deliveries(self, obj):
        if obj is None or obj.pk is None:
            return "—"
        rows = list(
            obj.deliveries.select_related("task__request").order_by("-created_at", "-pk")[
                :RECENT_DELIVERIES
            ]
        )
        if not rows:
            return _("None yet.")
        head = format_html(
            "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            _("request"),
            _("status"),
            _("attempts"),
            _("last HTTP status"),
            _("last error"),
            _("last attempt"),
        )
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    _request_link(d.task.request),
                    d.get_status_display(),
                    d.attempts,
                    d.last_status or "—",
                    d.last_error or "—",
                    d.last_attempt_at or "—",
                )
                for d in rows
            ),
        )
        return format_html(
            '<table class="webhook-deliveries">{}{}</table><p><a href="{}">{}</a> · '
            '<a href="{}">{}</a></p>',
            head,
            body,
            _deliveries_url(obj),
            _("All its deliveries"),
            _deliveries_url(obj, status__exact=WebhookDelivery.Status.FAILED),
            _("Its failed deliveries"),
        )

    def may_make_secret(self, request, obj) -> bool:
        return self.has_change_permission(request, obj)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(LargeListMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every task pushed to a company's webhook: status, attempts, the last error. A failed
    one may be delivered again once the company fixed its receiver (audited)."""

    list_display = [
        "created_at",
        "webhook",
        "request_link",
        "status",
        "attempts",
        "last_status",
        "last_error",
        "last_attempt_at",
        "sent_at",
    ]
    list_display_links = ["created_at"]
    list_filter = ["status"]
    list_select_related = ["webhook__employer", "task__request"]
    search_fields = ["task__request__reference", "webhook__employer__name", "event_id"]
    ordering = ["-created_at", "-pk"]
    actions = ["deliver_again"]
    fields = [
        "webhook",
        "request_link",
        "event_id",
        "status",
        "attempts",
        "last_status",
        "last_error",
        "created_at",
        "queued_at",
        "last_attempt_at",
        "sent_at",
        "failed_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("request"), ordering="task__request__reference")
    def request_link(self, obj):
        return _request_link(obj.task.request)

    def has_deliver_permission(self, request):
        return request.user.has_perm("disclosure.change_webhook")

    @admin.action(description=_("Deliver again"), permissions=["deliver"])
    def deliver_again(self, request, queryset):
        done = 0
        for delivery in queryset.filter(status=WebhookDelivery.Status.FAILED):
            try:
                with transaction.atomic():
                    webhook_delivery_retry(delivery=delivery)
                    audit_record(
                        action=AuditEntry.Action.ACTION,
                        name="disclosure.webhook_deliver_again",
                        request=request,
                        target=delivery,
                    )
            except ValidationError:
                continue
            done += 1
        skipped = queryset.count() - done
        if done:
            self.message_user(
                request,
                ngettext(
                    "%(count)d delivery queued again.",
                    "%(count)d deliveries queued again.",
                    done,
                )
                % {"count": done},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d delivery was not failed, or its webhook is inactive: left as it is.",
                    "%(count)d deliveries were not failed, or their webhook is inactive: left "
                    "as they are.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )
