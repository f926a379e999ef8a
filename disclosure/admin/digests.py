"""The digests companies were sent (issue 19, "How companies are told"): when, for which
period, what each told and its email's state. Read-only: a digest is a record."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from disclosure.models import CompanyDigest
from portal.shared.admin import LargeListMixin, ReadOnlyAdminMixin


@admin.register(CompanyDigest)
class CompanyDigestAdmin(LargeListMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["created_at", "employer", "delivery", "period", "told", "email_status"]
    list_filter = ["delivery"]
    list_select_related = ["employer", "email"]
    search_fields = ["employer__name", "employer__name_en", "period"]
    ordering = ["-created_at", "-pk"]
    fields = ["employer", "delivery", "period", "created_at", "told", "email"]
    readonly_fields = fields

    @admin.display(description=_("what it told"))
    def told(self, obj: CompanyDigest) -> str:
        return ", ".join(f"{reason}: {count}" for reason, count in sorted(obj.counts.items()))

    @admin.display(description=_("email"))
    def email_status(self, obj: CompanyDigest) -> str:
        return obj.email.get_status_display() if obj.email else "-"
