"""Every request's timeline entries in one list, to search by request, student or company
(each request's own timeline is an inline on its page)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from audit.reads import RecordsStudentReads
from disclosure.admin.common import _event_by, _request_link
from disclosure.models import RequestEvent
from portal.shared.admin import ReadOnlyLedgerAdmin


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
