import json
from datetime import timedelta

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from audit.log import audit_verify
from audit.models import AuditEntry, StaffRead
from portal.shared.admin import LargeListMixin


class ReadOnly:
    """Nobody adds, edits or deletes a row of these ledgers here, superusers included."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnly, LargeListMixin, admin.ModelAdmin):
    """The log, read-only: nobody adds, edits or deletes an entry here."""

    list_display = ["seq", "at", "actor_label", "action", "name", "target_type", "target_repr"]
    list_filter = [
        ("actor", admin.RelatedOnlyFieldListFilter),
        "action",
        "target_type",
        ("at", admin.DateFieldListFilter),
    ]
    search_fields = ["actor_label", "target_repr", "target_id", "name", "reason"]
    date_hierarchy = "at"
    list_select_related = False
    readonly_fields = [
        "seq",
        "at",
        "actor_label",
        "action",
        "name",
        "target_type",
        "target_id",
        "target_repr",
        "changes_table",
        "reason",
        "ip",
        "prev_hash",
        "entry_hash",
    ]
    fields = readonly_fields
    change_list_template = "admin/audit/auditentry/change_list.html"

    @admin.display(description=_("what changed"))
    def changes_table(self, obj: AuditEntry):
        if not obj.changes:
            return "—"
        rows = format_html_join(
            "",
            "<tr><th scope='row'>{}</th><td>{}</td><td>{}</td></tr>",
            (
                (field, _json(values[0]), _json(values[1]))
                if isinstance(values, list) and len(values) == 2
                else (field, "", _json(values))
                for field, values in obj.changes.items()
            ),
        )
        return format_html(
            "<table><thead><tr><th scope='col'>{}</th><th scope='col'>{}</th>"
            "<th scope='col'>{}</th></tr></thead><tbody>{}</tbody></table>",
            _("field"),
            _("before"),
            _("after"),
            rows,
        )

    def get_urls(self):
        return [
            path(
                "verify/",
                self.admin_site.admin_view(self.verify_view),
                name="audit_auditentry_verify",
            ),
        ] + super().get_urls()

    def verify_view(self, request: HttpRequest):
        # Refused like every other officer-only view (403), not quietly redirected, so a
        # forged POST by another role is visible as what it is.
        if not self.has_view_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:audit_auditentry_changelist"))
        report = audit_verify()
        if report.intact:
            self.message_user(
                request,
                _("The audit log is intact: %(count)d entries, chain unbroken.")
                % {"count": report.checked},
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                _("The audit log is broken at %(where)s.") % {"where": report.first_break},
                messages.ERROR,
            )
        return HttpResponseRedirect(reverse("admin:audit_auditentry_changelist"))


def _json(value) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# Staff looks at students' data (issue 17, item 2) ---------------------------------------------
# A staff member who opened more distinct students than this many times the median of their
# colleagues (and at least FLAG_MINIMUM) in the period is flagged for the Privacy officer.
FLAG_FACTOR = 3
FLAG_MINIMUM = 20
PERIODS = (7, 30, 90)  # days


def looks_per_staff(*, days: int, now=None) -> list[dict]:
    """Per staff member over the last `days`: looks, distinct students, and a flag when the
    students are unusually many. One grouped query."""
    since = (now or timezone.now()) - timedelta(days=days)
    rows = list(
        StaffRead.objects.filter(at__gte=since)
        .values("staff_id", "staff_label")
        .annotate(
            looks=Count("pk"),
            students=Count("student_id", distinct=True),
            last=Max("at"),
            roles=Max("role"),
        )
        .order_by("-students", "staff_label")
    )
    counts = sorted(r["students"] for r in rows)
    median = counts[len(counts) // 2] if counts else 0
    for row in rows:
        row["unusual"] = row["students"] >= max(FLAG_MINIMUM, FLAG_FACTOR * median) and (
            len(rows) > 1 or row["students"] >= FLAG_MINIMUM
        )
    return rows


@admin.register(StaffRead)
class StaffReadAdmin(ReadOnly, LargeListMixin, admin.ModelAdmin):
    """Who at the portal looked at which student's data, for the Privacy officer: read-only,
    filtered by staff member, role, what and date, and summed up per staff member."""

    list_display = ["at", "staff_label", "role", "student_link", "what", "label", "reason"]
    list_filter = [
        ("staff", admin.RelatedOnlyFieldListFilter),
        "role",
        "what",
        ("at", admin.DateFieldListFilter),
    ]
    search_fields = ["staff_label", "label", "reason", "=student__email"]
    date_hierarchy = "at"
    list_select_related = ["student"]
    change_list_template = "admin/audit/staffread/change_list.html"
    fields = readonly_fields = [
        "at",
        "staff_label",
        "role",
        "student",
        "what",
        "label",
        "path",
        "reason",
    ]

    @admin.display(description=_("student"), ordering="student__email")
    def student_link(self, obj: StaffRead):
        return obj.student.email if obj.student_id and obj.student else obj.student_id

    def get_urls(self):
        return [
            path(
                "per-staff/",
                self.admin_site.admin_view(self.per_staff_view),
                name="audit_staffread_per_staff",
            ),
            *super().get_urls(),
        ]

    def per_staff_view(self, request: HttpRequest):
        if not self.has_view_permission(request):
            raise PermissionDenied
        days = next((d for d in PERIODS if str(d) == request.GET.get("days")), 30)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Looks at students' data, per staff member"),
            "rows": looks_per_staff(days=days),
            "days": days,
            "periods": PERIODS,
            "flag_factor": FLAG_FACTOR,
            "flag_minimum": FLAG_MINIMUM,
            "list_url": reverse("admin:audit_staffread_changelist"),
        }
        return TemplateResponse(request, "admin/audit/staffread/per_staff.html", context)
