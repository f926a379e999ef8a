"""The register's ledgers, read-only: each inference (with "disputed" where a student
disputed it), the students' objections and the notices they sent to companies, and the
queue of disputes, which staff answer with a reason."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, F, OuterRef
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from audit.log import audit_record
from audit.models import AuditEntry
from audit.reads import RecordsStudentReads
from inferences.models import Inference, InferenceDispute, InferenceObjection, ObjectionNotice
from inferences.services import DisputeRefused, inference_dispute_answer
from inferences.services.disputes import MAX_ANSWER
from portal.shared.admin import (
    EMPLOYER_SEARCH,
    STUDENT_SEARCH,
    ChosenOnlyRelatedFilter,
    NoticeEmailColumns,
    ReadOnlyLedgerAdmin,
)

ANSWER_INFERENCEDISPUTE = "inferences.answer_inferencedispute"


class DisputedFilter(admin.SimpleListFilter):
    title = _("disputed")
    parameter_name = "disputed"

    def lookups(self, request, model_admin):
        return [("yes", _("disputed")), ("no", _("not disputed"))]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return queryset.filter(disputed=self.value() == "yes")
        return queryset


@admin.register(Inference)
class InferenceAdmin(RecordsStudentReads, ReadOnlyLedgerAdmin):
    list_display = [
        "made_at",
        "student",
        "model",
        "employer",
        "output",
        "handed_over_at",
        "dispute_state",
    ]
    list_filter = [DisputedFilter, "model", ("employer", ChosenOnlyRelatedFilter)]
    search_fields = [*STUDENT_SEARCH, *EMPLOYER_SEARCH, "=source_id"]
    list_select_related = ["student", "model", "employer"]
    date_hierarchy = "made_at"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(disputed=Exists(InferenceDispute.objects.filter(inference=OuterRef("pk"))))
        )

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "dispute_state"]

    @admin.display(description=_("dispute"), ordering="disputed")
    def dispute_state(self, obj):
        return _("disputed") if obj.disputed else "—"


@admin.register(InferenceObjection)
class InferenceObjectionAdmin(RecordsStudentReads, ReadOnlyLedgerAdmin):
    list_display = ["objected_at", "student", "model_code", "model", "language"]
    list_filter = ["model_code"]
    search_fields = [*STUDENT_SEARCH, "model_code"]
    list_select_related = ["student", "model"]
    date_hierarchy = "objected_at"


@admin.register(ObjectionNotice)
class ObjectionNoticeAdmin(NoticeEmailColumns, RecordsStudentReads, ReadOnlyLedgerAdmin):
    """As the stop-use notices: staff find here a company that was not told (no contact)."""

    read_student = "objection__student_id"
    read_filters = ()

    list_display = ["created_at", "employer", "student", "model_code", "email_to", "email_status"]
    list_filter = ["email__status", ("employer", ChosenOnlyRelatedFilter)]
    search_fields = [
        "objection__student__email",
        "objection__student__display_name",
        "=objection__student__public_id",
        *EMPLOYER_SEARCH,
        "email__to",
    ]
    list_select_related = ["employer", "email", "objection__student"]
    date_hierarchy = "created_at"

    @admin.display(description=_("student"), ordering="objection__student__email")
    def student(self, obj):
        return obj.objection.student

    @admin.display(description=_("model"), ordering="objection__model_code")
    def model_code(self, obj):
        return obj.objection.model_code


class OpenFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", _("waiting for an answer")), ("answered", _("answered"))]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(answered_at__isnull=True)
        if self.value() == "answered":
            return queryset.filter(answered_at__isnull=False)
        return queryset


class DisputeAnswerForm(forms.Form):
    required_css_class = "required"
    error_css_class = "errors"

    outcome = forms.ChoiceField(
        label=_("Outcome"), choices=InferenceDispute.Outcome.choices, widget=forms.RadioSelect
    )
    answer = forms.CharField(
        label=_("Answer to the student"),
        max_length=MAX_ANSWER,
        widget=forms.Textarea(attrs={"rows": 5, "cols": 70}),
        help_text=_("The student reads it on their page, in your words: say why."),
    )


@admin.register(InferenceDispute)
class InferenceDisputeAdmin(RecordsStudentReads, ReadOnlyLedgerAdmin):
    """The queue: open disputes first, oldest first; each answered once, with a reason."""

    list_display = ["filed_at", "student", "inference", "state", "outcome", "answered_at"]
    list_filter = [OpenFilter, "outcome"]
    search_fields = [*STUDENT_SEARCH]
    list_select_related = ["student", "inference__model"]
    date_hierarchy = "filed_at"
    change_form_template = "admin/inferences/inferencedispute/change_form.html"

    def get_ordering(self, request):
        # Open ones first, oldest first; then the answered ones, the latest answer first.
        return [F("answered_at").desc(nulls_first=True), "filed_at"]

    @admin.display(description=_("state"), ordering="answered_at")
    def state(self, obj):
        return _("waiting for an answer") if obj.is_open else _("answered")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_answer": request.user.has_perm(ANSWER_INFERENCEDISPUTE),
        }
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path(
                "<int:pk>/answer/",
                self.admin_site.admin_view(
                    require_http_methods(["GET", "HEAD", "POST"])(self.answer_view)
                ),
                name="inferences_inferencedispute_answer",
            ),
        ] + super().get_urls()

    def answer_dispute(self, **answer) -> InferenceDispute:
        """Record staff's answer. The requests' admin (disclosure/admin/corrections.py)
        replaces it: a dispute is a correction request, whose own part the answer ends."""
        return inference_dispute_answer(**answer)

    def answer_view(self, request: HttpRequest, pk: int):
        if not request.user.has_perm(ANSWER_INFERENCEDISPUTE):
            raise PermissionDenied
        dispute = get_object_or_404(
            InferenceDispute.objects.select_related(
                "student", "inference__model", "inference__employer"
            ),
            pk=pk,
        )
        page = reverse("admin:inferences_inferencedispute_change", args=[pk])
        form = DisputeAnswerForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                with transaction.atomic():
                    answered = self.answer_dispute(
                        dispute=dispute,
                        by=request.user,
                        outcome=data["outcome"],
                        answer=data["answer"],
                    )
                    audit_record(
                        action=AuditEntry.Action.ACTION,
                        name="inferences.answer_inferencedispute",
                        request=request,
                        target=answered,
                        changes={
                            "outcome": [None, answered.outcome],
                            "answered_at": [None, answered.answered_at.isoformat()],
                        },
                        reason=answered.answer,
                    )
            except DisputeRefused as refused:
                form.add_error(None, refused.messages[0])
            else:
                self.message_user(
                    request,
                    _("Answered. The student reads your answer on their page."),
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(page)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Answer a dispute"),
            "dispute": dispute,
            "page": page,
            "form": form,
        }
        return TemplateResponse(request, "admin/inferences/inferencedispute/answer.html", context)
