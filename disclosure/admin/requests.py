"""The request list and each request's page: its companies, the site's own systems and the
timeline as read-only inlines, with links to the staff actions (actions.py)."""

import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import CharField, Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator, capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from audit.models import StaffRead
from audit.reads import RecordsStudentReads
from disclosure.admin.actions import DataRequestActionsMixin
from disclosure.admin.common import (
    CANCEL,
    EXTEND,
    READONLY_INLINE_TEMPLATE,
    SOURCE_ACTIONS,
    _company_link,
    _days_left_html,
    _email_problem,
    _event_by,
    _task_action_links,
    _with_staff_actions,
)
from disclosure.admin.filters import FailedEmailFilter, OverdueCompanyFilter
from disclosure.models import (
    Correction,
    DataRequest,
    RecipientTask,
    RequestEvent,
    RequestFile,
    SourceTask,
)
from portal.shared.admin import STUDENT_SEARCH, LargeListMixin, ReadOnlyAdminMixin
from portal.shared.admin_search import IndexedSearchMixin

# --- inlines --------------------------------------------------------------------------------


class RecipientTaskInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = RecipientTask
    verbose_name = _("company")
    verbose_name_plural = _("companies")
    template = READONLY_INLINE_TEMPLATE
    fields = [
        "company",
        "status",
        "failed_email",
        "email_problem",
        "overdue",
        "reminders_sent",
        "answer",
        "answered_by",
        "answered_at",
        "short_statement",
        "staff_actions",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return _with_staff_actions(
            super().get_queryset(request).select_related("request", "employer", "email"), request
        )

    @admin.display(description=_("company"))
    def company(self, obj):
        return _company_link(obj)

    @admin.display(description=_("email failed"), boolean=True)
    def failed_email(self, obj):
        return obj.failed

    @admin.display(description=_("why the email failed"))
    def email_problem(self, obj):
        return _email_problem(obj)

    @admin.display(description=_("statement"))
    def short_statement(self, obj):
        return Truncator(obj.statement).chars(120) or "—"

    @admin.display(description=_("staff actions"))
    def staff_actions(self, obj):
        return _task_action_links(obj)


class SourceTaskInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The site's own systems: the last error is shown here to staff (the student reads only
    that staff are on it)."""

    model = SourceTask
    verbose_name = _("data source")
    verbose_name_plural = _("the job site's own systems")
    template = READONLY_INLINE_TEMPLATE
    fields = [
        "source",
        "status",
        "attempts",
        "called_at",
        "overdue",
        "last_error",
        "answer",
        "answered_at",
        "data_size",
        "staff_actions",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        allowed = " ".join(p for p, _name, _label in SOURCE_ACTIONS if request.user.has_perm(p))
        return (
            super()
            .get_queryset(request)
            .select_related("source", "request")
            .annotate(staff_may=Value(allowed, CharField()))
        )

    @admin.display(description=_("staff actions"))
    def staff_actions(self, obj):
        """Call again (a failed call only) or close, while the request is open."""
        if obj.is_done or not obj.request.is_open:
            return "—"
        allowed = set(obj.staff_may.split())
        links = [
            (name, label)
            for perm, name, label in SOURCE_ACTIONS
            if perm in allowed and (name.endswith("close") or obj.may_be_called_again)
        ]
        if not links:
            return "—"
        return format_html_join(
            " · ",
            '<a href="{}">{}</a>',
            (
                (reverse(f"admin:{name}", args=[obj.request_id, obj.pk]), label)
                for name, label in links
            ),
        )

    @admin.display(description=_("data disclosed"))
    def data_size(self, obj):
        rows = obj.data.get("rows") if isinstance(obj.data, dict) else None
        if isinstance(rows, list):
            return ngettext("%(count)d row", "%(count)d rows", len(rows)) % {"count": len(rows)}
        return "—" if not obj.data else Truncator(json.dumps(obj.data)).chars(80)


class RequestEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    model = RequestEvent
    verbose_name = _("timeline entry")
    verbose_name_plural = _("timeline (newest first)")
    template = READONLY_INLINE_TEMPLATE
    fields = ["at", "kind", "company", "by", "detail"]
    readonly_fields = fields
    ordering = ["-at", "-id"]
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("task__employer", "actor_user")

    @admin.display(description=_("company"))
    def company(self, obj):
        return obj.task.employer if obj.task else "—"

    @admin.display(description=_("by"))
    def by(self, obj):
        return _event_by(obj)


# --- the admins -----------------------------------------------------------------------------


@admin.register(DataRequest)
class DataRequestAdmin(
    DataRequestActionsMixin,
    RecordsStudentReads,
    LargeListMixin,
    IndexedSearchMixin,
    ReadOnlyAdminMixin,
    admin.ModelAdmin,
):
    read_what = StaffRead.What.REQUEST

    # Requests are filed by students and never deleted; the page is read-only and every
    # change goes through an action (actions.py), each with its own permission.

    list_display = [
        "reference",
        "student",
        "kind",
        "status",
        "submitted_at",
        "due_at",
        "days_left",
        "answered_of_total",
    ]
    list_filter = ["kind", "status", OverdueCompanyFilter, FailedEmailFilter]
    search_fields = ["reference", *STUDENT_SEARCH]
    list_select_related = ["student"]
    date_hierarchy = "submitted_at"
    inlines = [RecipientTaskInline, SourceTaskInline, RequestEventInline]
    change_form_template = "admin/disclosure/datarequest/change_form.html"
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "reference",
                    "student",
                    "kind",
                    "status",
                    "all_recipients",
                    "employers",
                    "delivery_format",
                    "language",
                    "message",
                ]
            },
        ),
        (
            _("Dates"),
            {
                "fields": [
                    "submitted_at",
                    "due_at",
                    "days_left",
                    "extension_reason",
                    "completed_at",
                    "cancel_reason",
                ]
            },
        ),
        (
            _("The portal's own part"),
            {"fields": ["correction_text", "portal_done_at", "portal_summary_text", "file_list"]},
        ),
    ]

    def get_queryset(self, request):
        def count(**filters):
            tasks = (
                RecipientTask.objects.filter(request=OuterRef("pk"), **filters)
                .order_by()
                .values("request")
                .annotate(n=Count("pk"))
                .values("n")
            )
            return Coalesce(Subquery(tasks, output_field=IntegerField()), 0)

        return (
            super()
            .get_queryset(request)
            .annotate(
                task_total=count(),
                task_answered=count(status=RecipientTask.Status.ANSWERED),
                task_closed=count(status=RecipientTask.Status.CLOSED),
            )
        )

    def get_readonly_fields(self, request, obj=None):
        return [field for _name, options in self.fieldsets for field in options["fields"]]

    @admin.display(description=_("days left"), ordering="due_at")
    def days_left(self, obj):
        return _days_left_html(obj)

    @admin.display(description=_("answered / companies"))
    def answered_of_total(self, obj):
        text = f"{obj.task_answered}/{obj.task_total}"
        if obj.task_closed:
            text += " " + ngettext(
                "(%(closed)d closed)", "(%(closed)d closed)", obj.task_closed
            ) % {"closed": obj.task_closed}
        return text

    @admin.display(description=_("what the portal did"))
    def portal_summary_text(self, obj):
        """In the reader's language (the stored summary is the record, in English keys)."""
        summary = obj.portal_summary or {}
        lines = []
        if "activity_records_deleted" in summary:
            lines.append(
                _("Activity records deleted: %(count)d")
                % {"count": summary["activity_records_deleted"]}
            )
        if summary.get("inferences_deleted"):
            lines.append(
                _("Inferences deleted: %(count)d") % {"count": summary["inferences_deleted"]}
            )
        if "consents_withdrawn" in summary:
            lines.append(
                _("Consents withdrawn: %(count)d") % {"count": summary["consents_withdrawn"]}
            )
        if "kept" in summary:
            lines.append(
                _(
                    "Kept by law: %(count)d records of provision to companies (APPI Articles "
                    "29 and 30: kept for three years)"
                )
                % {"count": summary["kept"].get("provision_records", 0)}
            )
        known = {"activity_records_deleted", "inferences_deleted", "consents_withdrawn", "kept"}
        if rest := {k: v for k, v in summary.items() if k not in known}:
            lines.append(json.dumps(rest, ensure_ascii=False))
        if not lines:
            return "—"
        return format_html(
            "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((line,) for line in lines))
        )

    @admin.display(description=_("correction asked"))
    def correction_text(self, obj):
        correction = Correction.objects.filter(request=obj).first()
        if correction is None:
            return "—"
        rows = [
            (_("what is to be corrected"), correction.get_target_display()),
            (_("the data, as it was"), correction.target_label or correction.previous_value),
            (_("what is wrong"), correction.wrong),
            (_("what is right"), correction.right),
            (_("the portal's own part"), correction.get_outcome_display()),
        ]
        return format_html(
            "<dl>{}</dl>",
            format_html_join("", "<dt>{}</dt><dd>{}</dd>", ((k, v or "—") for k, v in rows)),
        )

    @admin.display(description=_("files"))
    def file_list(self, obj):
        files = obj.files.order_by("created_at").values_list("name", "kind", "size", "created_at")
        if not files:
            return "—"
        kinds = dict(RequestFile.Kind.choices)
        return format_html(
            "<ul>{}</ul>",
            format_html_join(
                "",
                "<li>{} ({}, {} bytes, {})</li>",
                (
                    (
                        name,
                        kinds.get(kind, kind),
                        size,
                        date_format(timezone.localtime(at), "DATETIME_FORMAT"),
                    )
                    for name, kind, size, at in files
                ),
            ),
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST":
            raise PermissionDenied  # nothing is edited here; a forged POST ends here
        obj = self.get_object(request, object_id) if object_id else None
        is_open = obj is not None and obj.is_open
        extra_context = {
            **(extra_context or {}),
            "title": capfirst(self.opts.verbose_name),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
            "show_delete": False,
            "request_actions": [
                (reverse(f"admin:disclosure_datarequest_{name}", args=[obj.pk]), label)
                for perm, name, label in (
                    (EXTEND, "extend", _("Extend the due date")),
                    (CANCEL, "cancel", _("Cancel the request")),
                )
                if is_open and request.user.has_perm(perm)
            ],
        }
        return super().changeform_view(request, object_id, form_url, extra_context)
