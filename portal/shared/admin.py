"""What several apps' admins share: read-only admins for the ledgers, a filter for
relations to large tables, and the search fields by student and by company."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from portal.shared.admin_search import IndexedSearchMixin
from portal.shared.keyset import KeysetChangeList
from portal.shared.pagination import EstimatedCountPaginator


class ReadOnlyAdminMixin:
    """No add, change or delete here, superusers included; for a ModelAdmin or an inline."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class NoticeEmailColumns:
    """The columns of a notice kept with its email (`email`, a portal EmailMessage): to whom
    it went and the email's state. List `email` in list_select_related."""

    @admin.display(description=_("sent to"), ordering="email__to")
    def email_to(self, obj):
        return obj.email.to

    @admin.display(description=_("email status"), ordering="email__status")
    def email_status(self, obj):
        return obj.email.get_status_display()


class LargeListMixin:
    """A ModelAdmin over a large table: no full count on every page, the unfiltered list
    counted by PostgreSQL's estimate (portal/shared/pagination.py), and deep pages found by
    position instead of OFFSET (portal/shared/keyset.py)."""

    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def get_changelist(self, request, **kwargs):
        return KeysetChangeList


class ReadOnlyLedgerAdmin(LargeListMixin, IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Staff read a ledger; nobody changes it here, superusers included (DESIGN.md, "Ledgers
    are append-only"). A large table (LargeListMixin), searched by student or company through
    their keys (portal/shared/admin_search.py).
    """

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]


class ChosenOnlyRelatedFilter(admin.RelatedFieldListFilter):
    """A filter by a relation to a large table (30,000 employers): it lists only the one
    chosen, not every row of the table on every page. Links from elsewhere (an employer's
    page, the dashboard) choose it by the same parameter as Django's filter
    (`employer__id__exact`); the search box finds a company by name."""

    def has_output(self):
        return bool(self.lookup_val)

    def field_choices(self, field, request, model_admin):
        if not self.lookup_val:
            return []
        related = field.remote_field.model._default_manager.filter(pk__in=self.lookup_val)
        return [(obj.pk, str(obj)) for obj in related]


# Searching any ledger's rows by student (email, name or pseudonymous id) or by company.
STUDENT_SEARCH = ["student__email", "student__display_name", "=student__public_id"]
EMPLOYER_SEARCH = ["employer__name", "employer__name_en"]
