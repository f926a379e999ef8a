from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from portal.models import ActivityRecord, EmailMessage, Employer, User

admin.site.site_header = _("Student data portal · support")
admin.site.site_title = _("Student data portal · support")
admin.site.index_title = _("Back office")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "display_name", "language", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active", "language"]
    search_fields = ["email", "display_name", "public_id"]
    readonly_fields = ["public_id", "date_joined", "last_login"]
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
class ActivityRecordAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "student", "kind", "employer"]
    list_filter = ["kind"]
    search_fields = ["student__email", "employer__name"]
    list_select_related = ["student", "employer"]
    raw_id_fields = ["student", "employer"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(EmailMessage)
class EmailMessageAdmin(admin.ModelAdmin):
    list_display = ["created_at", "to", "kind", "language", "status", "attempts", "sent_at"]
    list_filter = ["status", "kind", "language"]
    search_fields = ["to", "subject"]
    readonly_fields = [f.name for f in EmailMessage._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
