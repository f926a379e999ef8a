import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from audit.log import audit_verify
from audit.models import AuditEntry
from portal.pagination import EstimatedCountPaginator


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
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
    show_full_result_count = False
    paginator = EstimatedCountPaginator
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

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def _json(value) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
