"""Recording each staff look at a student's personal data (issue 17, item 2).

`staff_read_record` writes one row per student shown; `RecordsStudentReads` is the admin
mixin that calls it for a change page (GET) and for a list filtered to one student. What it
records is what the student sees on "Who at the portal looked at your data" and in their
disclosure report, and what the Privacy officer reviews per staff member.
"""

from collections.abc import Iterable

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from audit.models import StaffRead
from portal.models import User
from portal.shared.logs import redact

# The query parameter by which a link (a ticket, an escalation email) says why staff open a
# page; the page is recorded with it.
REASON_PARAMETER = "reason"


# The roles as the student reads them (the groups of backoffice/roles.py, and superusers).
STAFF_ROLE_LABELS = {
    "Support": _("Support staff"),
    "Privacy officer": _("Privacy officer"),
    "superuser": _("System administrator"),
    "staff": _("Portal staff"),
}


def staff_role_label(role: str) -> str:
    return ", ".join(str(STAFF_ROLE_LABELS.get(r, r)) for r in role.split(", ") if r)


def staff_role(request: HttpRequest) -> str:
    """The staff member's role(s) at the time: their groups, or "superuser"."""
    cached = getattr(request, "_staff_role", None)
    if cached is None:
        user = request.user
        names = sorted(user.groups.values_list("name", flat=True))
        if user.is_superuser:
            names.insert(0, "superuser")
        cached = request._staff_role = ", ".join(names) or "staff"
    return cached


def staff_read_record(
    *,
    request: HttpRequest,
    student_ids: Iterable[int],
    what: str,
    record_type: str = "",
    label: str = "",
) -> int:
    """One row per student shown to the signed-in staff member. Returns how many."""
    user = request.user
    ids = sorted({pk for pk in student_ids if pk is not None})
    if not ids or not user.is_authenticated or not user.is_staff:
        return 0
    role = staff_role(request)
    reason = request.GET.get(REASON_PARAMETER, "").strip()[:500]
    path = redact(request.get_full_path())[:500]
    StaffRead.objects.bulk_create(
        StaffRead(
            staff=user,
            staff_label=user.email,
            role=role,
            student_id=pk,
            what=what,
            record_type=record_type,
            label=str(label)[:300],
            path=path,
            reason=reason,
        )
        for pk in ids
    )
    return len(ids)


def _follow(obj, path: str):
    for part in path.split("__"):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


class RecordsStudentReads:
    """ModelAdmin mixin (first among the bases): a GET of a change page, or of the list
    filtered to one student, is recorded as a staff look at that student's data.

    `read_student` is the attribute path from an object to its student's id;
    `read_filters` the list's query parameters that name one student by id.
    """

    read_student = "student_id"
    read_filters: tuple[str, ...] = ("student__id__exact",)
    read_what = StaffRead.What.RECORD

    def read_students_of(self, obj) -> list[int]:
        return [_follow(obj, self.read_student)]

    def read_students_of_list(self, request: HttpRequest) -> list[int]:
        ids = [int(v) for name in self.read_filters if (v := request.GET.get(name, "")).isdecimal()]
        if not ids:
            return []
        return list(User.objects.filter(pk__in=ids, is_staff=False).values_list("pk", flat=True))

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        response = super().changeform_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and object_id and response.status_code == 200:
            obj = (getattr(response, "context_data", None) or {}).get("original")
            if obj is not None:
                staff_read_record(
                    request=request,
                    student_ids=self.read_students_of(obj),
                    what=self.read_what,
                    record_type=self.model._meta.label_lower,
                    label=str(obj),
                )
        return response

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        if request.method == "GET" and response.status_code == 200:
            students = self.read_students_of_list(request)
            if students:
                staff_read_record(
                    request=request,
                    student_ids=students,
                    what=StaffRead.What.LEDGER,
                    record_type=self.model._meta.label_lower,
                )
        return response
