"""Every company's task, to find what needs staff (overdue, failed emails, refusals), with
the answer links it was sent; the actions on a task are on its request's page."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from audit.reads import RecordsStudentReads
from disclosure.admin.common import (
    READONLY_INLINE_TEMPLATE,
    _days_left_html,
    _email_problem,
    _request_link,
    _task_action_links,
    _with_staff_actions,
)
from disclosure.admin.filters import RequestOpenFilter, TaskFailedEmailFilter
from disclosure.models import AnswerLink, RecipientTask
from portal.shared.admin import EMPLOYER_SEARCH, ReadOnlyAdminMixin, ReadOnlyLedgerAdmin


class AnswerLinkInline(ReadOnlyAdminMixin, admin.TabularInline):
    """When each link was made and whether it still works; never the token."""

    model = AnswerLink
    template = READONLY_INLINE_TEMPLATE
    fields = ["created_at", "expires_at", "revoked_at"]
    readonly_fields = fields
    ordering = ["-created_at"]
    extra = 0
    can_delete = False


@admin.register(RecipientTask)
class RecipientTaskAdmin(RecordsStudentReads, ReadOnlyLedgerAdmin):
    read_student = "request__student_id"
    read_filters = ("request__student__id__exact",)

    """Every company's task, to find what needs staff: overdue, failed emails, refusals.
    The actions are on the request's page (and linked from here)."""

    list_display = [
        "request_link",
        "employer",
        "status",
        "failed_email",
        "overdue",
        "reminders_sent",
        "sent_at",
        "due",
        "answer",
        "answered_at",
        "staff_actions",
    ]
    # Not the first column: it is a link to the request already, and a link inside the
    # admin's row link leaves an empty link behind (axe-core: link-name).
    list_display_links = ["employer"]
    # Newest requests first, by the (request, employer) unique index: the model's order
    # (request, then the company's name) sorts all 200,000 tasks with a join for each page.
    ordering = ["-request_id", "-employer_id"]
    list_filter = [
        "overdue",
        TaskFailedEmailFilter,
        "status",
        "answer",
        "request__kind",
        RequestOpenFilter,
    ]
    search_fields = ["request__reference", *EMPLOYER_SEARCH]
    list_select_related = ["request", "employer", "email"]
    inlines = [AnswerLinkInline]
    fields = [
        "request_link",
        "employer",
        "status",
        "failed_email",
        "email_problem",
        "email",
        "created_at",
        "sent_at",
        "reminders_sent",
        "last_reminder_at",
        "overdue",
        "escalated_at",
        "answer",
        "answered_at",
        "answered_by",
        "statement",
        "answered_via",
        "answered_client",
        "evidence",
        "reasons",
        "webhook_delivery",
        "staff_actions",
    ]

    def get_queryset(self, request):
        return _with_staff_actions(
            super().get_queryset(request).select_related("request", "employer", "email"), request
        )

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def change_view(self, request, object_id, form_url="", extra_context=None):
        task = self.get_object(request, object_id)
        if task is not None:
            extra_context = {
                **(extra_context or {}),
                "subtitle": f"{task.request.reference} → {task.employer.name}",
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("request"), ordering="request__reference")
    def request_link(self, obj):
        return _request_link(obj.request)

    @admin.display(description=_("email failed"), boolean=True)
    def failed_email(self, obj):
        return obj.failed

    @admin.display(description=_("why the email failed"))
    def email_problem(self, obj):
        return _email_problem(obj)

    @admin.display(description=_("due"), ordering="request__due_at")
    def due(self, obj):
        return "—" if obj.is_done else _days_left_html(obj.request)

    @admin.display(description=_("webhook delivery"))
    def webhook_delivery(self, obj):
        """The push to the company's webhook, if it has one: its state and last error."""
        delivery = obj.webhook_deliveries.order_by("-created_at").first()
        if delivery is None:
            return "—"
        text = _("%(status)s, %(attempts)d attempt(s)") % {
            "status": delivery.get_status_display(),
            "attempts": delivery.attempts,
        }
        if delivery.last_error:
            text = f"{text}: {delivery.last_error}"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:disclosure_webhookdelivery_change", args=[delivery.pk]),
            text,
        )

    @admin.display(description=_("staff actions"))
    def staff_actions(self, obj):
        return _task_action_links(obj)
