"""Companies' workspace links (issue 19): listed under each employer, read-only; staff can
revoke one (audited through `workspace_link_revoke`). Never the token: only its hash is
stored, and the admin shows neither."""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
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
    "origin",
    "created_at",
    "expires_at",
    "used_at",
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


# How many of a company's links its page lists (all of them are on the links' own list).
EMPLOYER_PAGE_LINKS = 10


def _link_state(link: WorkspaceLink, now) -> str:
    state = link.state(now)
    return {
        "revoked": _("revoked"),
        "replaced": _("revoked"),
        "expired": _("expired"),
        "used": _("used"),
    }.get(state, _("works"))


def workspace_links_html(employer) -> str:
    """On the employer's page: its newest links, and the way to all of them (and to revoke)."""
    if employer is None or employer.pk is None:
        return "—"
    links = list(
        WorkspaceLink.objects.filter(employer=employer).order_by("-created_at", "-id")[
            :EMPLOYER_PAGE_LINKS
        ]
    )
    now = timezone.now()
    items = format_html_join(
        "",
        "<li>{} · {} · {}</li>",
        (
            (
                link.email,
                date_format(timezone.localtime(link.created_at), "DATETIME_FORMAT"),
                _link_state(link, now),
            )
            for link in links
        ),
    )
    url = (
        reverse("admin:disclosure_workspacelink_changelist") + f"?employer__id__exact={employer.pk}"
    )
    events = (
        reverse("admin:disclosure_workspaceevent_changelist")
        + f"?employer__id__exact={employer.pk}"
    )
    return format_html(
        '<ul>{}</ul><a href="{}">{}</a> · <a href="{}">{}</a>',
        items,
        url,
        _("Every link of this company (to revoke)"),
        events,
        _("Sign-ins and answers in its workspace"),
    )


@admin.register(WorkspaceLink)
class WorkspaceLinkAdmin(ReadOnlyLedgerAdmin):
    list_display = FIELDS
    list_filter = [("employer", ChosenOnlyRelatedFilter), "origin", "revoked_at"]
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


@admin.register(WorkspaceEvent)
class WorkspaceEventAdmin(ReadOnlyLedgerAdmin):
    """Every company's workspace sign-ins and answers, newest first; by company."""

    list_display = ["at", "employer", "kind", "link_email", "ip", "detail"]
    list_filter = ["kind", ("employer", ChosenOnlyRelatedFilter)]
    list_select_related = ["employer", "link"]
    search_fields = ["employer__name", "employer__name_en", "link__email"]
    ordering = ["-at", "-id"]

    @admin.display(description=_("sent to"), ordering="link__email")
    def link_email(self, obj):
        return obj.link.email
