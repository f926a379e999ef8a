"""Staff's view of data-rights requests: the list, each request with its companies and
timeline, and the few things staff do by hand (DESIGN.md, issue 4 "Staff (admin)").

Nothing is edited in a form here. Every change is a small form (a reason, and what the action
needs) that calls one function of `disclosure.services`, which records it in the timeline; the
same transaction writes it to the staff audit log. Each action has its own permission, given to
a role in backoffice/roles.py: without it the action is neither shown nor allowed (403).
"""

import json
from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import (
    CharField,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator, capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods

from audit.log import audit_record
from audit.mixins import AuditedModelAdmin
from audit.models import AuditEntry, StaffRead
from audit.reads import RecordsStudentReads
from disclosure.models import (
    AnswerLink,
    DataRequest,
    DataSource,
    RecipientTask,
    RequestEvent,
    RequestFile,
    SourceTask,
)
from disclosure.services import (
    ANSWERS_BY_KIND,
    recipient_task_answer,
    recipient_task_close,
    recipient_task_resend,
    request_cancel,
    request_extend,
    source_task_close,
    source_task_recall,
)
from portal.admin import EMPLOYER_SEARCH, STUDENT_SEARCH, ReadOnlyAdminMixin, ReadOnlyLedgerAdmin
from portal.admin_search import IndexedSearchMixin
from portal.pagination import EstimatedCountPaginator

NOT_DONE = [RecipientTask.Status.QUEUED, RecipientTask.Status.SENT]

# Each staff action and the permission it needs.
EXTEND = "disclosure.extend_due_date"
CANCEL = "disclosure.cancel_request"
RESEND = "disclosure.resend_answer_link"
RECORD_ANSWER = "disclosure.record_answer"
CLOSE_TASK = "disclosure.close_task"
TASK_ACTIONS = [
    (RESEND, "disclosure_datarequest_task_resend", _("Resend the link")),
    (RECORD_ANSWER, "disclosure_datarequest_task_answer", _("Record an answer")),
    (CLOSE_TASK, "disclosure_datarequest_task_close", _("Close the task")),
]
# On a data source's task: call it again once its owners fixed it (a resend, in effect), or
# stop waiting for it (a closure, like a company's).
SOURCE_ACTIONS = [
    (RESEND, "disclosure_datarequest_source_recall", _("Call it again")),
    (CLOSE_TASK, "disclosure_datarequest_source_close", _("Close the task")),
]
ACTION_TEMPLATE = "admin/disclosure/datarequest/action.html"
READONLY_INLINE_TEMPLATE = "admin/disclosure/datarequest/readonly_tabular.html"


# --- filters --------------------------------------------------------------------------------


FAILED_EMAIL = Q(status=RecipientTask.Status.SENT, email__status="failed")  # `.failed`


def _overdue_tasks():
    """Companies past the due date that have not answered (and were not closed)."""
    return RecipientTask.objects.filter(overdue=True, status__in=NOT_DONE)


def _failed_tasks():
    """Companies whose latest email could not be delivered after every retry."""
    return RecipientTask.objects.filter(FAILED_EMAIL)


class _YesNoFilter(admin.SimpleListFilter):
    """A yes/no filter on the Q or expression each subclass's `condition()` returns."""

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(self.condition())
        if self.value() == "no":
            return queryset.filter(~self.condition())
        return queryset


class OverdueCompanyFilter(_YesNoFilter):
    title = _("has an overdue company")
    parameter_name = "overdue"

    def condition(self):
        return Exists(_overdue_tasks().filter(request=OuterRef("pk")))


class FailedEmailFilter(_YesNoFilter):
    title = _("has a failed email")
    parameter_name = "failed"

    def condition(self):
        return Exists(_failed_tasks().filter(request=OuterRef("pk")))


class RequestOpenFilter(_YesNoFilter):
    title = _("request still open")
    parameter_name = "open"

    def condition(self):
        return Q(request__status__in=DataRequest.OPEN)


class TaskFailedEmailFilter(_YesNoFilter):
    title = _("email failed")
    parameter_name = "failed"

    def condition(self):
        return FAILED_EMAIL


# --- displays shared by the request page and the task list ---------------------------------


def days_left_text(data_request: DataRequest) -> str:
    """Whole days to the due date in the portal's time zone; overdue in words."""
    if not data_request.is_open:
        return "—"
    days = (timezone.localdate(data_request.due_at) - timezone.localdate()).days
    if days < 0:
        return ngettext("%(days)d day overdue", "%(days)d days overdue", -days) % {"days": -days}
    if days == 0:
        return str(_("due today"))
    return ngettext("%(days)d day left", "%(days)d days left", days) % {"days": days}


def _days_left_html(data_request: DataRequest):
    text = days_left_text(data_request)
    if data_request.is_open and data_request.due_at < timezone.now():
        return format_html('<strong class="overdue">{}</strong>', text)
    return text


def _request_link(data_request: DataRequest):
    return format_html(
        '<a href="{}">{}</a>',
        reverse("admin:disclosure_datarequest_change", args=[data_request.pk]),
        data_request.reference,
    )


def _task_action_links(task: RecipientTask):
    """Links to the staff actions on one company's task, when it still waits for an answer:
    those the staff member may take (`_with_staff_actions` put them on the row)."""
    allowed = set(getattr(task, "staff_may", "").split())
    links = [(name, label) for perm, name, label in TASK_ACTIONS if perm in allowed]
    if not links or task.is_done or not task.request.is_open:
        return "—"
    return format_html_join(
        " · ",
        '<a href="{}">{}</a>',
        (
            (reverse(f"admin:{name}", args=[task.request_id, task.pk]), label)
            for name, label in links
        ),
    )


def _company_link(task: RecipientTask):
    return format_html(
        '<a href="{}">{}</a>',
        reverse("admin:disclosure_recipienttask_change", args=[task.pk]),
        task.employer.name,
    )


def _email_problem(task: RecipientTask) -> str:
    """Why the company's email failed, as the relay (or the outbox) put it: a failed task is
    staff's to act on, and the request's page is where they look first."""
    if not task.failed:
        return "—"
    return Truncator(task.email.last_error).chars(300) or "—"


def _event_by(event: RequestEvent):
    """Who did it, as staff say it (the actor labels are written for the student)."""
    if event.actor_user_id and event.actor != RequestEvent.Actor.STUDENT:
        return event.actor_user
    return {
        RequestEvent.Actor.STUDENT: _("the student"),
        RequestEvent.Actor.COMPANY: _("the company"),
        RequestEvent.Actor.STAFF: _("support staff"),
        RequestEvent.Actor.SYSTEM: _("the portal"),
    }.get(event.actor, event.actor)


def _with_staff_actions(queryset, request: HttpRequest):
    """The task actions this staff member may take, on each row: a row's display method has
    no request to ask."""
    allowed = " ".join(perm for perm, _name, _label in TASK_ACTIONS if request.user.has_perm(perm))
    return queryset.annotate(staff_may=Value(allowed, CharField()))


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
            if perm in allowed
            and (name.endswith("close") or obj.status == SourceTask.Status.FAILED)
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


# --- the action forms -----------------------------------------------------------------------


def _textarea():
    return forms.Textarea(attrs={"rows": 4, "cols": 70})


class ReasonForm(forms.Form):
    required_css_class = "required"
    error_css_class = "errors"

    reason = forms.CharField(label=_("Reason"), max_length=2000, widget=_textarea())


class ExtendForm(ReasonForm):
    days = forms.IntegerField(label=_("Extend by (days)"), min_value=1, max_value=60)

    field_order = ["days", "reason"]


class AnswerForm(forms.Form):
    required_css_class = "required"
    error_css_class = "errors"

    answer = forms.ChoiceField(label=_("Answer"))
    answered_by = forms.CharField(
        label=_("Responsible person at the company"),
        max_length=200,
        help_text=_("The name of the person who gave the answer, as on their message."),
    )
    statement = forms.CharField(
        label=_("Their statement"),
        required=False,
        widget=_textarea(),
        help_text=_("Required when the company cannot comply: why."),
    )
    evidence = forms.CharField(
        label=_("Evidence"),
        widget=_textarea(),
        help_text=_("How the answer came (letter, email, phone call), when, and where it is kept."),
    )

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        labels = dict(RecipientTask.Answer.choices)
        self.fields["answer"].choices = [
            ("", "---------"),
            *((value, labels[value]) for value in ANSWERS_BY_KIND[kind]),
        ]


def _add_service_error(form: forms.Form, exc: ValidationError) -> None:
    """Put the service's refusal next to the field it is about, or above the form."""
    field = getattr(exc, "code", None)
    for message in exc.messages:
        form.add_error(field if field in form.fields else None, message)


# --- the admins -----------------------------------------------------------------------------


@admin.register(DataRequest)
class DataRequestAdmin(
    RecordsStudentReads, IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin
):
    read_what = StaffRead.What.REQUEST

    # Requests are filed by students and never deleted; the page is read-only and every
    # change goes through an action below, each with its own permission.

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
    show_full_result_count = False
    paginator = EstimatedCountPaginator
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
            {"fields": ["portal_done_at", "portal_summary_text", "file_list"]},
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
        known = {"activity_records_deleted", "consents_withdrawn", "kept"}
        if rest := {k: v for k, v in summary.items() if k not in known}:
            lines.append(json.dumps(rest, ensure_ascii=False))
        if not lines:
            return "—"
        return format_html(
            "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((line,) for line in lines))
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

    # --- actions ----------------------------------------------------------------------------

    def get_urls(self):
        def view(function, route, name):
            return path(
                route,
                self.admin_site.admin_view(require_http_methods(["GET", "HEAD", "POST"])(function)),
                name=f"disclosure_datarequest_{name}",
            )

        return [
            view(self.extend_view, "<int:pk>/extend/", "extend"),
            view(self.cancel_view, "<int:pk>/cancel/", "cancel"),
            view(self.task_resend_view, "<int:pk>/tasks/<int:task_pk>/resend/", "task_resend"),
            view(self.task_answer_view, "<int:pk>/tasks/<int:task_pk>/answer/", "task_answer"),
            view(self.task_close_view, "<int:pk>/tasks/<int:task_pk>/close/", "task_close"),
            view(
                self.source_recall_view, "<int:pk>/sources/<int:task_pk>/recall/", "source_recall"
            ),
            view(self.source_close_view, "<int:pk>/sources/<int:task_pk>/close/", "source_close"),
        ] + super().get_urls()

    def _request_for_action(self, request: HttpRequest, pk: int, perm: str) -> DataRequest:
        if not request.user.has_perm(perm):
            raise PermissionDenied
        return get_object_or_404(DataRequest.objects.select_related("student"), pk=pk)

    def _task_for_action(
        self, request: HttpRequest, pk: int, task_pk: int, perm: str
    ) -> RecipientTask:
        data_request = self._request_for_action(request, pk, perm)
        task = get_object_or_404(
            RecipientTask.objects.select_related("employer", "email"),
            pk=task_pk,
            request=data_request,
        )
        task.request = data_request
        return task

    def _action(
        self,
        request: HttpRequest,
        *,
        data_request: DataRequest,
        task: RecipientTask | None = None,
        source_task: SourceTask | None = None,
        form: forms.Form,
        title: str,
        explanation: str,
        submit: str,
        perform: Callable[[dict], str],
        refused: str = "",
    ):
        """GET shows the form; a valid POST calls the service and returns to the request with
        its message; anything refused shows the form again, as it was typed, with the reason."""
        change_url = reverse("admin:disclosure_datarequest_change", args=[data_request.pk])
        if refused:
            # Reached from a stale page: the request or the task is already finished.
            self.message_user(request, refused, messages.ERROR)
            return HttpResponseRedirect(change_url)
        if request.method == "POST" and form.is_valid():
            try:
                # The change and its audit entry commit together, or neither does.
                with transaction.atomic():
                    done = perform(form.cleaned_data)
            except ValidationError as exc:
                _add_service_error(form, exc)
            else:
                self.message_user(request, done, messages.SUCCESS)
                return HttpResponseRedirect(change_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "subtitle": data_request.reference,
            "data_request": data_request,
            "task": task,
            "source_task": source_task,
            "days_left": days_left_text(data_request),
            "explanation": explanation,
            "form": form,
            "submit": submit,
            "change_url": change_url,
        }
        return TemplateResponse(request, ACTION_TEMPLATE, context)

    @staticmethod
    def _bound(request: HttpRequest) -> dict:
        return {"data": request.POST} if request.method == "POST" else {}

    @staticmethod
    def _request_refusal(data_request: DataRequest) -> str:
        if data_request.is_open:
            return ""
        return _("Request %(reference)s is %(status)s: there is nothing left to do.") % {
            "reference": data_request.reference,
            "status": data_request.get_status_display(),
        }

    @classmethod
    def _task_refusal(cls, task: RecipientTask) -> str:
        if refusal := cls._request_refusal(task.request):
            return refusal
        if task.is_done:
            return _("%(company)s's task is already %(status)s.") % {
                "company": task.employer.name,
                "status": task.get_status_display(),
            }
        return ""

    @staticmethod
    def _audit(request: HttpRequest, name: str, target, changes: dict, reason: str) -> None:
        audit_record(
            action=AuditEntry.Action.ACTION,
            name=name,
            request=request,
            target=target,
            changes=changes,
            reason=reason.strip(),
        )

    def extend_view(self, request: HttpRequest, pk: int):
        data_request = self._request_for_action(request, pk, EXTEND)

        def perform(data):
            due_before = data_request.due_at
            extended = request_extend(
                request=data_request, days=data["days"], reason=data["reason"], by=request.user
            )
            self._audit(
                request,
                EXTEND,
                extended,
                {
                    "due_at": [due_before.isoformat(), extended.due_at.isoformat()],
                    "days": data["days"],
                },
                data["reason"],
            )
            return _(
                "The due date of %(reference)s is now %(date)s. The student has been emailed "
                "the reason."
            ) % {
                "reference": extended.reference,
                "date": date_format(timezone.localtime(extended.due_at), "DATETIME_FORMAT"),
            }

        return self._action(
            request,
            data_request=data_request,
            form=ExtendForm(**self._bound(request)),
            title=_("Extend the due date"),
            explanation=_(
                "The student is emailed the new due date and the reason you give here, "
                "which also appears in their timeline. Companies marked overdue are no longer "
                "overdue until the new date."
            ),
            submit=_("Extend and tell the student"),
            perform=perform,
            refused=self._request_refusal(data_request),
        )

    def cancel_view(self, request: HttpRequest, pk: int):
        data_request = self._request_for_action(request, pk, CANCEL)

        def perform(data):
            status_before = data_request.status
            cancelled = request_cancel(request=data_request, reason=data["reason"], by=request.user)
            self._audit(
                request,
                CANCEL,
                cancelled,
                {"status": [status_before, cancelled.status]},
                data["reason"],
            )
            return _("Request %(reference)s is cancelled.") % {"reference": cancelled.reference}

        return self._action(
            request,
            data_request=data_request,
            form=ReasonForm(**self._bound(request)),
            title=_("Cancel the request"),
            explanation=_(
                "The request stops here: the companies' answer links stop working and no "
                "reminders are sent. What the portal already did is not undone. The reason "
                "appears in the student's timeline."
            ),
            submit=_("Cancel the request"),
            perform=perform,
            refused=self._request_refusal(data_request),
        )

    def task_resend_view(self, request: HttpRequest, pk: int, task_pk: int):
        task = self._task_for_action(request, pk, task_pk, RESEND)

        def perform(data):
            recipient_task_resend(task=task, by=request.user, reason=data["reason"])
            sent = RecipientTask.objects.select_related("email").get(pk=task.pk).email
            self._audit(
                request,
                RESEND,
                task,
                {"answer_link": ["revoked", "new"], "sent_to": sent.to if sent else None},
                data["reason"],
            )
            return _(
                "A new link was emailed to %(company)s (%(email)s); the earlier links no "
                "longer work."
            ) % {"company": task.employer.name, "email": task.employer.primary_contact.email}

        return self._action(
            request,
            data_request=task.request,
            task=task,
            form=ReasonForm(**self._bound(request)),
            title=_("Resend the link to %(company)s") % {"company": task.employer.name},
            explanation=_(
                "The company's privacy contact is emailed the request again with a new answer "
                "link; every earlier link stops working. Check the contact address first if "
                "the last email failed."
            ),
            submit=_("Send a new link"),
            perform=perform,
            refused=self._task_refusal(task),
        )

    def task_answer_view(self, request: HttpRequest, pk: int, task_pk: int):
        task = self._task_for_action(request, pk, task_pk, RECORD_ANSWER)

        def perform(data):
            status_before = task.status
            answered = recipient_task_answer(
                task=task,
                answer=data["answer"],
                answered_by=data["answered_by"],
                statement=data["statement"],
                via=RecipientTask.Via.STAFF,
                evidence=data["evidence"],
                staff=request.user,
            )
            self._audit(
                request,
                RECORD_ANSWER,
                answered,
                {
                    "status": [status_before, answered.status],
                    "answer": [None, answered.answer],
                    "answered_by": [None, answered.answered_by],
                    "statement": [None, answered.statement],
                },
                data["evidence"],
            )
            done = _("The answer of %(company)s is recorded.") % {"company": task.employer.name}
            data_request = DataRequest.objects.get(pk=task.request.pk)
            if not data_request.is_open:
                done += " " + _("Request %(reference)s is now %(status)s.") % {
                    "reference": data_request.reference,
                    "status": data_request.get_status_display(),
                }
            return done

        return self._action(
            request,
            data_request=task.request,
            task=task,
            form=AnswerForm(**self._bound(request), kind=task.request.kind),
            title=_("Record the answer of %(company)s") % {"company": task.employer.name},
            explanation=_(
                "For an answer that came another way than the link (a letter, an email, a "
                "phone call). The student is emailed the answer, and the request completes "
                "when it was the last company. Your name and the evidence are recorded."
            ),
            submit=_("Record the answer"),
            perform=perform,
            refused=self._task_refusal(task),
        )

    def task_close_view(self, request: HttpRequest, pk: int, task_pk: int):
        task = self._task_for_action(request, pk, task_pk, CLOSE_TASK)

        def perform(data):
            status_before = task.status
            recipient_task_close(task=task, by=request.user, reason=data["reason"])
            self._audit(
                request,
                CLOSE_TASK,
                task,
                {"status": [status_before, RecipientTask.Status.CLOSED]},
                data["reason"],
            )
            return _("The task of %(company)s is closed.") % {"company": task.employer.name}

        return self._action(
            request,
            data_request=task.request,
            task=task,
            form=ReasonForm(**self._bound(request)),
            title=_("Close the task of %(company)s") % {"company": task.employer.name},
            explanation=_(
                "Stop waiting for this company: its links stop working and no reminders are "
                "sent. The request is then only partially completed. The reason appears in "
                "the student's timeline."
            ),
            submit=_("Close the task"),
            perform=perform,
            refused=self._task_refusal(task),
        )

    def _source_task_for_action(self, request: HttpRequest, pk: int, task_pk: int, perm: str):
        data_request = self._request_for_action(request, pk, perm)
        return get_object_or_404(
            SourceTask.objects.select_related("source", "request__student"),
            pk=task_pk,
            request=data_request,
        )

    @classmethod
    def _source_refusal(cls, task: SourceTask, *, failed_only: bool = False) -> str:
        if refusal := cls._request_refusal(task.request):
            return refusal
        if task.is_done or (failed_only and task.status != SourceTask.Status.FAILED):
            return _("The task of %(source)s is %(status)s: there is nothing to do.") % {
                "source": task.source.name,
                "status": task.get_status_display(),
            }
        return ""

    def source_recall_view(self, request: HttpRequest, pk: int, task_pk: int):
        task = self._source_task_for_action(request, pk, task_pk, RESEND)

        def perform(data):
            source_task_recall(task=task, by=request.user, reason=data["reason"])
            self._audit(
                request,
                RESEND,
                task,
                {"status": [task.status, SourceTask.Status.QUEUED]},
                data["reason"],
            )
            return _("%(source)s will be called again.") % {"source": task.source.name}

        return self._action(
            request,
            data_request=task.request,
            source_task=task,
            form=ReasonForm(**self._bound(request)),
            title=_("Call %(source)s again") % {"source": task.source.name},
            explanation=_(
                "For a call that failed (the last error is on the request's page): once the "
                "system's owners have fixed it, the portal calls it again, with its retries. "
                "The reason is recorded in the audit log."
            ),
            submit=_("Call it again"),
            perform=perform,
            refused=self._source_refusal(task, failed_only=True),
        )

    def source_close_view(self, request: HttpRequest, pk: int, task_pk: int):
        task = self._source_task_for_action(request, pk, task_pk, CLOSE_TASK)

        def perform(data):
            source_task_close(task=task, by=request.user, reason=data["reason"])
            self._audit(
                request,
                CLOSE_TASK,
                task,
                {"status": [task.status, SourceTask.Status.CLOSED]},
                data["reason"],
            )
            return _("The task of %(source)s is closed.") % {"source": task.source.name}

        return self._action(
            request,
            data_request=task.request,
            source_task=task,
            form=ReasonForm(**self._bound(request)),
            title=_("Close the task of %(source)s") % {"source": task.source.name},
            explanation=_(
                "Stop waiting for this system: its answer is no longer taken. The request is "
                "then only partially completed. The reason appears in the student's timeline."
            ),
            submit=_("Close the task"),
            perform=perform,
            refused=self._source_refusal(task),
        )


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
        "evidence",
        "reasons",
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

    @admin.display(description=_("staff actions"))
    def staff_actions(self, obj):
        return _task_action_links(obj)


@admin.register(RequestEvent)
class RequestEventAdmin(RecordsStudentReads, ReadOnlyLedgerAdmin):
    read_student = "request__student_id"
    read_filters = ("request__student__id__exact",)

    list_display = ["at", "request_link", "kind", "company", "by", "detail"]
    list_filter = ["kind", "actor"]
    search_fields = [
        "request__reference",
        "request__student__email",
        "request__student__display_name",
        "=request__student__public_id",
        "task__employer__name",
        "task__employer__name_en",
    ]
    list_select_related = ["request", "task__employer", "actor_user"]
    date_hierarchy = "at"

    @admin.display(description=_("request"), ordering="request__reference")
    def request_link(self, obj):
        return _request_link(obj.request)

    @admin.display(description=_("company"))
    def company(self, obj):
        return obj.task.employer if obj.task else "—"

    @admin.display(description=_("by"), ordering="actor")
    def by(self, obj):
        return _event_by(obj)


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
