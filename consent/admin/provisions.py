"""The records of data provided to companies, and the stop-use notices sent to them after a
withdrawal: ledgers, read-only."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from audit.reads import RecordsStudentReads
from consent.models import Provision, StopUseNotice
from portal.shared.admin import (
    EMPLOYER_SEARCH,
    STUDENT_SEARCH,
    ChosenOnlyRelatedFilter,
    NoticeEmailColumns,
    ReadOnlyLedgerAdmin,
)


@admin.register(Provision)
class ProvisionAdmin(RecordsStudentReads, ReadOnlyLedgerAdmin):
    list_display = [
        "provided_at",
        "student",
        "employer",
        "purpose",
        "data_items",
        "first_provided_at",
        "recorded_by",
    ]
    list_filter = ["purpose", ("employer", ChosenOnlyRelatedFilter)]
    search_fields = [*STUDENT_SEARCH, *EMPLOYER_SEARCH, "reference"]
    list_select_related = ["student", "employer", "purpose", "recorded_by"]
    date_hierarchy = "provided_at"


@admin.register(StopUseNotice)
class StopUseNoticeAdmin(NoticeEmailColumns, RecordsStudentReads, ReadOnlyLedgerAdmin):
    read_student = "event__student_id"
    read_filters = ()

    list_display = ["created_at", "employer", "student", "purpose", "email_to", "email_status"]
    list_filter = ["email__status", ("employer", ChosenOnlyRelatedFilter), "event__purpose"]
    search_fields = [
        "event__student__email",
        "event__student__display_name",
        "=event__student__public_id",
        *EMPLOYER_SEARCH,
        "email__to",
    ]
    list_select_related = ["employer", "email", "event__student", "event__purpose"]
    date_hierarchy = "created_at"

    @admin.display(description=_("student"), ordering="event__student__email")
    def student(self, obj):
        return obj.event.student

    @admin.display(description=_("purpose"), ordering="event__purpose__code")
    def purpose(self, obj):
        return obj.event.purpose
