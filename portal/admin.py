import re
import unicodedata

from allauth.account.admin import EmailAddressAdmin as AllauthEmailAddressAdmin
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.admin import SocialAccountAdmin as AllauthSocialAccountAdmin
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialToken
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from audit.log import audit_record
from audit.mixins import AuditedModelAdmin
from audit.models import AuditEntry, StaffRead
from audit.reads import RecordsStudentReads
from portal.models import (
    ActivityRecord,
    EmailMessage,
    Employer,
    Language,
    PrivacyContact,
    User,
)
from portal.second_factor import RESET_SECOND_FACTOR, second_factor_reset
from portal.shared.admin import (
    EMPLOYER_SEARCH,
    STUDENT_SEARCH,
    LargeListMixin,
    ReadOnlyAdminMixin,
    ReadOnlyLedgerAdmin,
)
from portal.shared.admin_search import IndexedSearchMixin

admin.site.site_header = _("Student data portal · support")
admin.site.site_title = _("Student data portal · support")
admin.site.index_title = _("Back office")


class SecondFactorResetForm(forms.Form):
    required_css_class = "required"
    error_css_class = "errors"

    reason = forms.CharField(
        label=_("Reason"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 70}),
        help_text=_(
            "How you checked it is really them asking, e.g. in person with their staff ID."
        ),
    )


@admin.register(User)
class UserAdmin(
    RecordsStudentReads, LargeListMixin, IndexedSearchMixin, AuditedModelAdmin, DjangoUserAdmin
):
    # A student's page is a look at their data (a staff member's page is not recorded).
    read_what = StaffRead.What.PROFILE
    read_filters = ()

    def read_students_of(self, obj):
        return [] if obj.is_staff else [obj.pk]

    # 100,000 students (LargeListMixin): pages follow the email address, its unique index.
    ordering = ["email"]
    list_display = ["email", "display_name", "language", "is_staff", "is_active", "date_joined"]
    list_filter = ["is_staff", "is_superuser", "is_active", "language", "groups"]
    search_fields = ["email", "display_name", "=public_id"]
    readonly_fields = ["public_id", "date_joined", "last_login", "closed_at", "second_factor"]
    change_form_template = "admin/portal/user/change_form.html"
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Profile"), {"fields": ["display_name", "language", "public_id"]}),
        (
            _("Permissions"),
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        (_("Two-factor authentication"), {"fields": ["second_factor"]}),
        (_("Dates"), {"fields": ["last_login", "date_joined", "closed_at"]}),
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

    @admin.display(description=_("second factor"))
    def second_factor(self, obj):
        labels = [a.get_type_display() for a in Authenticator.objects.filter(user=obj)]
        return ", ".join(sorted(map(str, labels))) or _("none")

    def get_urls(self):
        return [
            path(
                "<int:pk>/reset-second-factor/",
                self.admin_site.admin_view(self.reset_second_factor_view),
                name="portal_user_reset_second_factor",
            ),
            *super().get_urls(),
        ]

    def reset_second_factor_view(self, request: HttpRequest, pk: int):
        """The Privacy officer removes a lost second factor, with the reason, audited."""
        if not request.user.has_perm(RESET_SECOND_FACTOR):
            raise PermissionDenied
        person = get_object_or_404(User, pk=pk)
        person_url = reverse("admin:portal_user_change", args=[person.pk])
        form = SecondFactorResetForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                second_factor_reset(
                    user=person,
                    by=request.user,
                    reason=form.cleaned_data["reason"],
                    request=request,
                )
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error(None, message)
            else:
                self.message_user(
                    request,
                    _(
                        "The second factor of %(email)s is removed. They set up a new one the "
                        "next time they open the back office."
                    )
                    % {"email": person.email},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(person_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Reset the second factor"),
            "subtitle": person.email,
            "person": person,
            "person_url": person_url,
            "authenticators": Authenticator.objects.filter(user=person).order_by("type"),
            "form": form,
        }
        return TemplateResponse(request, "admin/portal/user/reset_second_factor.html", context)

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


# allauth.mfa's own admin edits and deletes authenticators (and shows their stored data)
# unaudited; staff remove a lost second factor only through "Reset second factor" above.
admin.site.unregister(Authenticator)

admin.site.unregister(EmailAddress)


@admin.register(EmailAddress)
class EmailAddressAdmin(LargeListMixin, AuditedModelAdmin, AllauthEmailAddressAdmin):
    """One address a student (100,000 at bench scale): pages by position, as the other
    large lists, instead of allauth's numbered pages (the last one skipped 100,000 rows)."""

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


# The job site's sign-in is configured from the environment (settings.py), and the portal
# keeps no tokens: allauth's admins for those would only show secrets or invite a second,
# unaudited configuration.
admin.site.unregister(SocialApp)
admin.site.unregister(SocialToken)
admin.site.unregister(SocialAccount)


@admin.register(SocialAccount)
class SocialAccountAdmin(LargeListMixin, AuditedModelAdmin, AllauthSocialAccountAdmin):
    """A student's link to the job site's account (uid = the site's subject id). It is made
    only by signing in; staff may see it and remove it (audited), e.g. when the site's
    account was taken over, after which the student signs in by email or links again."""

    readonly_fields = ("user", "provider", "uid", "last_login", "date_joined", "extra_data")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# --- employers and their privacy contacts -------------------------------------------------


class EmployerForm(forms.ModelForm):
    # Wider than the 13 digits: a number pasted as printed ("7000-01-205-0002", full-width
    # digits) is tidied in clean_corporate_number, then the model's validator checks it.
    corporate_number = forms.CharField(
        label=_("corporate number"),
        max_length=40,
        required=False,
        help_text=Employer._meta.get_field("corporate_number").help_text,
    )

    class Meta:
        model = Employer
        fields = ["name", "name_en", "corporate_number", "is_active"]

    def clean_corporate_number(self) -> str | None:
        value = unicodedata.normalize("NFKC", self.cleaned_data["corporate_number"])
        return re.sub(r"[\s\-‐‑–−]", "", value) or None


class PrivacyContactFormSet(BaseInlineFormSet):
    """At least one contact, and exactly one primary: requests go to the primary contact,
    the others are copied."""

    def _kept(self) -> list:
        return [
            form
            for form in self.forms
            if (form in self.initial_forms or form.has_changed())
            and not self._should_delete_form(form)
        ]

    def clean(self):
        super().clean()
        kept = self._kept()
        if not kept:
            raise ValidationError(
                _("Add at least one privacy contact: requests to the company go to them."),
                code="no_contact",
            )
        primaries = sum(1 for form in kept if form.cleaned_data.get("is_primary"))
        if primaries != 1:
            raise ValidationError(
                _(
                    "Mark exactly one contact as primary (now %(count)s): requests are "
                    "addressed to the primary contact, and the others are copied."
                )
                % {"count": primaries},
                code="primary",
            )

    def save(self, commit=True):
        if commit and self.instance.pk:
            # The database allows one primary per company at every moment: step the old
            # primary down before the new one is written.
            staying = [
                form.instance.pk
                for form in self._kept()
                if form.cleaned_data.get("is_primary") and form.instance.pk
            ]
            PrivacyContact.objects.filter(employer=self.instance, is_primary=True).exclude(
                pk__in=staying
            ).update(is_primary=False)
        return super().save(commit)


class PrivacyContactInline(admin.TabularInline):
    model = PrivacyContact
    formset = PrivacyContactFormSet
    fields = ["name", "email", "language", "is_primary"]
    min_num = 1
    extra = 1  # a blank row to add one more without JavaScript


class PrimaryLanguageFilter(admin.SimpleListFilter):
    title = _("language for messages")
    parameter_name = "language"

    def lookups(self, request, model_admin):
        return Language.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(primary_language=self.value())
        return queryset


@admin.register(Employer)
class EmployerAdmin(LargeListMixin, IndexedSearchMixin, AuditedModelAdmin):
    """Client companies. Every change (with its contacts) goes to the audit log. The
    disclosure app extends this admin: see disclosure/admin/employers.py. 30,000 of them:
    pages follow the name (LargeListMixin), and the search finds contacts through their
    keys, not a join (IndexedSearchMixin)."""

    form = EmployerForm
    inlines = [PrivacyContactInline]
    list_display = [
        "name",
        "corporate_number",
        "primary_contact",
        "language",
        "request_delivery",
        "is_active",
    ]
    list_filter = ["is_active", PrimaryLanguageFilter, "request_delivery"]
    search_fields = ["name", "name_en", "corporate_number", "contacts__email"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request):
        primary = PrivacyContact.objects.filter(employer=OuterRef("pk"), is_primary=True)
        return (
            super()
            .get_queryset(request)
            .annotate(
                primary_email=Subquery(primary.values("email")[:1]),
                primary_language=Subquery(primary.values("language")[:1]),
            )
        )

    @admin.display(description=_("primary contact"), ordering="primary_email")
    def primary_contact(self, obj):
        if obj.primary_email is None:
            return format_html(
                '<strong class="errornote">{}</strong>',
                _("none: requests to this company cannot be sent"),
            )
        return obj.primary_email

    @admin.display(description=_("language for messages"), ordering="primary_language")
    def language(self, obj):
        return Language(obj.primary_language).label if obj.primary_language else "—"


@admin.register(PrivacyContact)
class PrivacyContactAdmin(LargeListMixin, IndexedSearchMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every company's contacts, to find one by address. They are edited on their company's
    page, where the one-primary rule is checked and a change of primary asks about open
    requests: not here."""

    list_display = ["email", "name", "employer", "language", "is_primary"]
    list_filter = ["is_primary", "language"]
    search_fields = ["email", "name", "employer__name", "employer__corporate_number"]
    list_select_related = ["employer"]


@admin.register(ActivityRecord)
class ActivityRecordAdmin(RecordsStudentReads, ReadOnlyLedgerAdmin):
    list_display = ["occurred_at", "student", "kind", "employer", "detail", "sender"]
    list_filter = ["kind"]
    # The sender's record id: what the job site quotes when it asks about a record.
    search_fields = [*STUDENT_SEARCH, *EMPLOYER_SEARCH, "=source_record_id"]
    list_select_related = ["student", "employer", "sender"]
    date_hierarchy = "occurred_at"


@admin.register(EmailMessage)
class EmailMessageAdmin(RecordsStudentReads, ReadOnlyLedgerAdmin):
    # A message's body is a look at its recipient's data, when the recipient is a student.
    read_what = StaffRead.What.EMAIL

    def read_students_of(self, obj):
        return list(
            User.objects.filter(email__iexact=obj.to, is_staff=False).values_list("pk", flat=True)
        )

    def read_students_of_list(self, request):
        to = request.GET.get("to__exact", "")
        if not to:
            return []
        return list(
            User.objects.filter(email__iexact=to, is_staff=False).values_list("pk", flat=True)
        )

    list_display = ["created_at", "to", "kind", "language", "status", "attempts", "sent_at"]
    list_filter = ["status", "kind", "language"]
    search_fields = ["to", "subject"]
    date_hierarchy = "created_at"
    # Ciphertext of what the bodies show as placeholders: of no use to a reader, not shown.
    exclude = ["sealed_secrets"]

    def get_readonly_fields(self, request, obj=None):
        return [
            name for name in super().get_readonly_fields(request, obj) if name not in self.exclude
        ]
