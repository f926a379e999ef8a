"""Companies' workspace links (issue 19): listed under each employer, read-only; staff can
revoke one (audited through `workspace_link_revoke`). Never the token: only its hash is
stored, and the admin shows neither."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from disclosure.admin.common import READONLY_INLINE_TEMPLATE
from disclosure.models import WorkspaceEvent, WorkspaceLink
from disclosure.services import workspace_link_revoke
from portal.shared.admin import ChosenOnlyRelatedFilter, ReadOnlyAdminMixin, ReadOnlyLedgerAdmin

# Who may revoke: the staff who may resend a company's answer link (backoffice/roles.py).
REVOKE_PERMISSION = "disclosure.resend_answer_link"
FIELDS = [
    "employer",
    "email",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
    "revoked_by",
]


class WorkspaceEventInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Every sign-in and answer made with the link."""

    model = WorkspaceEvent
    template = READONLY_INLINE_TEMPLATE
    fields = ["at", "kind", "ip", "detail"]
    readonly_fields = fields
    ordering = ["-at", "-id"]
    extra = 0
    can_delete = False


class WorkspaceLinkInline(ReadOnlyAdminMixin, admin.TabularInline):
    """On the employer's page: the links sent to its contacts; revoke from the list."""

    model = WorkspaceLink
    template = READONLY_INLINE_TEMPLATE
    fields = ["email", "created_at", "expires_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    ordering = ["-created_at"]
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True


@admin.register(WorkspaceLink)
class WorkspaceLinkAdmin(ReadOnlyLedgerAdmin):
    list_display = FIELDS
    list_filter = [("employer", ChosenOnlyRelatedFilter), "revoked_at"]
    list_select_related = ["employer", "revoked_by"]
    search_fields = ["email", "employer__name", "employer__name_en"]
    fields = FIELDS
    inlines = [WorkspaceEventInline]
    actions = ["revoke"]
    ordering = ["-created_at", "-id"]

    def get_readonly_fields(self, request, obj=None):
        return FIELDS

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm(REVOKE_PERMISSION)

    @admin.action(description=_("Revoke the chosen links"), permissions=["revoke"])
    def revoke(self, request, queryset):
        count = 0
        for link in queryset:
            count += workspace_link_revoke(
                link=link, by=request.user, reason="admin", request=request
            )
        messages.success(
            request,
            ngettext("%(count)d link revoked.", "%(count)d links revoked.", count)
            % {"count": count},
        )
