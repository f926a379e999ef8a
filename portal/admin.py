from allauth.account.admin import EmailAddressAdmin as AllauthEmailAddressAdmin
from allauth.account.models import EmailAddress
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from audit.log import audit_record
from audit.mixins import AuditedModelAdmin
from audit.models import AuditEntry
from portal.models import ActivityRecord, EmailMessage, Employer, User

admin.site.site_header = _("Student data portal · support")
admin.site.site_title = _("Student data portal · support")
admin.site.index_title = _("Back office")


class ReadOnlyLedgerAdmin(admin.ModelAdmin):
    """Staff read a ledger; nobody changes it here, superusers included (DESIGN.md, "Ledgers
    are append-only"). Large tables: no full count on every page.
    """

    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# Searching a student's rows in any ledger: by email, name or pseudonymous id.
STUDENT_SEARCH = ["student__email", "student__display_name", "=student__public_id"]


@admin.register(User)
class UserAdmin(AuditedModelAdmin, DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "display_name", "language", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active", "language", "groups"]
    search_fields = ["email", "display_name", "=public_id"]
    readonly_fields = ["public_id", "date_joined", "last_login"]
    change_form_template = "admin/portal/user/change_form.html"
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Profile"), {"fields": ["display_name", "language", "public_id"]}),
        (
            _("Permissions"),
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        (_("Dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "display_name", "password1", "password2"],
            },
        )
    ]

    def user_change_password(self, request, id, form_url=""):
        # Django's password form saves without save_model: record it here, in one transaction.
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:
                audit_record(
                    action=AuditEntry.Action.CHANGE,
                    request=request,
                    target=self.get_object(request, unquote(id)),
                    changes={"password": ["•••", "••• (changed)"]},
                    reason=self._reason(request),
                )
        return response


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(AuditedModelAdmin, DjangoGroupAdmin):
    """The roles (backoffice/roles.py). A migration sets them; a change here is audited."""


admin.site.unregister(EmailAddress)


@admin.register(EmailAddress)
class EmailAddressAdmin(AuditedModelAdmin, AllauthEmailAddressAdmin):
    @admin.action(description=_("Mark selected email addresses as verified"))
    def make_verified(self, request, queryset):
        with transaction.atomic():
            before = {e.pk: e for e in queryset.filter(verified=False)}
            super().make_verified(request, queryset)
            for address in EmailAddress.objects.filter(pk__in=before, verified=True):
                audit_record(
                    action=AuditEntry.Action.CHANGE,
                    request=request,
                    target=address,
                    changes={"verified": [False, True]},
                )


@admin.register(Employer)
class EmployerAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "name_en",
        "privacy_contact_name",
        "privacy_contact_email",
        "language",
        "is_active",
    ]
    list_filter = ["is_active", "language"]
    search_fields = ["name", "name_en", "privacy_contact_email"]


@admin.register(ActivityRecord)
class ActivityRecordAdmin(ReadOnlyLedgerAdmin):
    list_display = ["occurred_at", "student", "kind", "employer", "detail"]
    list_filter = ["kind"]
    search_fields = [*STUDENT_SEARCH, "employer__name", "employer__name_en"]
    list_select_related = ["student", "employer"]
    date_hierarchy = "occurred_at"


@admin.register(EmailMessage)
class EmailMessageAdmin(ReadOnlyLedgerAdmin):
    list_display = ["created_at", "to", "kind", "language", "status", "attempts", "sent_at"]
    list_filter = ["status", "kind", "language"]
    search_fields = ["to", "subject"]
    date_hierarchy = "created_at"
