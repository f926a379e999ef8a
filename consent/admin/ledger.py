"""The consent ledger (every grant and withdrawal, with staff's change on a student's written
instruction) and the current consents derived from it."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from audit.log import audit_record
from audit.models import AuditEntry
from audit.reads import RecordsStudentReads
from consent.admin.common import RECORD_CONSENT_CHANGE
from consent.admin.forms import StaffConsentForm
from consent.models import Consent, ConsentEvent, ConsentScreen
from consent.services import consent_grant, consent_withdraw
from consent.services.consents import Actor
from portal.models import User
from portal.shared.admin import (
    EMPLOYER_SEARCH,
    STUDENT_SEARCH,
    ChosenOnlyRelatedFilter,
    ReadOnlyLedgerAdmin,
)
from portal.shared.locking import student_lock


@admin.register(ConsentEvent)
class ConsentEventAdmin(RecordsStudentReads, ReadOnlyLedgerAdmin):
    list_display = [
        "occurred_at",
        "student",
        "employer",
        "purpose",
        "action",
        "screen",
        "actor",
        "policy_version",
    ]
    list_filter = ["action", "purpose", ("employer", ChosenOnlyRelatedFilter), "screen", "actor"]
    search_fields = [*STUDENT_SEARCH, *EMPLOYER_SEARCH, "=receipt_id"]
    list_select_related = ["student", "employer", "purpose", "policy_version"]
    date_hierarchy = "occurred_at"

    def get_urls(self):
        return [
            path(
                "record/<int:student_pk>/",
                self.admin_site.admin_view(
                    require_http_methods(["GET", "HEAD", "POST"])(self.record_view)
                ),
                name="consent_consentevent_record",
            ),
        ] + super().get_urls()

    def record_view(self, request: HttpRequest, student_pk: int):
        """Staff grant or withdraw on the student's written instruction: through the same
        service as the student's own button, recorded as staff with the instruction."""
        if not request.user.has_perm(RECORD_CONSENT_CHANGE):
            raise PermissionDenied
        student = get_object_or_404(User, pk=student_pk)
        student_url = reverse("admin:portal_user_change", args=[student.pk])
        form = StaffConsentForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            employer, purpose, reason = data["employer"], data["purpose"], data["reason"].strip()
            try:
                with transaction.atomic():
                    # The student's row locked first, as the service does: `before` stays true.
                    student_lock(student_id=student.pk)
                    before = Consent.objects.filter(
                        student=student, employer=employer, purpose=purpose, granted=True
                    ).exists()
                    change = consent_grant if data["action"] == "grant" else consent_withdraw
                    event = change(
                        student=student,
                        employer=employer,
                        purpose=purpose,
                        screen=ConsentScreen.STAFF,
                        language=student.language,
                        actor=Actor.STAFF,
                        actor_user=request.user,
                        reason=reason,
                    )
                    after = data["action"] == "grant"
                    if before != after:
                        audit_record(
                            action=AuditEntry.Action.ACTION,
                            name="consent.staff_consent_change",
                            request=request,
                            target=student,
                            changes={
                                f"consent[{employer.pk}/{purpose.code}]": [before, after],
                                "employer": employer.name,
                                "consent_event": str(event.receipt_id),
                            },
                            reason=reason,
                        )
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error(None, message)
            else:
                if before == after:
                    self.message_user(
                        request, _("Nothing changed: it already was so."), messages.WARNING
                    )
                else:
                    self.message_user(
                        request,
                        _(
                            "Recorded: %(purpose)s for %(company)s is now %(state)s. The "
                            "student has been emailed a receipt."
                        )
                        % {
                            "purpose": purpose.code,
                            "company": employer.name,
                            "state": _("granted") if after else _("withdrawn"),
                        },
                        messages.SUCCESS,
                    )
                return HttpResponseRedirect(student_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Record a consent change on the student's instruction"),
            "subtitle": student.email,
            "student": student,
            "student_url": student_url,
            "grants": Consent.objects.filter(student=student, granted=True)
            .select_related("employer", "purpose")
            .order_by("employer__name", "purpose__code"),
            "form": form,
        }
        return TemplateResponse(request, "admin/consent/consentevent/record.html", context)


@admin.register(Consent)
class ConsentAdmin(RecordsStudentReads, ReadOnlyLedgerAdmin):
    """The current state, derived from the events; shown for support, changed only by them."""

    list_display = ["student", "employer", "purpose", "granted", "updated_at", "event"]
    list_filter = ["granted", "purpose", ("employer", ChosenOnlyRelatedFilter)]
    search_fields = [*STUDENT_SEARCH, *EMPLOYER_SEARCH]
    list_select_related = ["student", "employer", "purpose", "event"]
    date_hierarchy = "updated_at"
