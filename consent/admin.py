"""Staff's admin for policies, purposes and the consent ledgers (issue 3), with the roles of
issue 5: each staff action checks its own permission (backoffice/roles.py), every change is
written to the audit log, and the ledgers are read-only for everyone."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST

from audit.log import audit_record
from audit.mixins import AuditedModelAdmin
from audit.models import AuditEntry
from audit.reads import RecordsStudentReads
from consent import reports
from consent.api.keys import api_key_create
from consent.diff import text_diff
from consent.models import (
    ApiClient,
    Consent,
    ConsentEvent,
    ConsentScreen,
    PolicyAcceptance,
    PolicyVersion,
    Provision,
    Purpose,
    StopUseNotice,
)
from consent.services import consent_grant, consent_withdraw, policy_publish
from consent.services.consents import Actor
from portal.admin import (
    EMPLOYER_SEARCH,
    STUDENT_SEARCH,
    ChosenOnlyRelatedFilter,
    ReadOnlyLedgerAdmin,
)
from portal.files import attachment_response
from portal.locking import student_lock
from portal.models import Employer, User

# The permissions of the staff actions here (granted to roles in backoffice/roles.py).
RUN_IMPACT_REPORT = "consent.run_impact_report"
SEND_RECONSENT_MAILING = "consent.send_reconsent_mailing"
PUBLISH_POLICYVERSION = "consent.publish_policyversion"
RECORD_CONSENT_CHANGE = "consent.add_consentevent"

IMPACT_PER_PAGE = 100
STUDENT_COLUMNS = ["pk", "email", "display_name"]


def _page_url(request: HttpRequest, param: str, number: int) -> str:
    # Each section pages on its own; paging one keeps the other where it was.
    query = request.GET.copy()
    query[param] = number
    return f"?{query.urlencode()}"


def _textarea(rows=3):
    return forms.Textarea(attrs={"rows": rows, "cols": 70})


class AuditReasonForm(forms.Form):
    """The reason a staff member gives for an action, kept with it in the audit log."""

    required_css_class = "required"

    reason = forms.CharField(
        label=_("Reason (kept in the audit log)"),
        max_length=2000,
        required=False,
        widget=_textarea(2),
    )


def _iso(value):
    return value.isoformat() if value is not None else None


@admin.register(Purpose)
class PurposeAdmin(AuditedModelAdmin):
    list_display = [
        "code",
        "title_ja",
        "title_en",
        "requires_opt_in",
        "third_party_disclosure",
        "impact_link",
    ]
    list_filter = ["requires_opt_in", "third_party_disclosure"]
    search_fields = ["code", "title_ja", "title_en"]
    change_form_template = "admin/consent/purpose/change_form.html"

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        if request.user.has_perm(RUN_IMPACT_REPORT):
            return shown
        return [name for name in shown if name != "impact_link"]

    def render_change_form(self, request, context, *args, **kwargs):
        context["can_run_impact_report"] = request.user.has_perm(RUN_IMPACT_REPORT)
        return super().render_change_form(request, context, *args, **kwargs)

    @admin.display(description=_("impact report"))
    def impact_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:consent_purpose_impact", args=[obj.pk]),
            _("Impact report"),
        )

    def get_urls(self):
        return [
            path(
                "<int:pk>/impact/",
                self.admin_site.admin_view(self.impact_view),
                name="consent_purpose_impact",
            ),
            path(
                "<int:pk>/impact/<slug:section>.csv",
                self.admin_site.admin_view(self.impact_csv_view),
                name="consent_purpose_impact_csv",
            ),
            path(
                "<int:pk>/impact/request-review/",
                self.admin_site.admin_view(require_POST(self.impact_request_review_view)),
                name="consent_purpose_impact_request_review",
            ),
        ] + super().get_urls()

    def _reportable_purpose(self, request: HttpRequest, pk: int) -> Purpose:
        if not request.user.has_perm(RUN_IMPACT_REPORT):
            raise PermissionDenied
        return get_object_or_404(Purpose, pk=pk)

    def impact_view(self, request: HttpRequest, pk: int):
        purpose = self._reportable_purpose(request, pk)
        sections = []
        for key, title, explanation in (
            (
                reports.UNLISTED,
                _("Relying on this purpose without a policy that lists it"),
                _(
                    "Students with a live grant or a provision record for this purpose while "
                    "the newest version they accepted does not list it (or they accepted none)."
                ),
            ),
            (
                reports.NEVER_ACCEPTED,
                _("Never accepted a version listing this purpose"),
                _(
                    "Active students who accepted no version that lists this purpose, "
                    "including those who accepted no version at all."
                ),
            ),
        ):
            page_param = f"{key}-page"
            paginator = Paginator(
                reports.impact_section(purpose=purpose, section=key), IMPACT_PER_PAGE
            )
            page = paginator.get_page(request.GET.get(page_param))
            page.object_list = reports.with_impact_details(
                purpose=purpose,
                section=key,
                students=list(page.object_list.only(*STUDENT_COLUMNS)),
            )
            sections.append(
                {
                    "key": key,
                    "title": title,
                    "explanation": explanation,
                    "page": page,
                    "previous_url": _page_url(request, page_param, page.previous_page_number())
                    if page.has_previous()
                    else None,
                    "next_url": _page_url(request, page_param, page.next_page_number())
                    if page.has_next()
                    else None,
                    "csv_url": reverse("admin:consent_purpose_impact_csv", args=[purpose.pk, key]),
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Impact report: %(code)s") % {"code": purpose.code},
            "purpose": purpose,
            "current_version": PolicyVersion.objects.current(),
            "sections": sections,
            "can_request_review": request.user.has_perm(SEND_RECONSENT_MAILING),
            "review_form": AuditReasonForm(),
            "review_interval_days": reports.REVIEW_REQUEST_INTERVAL.days,
            "review_batch": reports.REVIEW_REQUEST_BATCH,
        }
        return render(request, "admin/consent/purpose/impact.html", context)

    def impact_csv_view(self, request: HttpRequest, pk: int, section: str):
        purpose = self._reportable_purpose(request, pk)
        if section not in reports.SECTIONS:
            raise Http404
        filename = reports.impact_csv_filename(purpose=purpose, section=section)
        return attachment_response(
            content=reports.impact_csv_lines(purpose=purpose, section=section),
            filename=filename,
            content_type="text/csv",
        )

    def impact_request_review_view(self, request: HttpRequest, pk: int):
        if not request.user.has_perm(SEND_RECONSENT_MAILING):
            raise PermissionDenied
        purpose = get_object_or_404(Purpose, pk=pk)
        form = AuditReasonForm(request.POST)
        reason = form.cleaned_data["reason"].strip() if form.is_valid() else ""
        try:
            with transaction.atomic():
                result = reports.review_request_send(purpose=purpose)
                audit_record(
                    action=AuditEntry.Action.ACTION,
                    name="consent.send_reconsent_mailing",
                    request=request,
                    target=purpose,
                    changes={
                        "queued": result.queued,
                        "skipped": result.skipped,
                        "remaining": result.remaining,
                    },
                    reason=reason,
                )
        except reports.ReviewRequestRefused as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(
                request,
                ngettext(
                    "Queued %(queued)d email.",
                    "Queued %(queued)d emails.",
                    result.queued,
                )
                % {"queued": result.queued}
                + " "
                + ngettext(
                    "Skipped %(skipped)d student asked in the last %(days)d days.",
                    "Skipped %(skipped)d students asked in the last %(days)d days.",
                    result.skipped,
                )
                % {"skipped": result.skipped, "days": reports.REVIEW_REQUEST_INTERVAL.days},
                messages.SUCCESS if result.queued else messages.INFO,
            )
            if result.remaining:
                self.message_user(
                    request,
                    ngettext(
                        "%(remaining)d more student is still to be asked: press the button "
                        "again to continue.",
                        "%(remaining)d more students are still to be asked: press the button "
                        "again to continue.",
                        result.remaining,
                    )
                    % {"remaining": result.remaining},
                    messages.WARNING,
                )
        return HttpResponseRedirect(reverse("admin:consent_purpose_impact", args=[purpose.pk]))


class PublishedFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("draft", _("draft")), ("published", _("published"))]

    def queryset(self, request, queryset):
        if self.value() == "draft":
            return queryset.filter(published_at__isnull=True)
        if self.value() == "published":
            return queryset.filter(published_at__isnull=False)
        return queryset


@admin.register(PolicyVersion)
class PolicyVersionAdmin(AuditedModelAdmin):
    list_display = [
        "label",
        "title_ja",
        "material",
        "effective_at",
        "published_at",
        "acceptance_count",
    ]
    list_filter = [PublishedFilter, "material"]
    search_fields = ["label", "title_ja", "title_en"]
    filter_horizontal = ["purposes"]
    change_form_template = "admin/consent/policyversion/change_form.html"
    fields = [
        "label",
        "title_ja",
        "body_ja",
        "title_en",
        "body_en",
        "summary_ja",
        "summary_en",
        "purposes",
        "material",
        "effective_at",
        "published_at",
        "published_by",
        "text_sha256_ja",
        "text_sha256_en",
    ]
    always_readonly = ["published_at", "published_by", "text_sha256_ja", "text_sha256_en"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(acceptance_total=Count("acceptances"))

    @admin.display(description=_("acceptances"), ordering="acceptance_total")
    def acceptance_count(self, obj):
        return obj.acceptance_total

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_published:
            return self.fields
        return self.always_readonly

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_published:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if change and PolicyVersion.objects.filter(pk=obj.pk, published_at__isnull=False).exists():
            # The form is read-only for published versions; a forged POST still ends here.
            raise ValidationError(_("A published version can never change."))
        super().save_model(request, obj, form, change)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if object_id and request.method == "POST" and "_publish" not in request.POST:
            obj = self.get_object(request, object_id)
            if obj is not None and obj.is_published:
                self.message_user(
                    request,
                    _(
                        "Version %(label)s is published and can never change. "
                        "Create a new version instead."
                    )
                    % {"label": obj.label},
                    messages.ERROR,
                )
                return HttpResponseRedirect(request.path)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        urls = super().get_urls()
        return [
            path(
                "<int:pk>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="consent_policyversion_preview",
            ),
            path(
                "<int:pk>/publish/",
                self.admin_site.admin_view(self.publish_view),
                name="consent_policyversion_publish",
            ),
        ] + urls

    def preview_view(self, request: HttpRequest, pk: int):
        version = get_object_or_404(PolicyVersion, pk=pk)
        # A draft's text is not public yet: staff in no role see no preview.
        if not self.has_view_permission(request, version):
            raise PermissionDenied
        previous = (
            PolicyVersion.objects.published()
            .exclude(pk=version.pk)
            .filter(effective_at__lte=version.effective_at)
            .order_by("-effective_at")
            .first()
        )
        languages = []
        for code in ("ja", "en"):
            text = version.text(code)
            languages.append(
                {
                    "code": code,
                    "text": text,
                    "diff": text_diff(previous.text(code).canonical, text.canonical)
                    if previous
                    else None,
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Preview of %(label)s") % {"label": version.label},
            "version": version,
            "previous": previous,
            "languages": languages,
            "purposes": version.purposes.all(),
            "can_publish": not version.is_published
            and request.user.has_perm(PUBLISH_POLICYVERSION),
            "publish_form": AuditReasonForm(),
        }
        return render(request, "admin/consent/policyversion/preview.html", context)

    def publish_view(self, request: HttpRequest, pk: int):
        if not request.user.has_perm(PUBLISH_POLICYVERSION):
            raise PermissionDenied
        version = get_object_or_404(PolicyVersion, pk=pk)
        change_url = reverse("admin:consent_policyversion_change", args=[pk])
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        form = AuditReasonForm(request.POST)
        reason = form.cleaned_data["reason"].strip() if form.is_valid() else ""
        try:
            with transaction.atomic():
                published = policy_publish(version=version, by=request.user)
                audit_record(
                    action=AuditEntry.Action.ACTION,
                    name="consent.publish_policyversion",
                    request=request,
                    target=published,
                    changes={
                        "published_at": [None, _iso(published.published_at)],
                        "effective_at": [_iso(version.effective_at), _iso(published.effective_at)],
                        "material": [version.material, published.material],
                    },
                    reason=reason,
                )
        except ValidationError as exc:
            for message in exc.messages:
                self.message_user(request, message, messages.ERROR)
            return HttpResponseRedirect(reverse("admin:consent_policyversion_preview", args=[pk]))
        self.message_user(
            request,
            _("Version %(label)s is published. Material: %(material)s.")
            % {"label": published.label, "material": _("yes") if published.material else _("no")},
            messages.SUCCESS,
        )
        return HttpResponseRedirect(change_url)


@admin.register(PolicyAcceptance)
class PolicyAcceptanceAdmin(RecordsStudentReads, ReadOnlyLedgerAdmin):
    """Who accepted which version, where and how. A ledger: read-only."""

    list_display = ["accepted_at", "student", "version", "screen", "language", "short_hash"]
    list_filter = ["version", "screen", "language"]
    search_fields = [*STUDENT_SEARCH, "=receipt_id"]
    list_select_related = ["student", "version"]
    date_hierarchy = "accepted_at"

    @admin.display(description=_("text hash"))
    def short_hash(self, obj):
        return obj.text_sha256[:12] + "…"


class StaffConsentForm(forms.Form):
    """A grant or withdrawal the student asked for in writing, entered by staff."""

    required_css_class = "required"
    error_css_class = "errors"

    employer = forms.ModelChoiceField(
        label=_("Company"), queryset=Employer.objects.filter(is_active=True).order_by("name")
    )
    purpose = forms.ModelChoiceField(
        label=_("Purpose"), queryset=Purpose.objects.filter(requires_opt_in=True).order_by("code")
    )
    action = forms.ChoiceField(
        label=_("Change"),
        choices=[
            (ConsentEvent.Action.GRANT, _("Grant")),
            (ConsentEvent.Action.WITHDRAW, _("Withdraw")),
        ],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label=_("The student's written instruction"),
        max_length=2000,
        widget=_textarea(4),
        help_text=_(
            "What the student asked, how (letter, email) and when, and where it is kept. "
            "It is recorded with the change, shown to the student and kept in the audit log."
        ),
    )


@admin.register(ConsentEvent)
class ConsentEventAdmin(RecordsStudentReads, ReadOnlyLedgerAdmin):
    list_display = [
        "occurred_at",
        "student",
        "employer",
        "purpose",
        "action",
        "screen",
        "actor",
        "policy_version",
    ]
    list_filter = ["action", "purpose", ("employer", ChosenOnlyRelatedFilter), "screen", "actor"]
    search_fields = [*STUDENT_SEARCH, *EMPLOYER_SEARCH, "=receipt_id"]
    list_select_related = ["student", "employer", "purpose", "policy_version"]
    date_hierarchy = "occurred_at"

    def get_urls(self):
        return [
            path(
                "record/<int:student_pk>/",
                self.admin_site.admin_view(
                    require_http_methods(["GET", "HEAD", "POST"])(self.record_view)
                ),
                name="consent_consentevent_record",
            ),
        ] + super().get_urls()

    def record_view(self, request: HttpRequest, student_pk: int):
        """Staff grant or withdraw on the student's written instruction: through the same
        service as the student's own button, recorded as staff with the instruction."""
        if not request.user.has_perm(RECORD_CONSENT_CHANGE):
            raise PermissionDenied
        student = get_object_or_404(User, pk=student_pk)
        student_url = reverse("admin:portal_user_change", args=[student.pk])
        form = StaffConsentForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            employer, purpose, reason = data["employer"], data["purpose"], data["reason"].strip()
            try:
                with transaction.atomic():
                    # The student's row locked first, as the service does: `before` stays true.
                    student_lock(student_id=student.pk)
                    before = Consent.objects.filter(
                        student=student, employer=employer, purpose=purpose, granted=True
                    ).exists()
                    change = consent_grant if data["action"] == "grant" else consent_withdraw
                    event = change(
                        student=student,
                        employer=employer,
                        purpose=purpose,
                        screen=ConsentScreen.STAFF,
                        language=student.language,
                        actor=Actor.STAFF,
                        actor_user=request.user,
                        reason=reason,
                    )
                    after = data["action"] == "grant"
                    if before != after:
                        audit_record(
                            action=AuditEntry.Action.ACTION,
                            name="consent.staff_consent_change",
                            request=request,
                            target=student,
                            changes={
                                f"consent[{employer.pk}/{purpose.code}]": [before, after],
                                "employer": employer.name,
                                "consent_event": str(event.receipt_id),
                            },
                            reason=reason,
                        )
            except ValidationError as exc:
                for message in exc.messages:
                    form.add_error(None, message)
            else:
                if before == after:
                    self.message_user(
                        request, _("Nothing changed: it already was so."), messages.WARNING
                    )
                else:
                    self.message_user(
                        request,
                        _(
                            "Recorded: %(purpose)s for %(company)s is now %(state)s. The "
                            "student has been emailed a receipt."
                        )
                        % {
                            "purpose": purpose.code,
                            "company": employer.name,
                            "state": _("granted") if after else _("withdrawn"),
                        },
                        messages.SUCCESS,
                    )
                return HttpResponseRedirect(student_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Record a consent change on the student's instruction"),
            "subtitle": student.email,
            "student": student,
            "student_url": student_url,
            "grants": Consent.objects.filter(student=student, granted=True)
            .select_related("employer", "purpose")
            .order_by("employer__name", "purpose__code"),
            "form": form,
        }
        return TemplateResponse(request, "admin/consent/consentevent/record.html", context)


@admin.register(Consent)
class ConsentAdmin(RecordsStudentReads, ReadOnlyLedgerAdmin):
    """The current state, derived from the events; shown for support, changed only by them."""

    list_display = ["student", "employer", "purpose", "granted", "updated_at", "event"]
    list_filter = ["granted", "purpose", ("employer", ChosenOnlyRelatedFilter)]
    search_fields = [*STUDENT_SEARCH, *EMPLOYER_SEARCH]
    list_select_related = ["student", "employer", "purpose", "event"]
    date_hierarchy = "updated_at"


@admin.register(Provision)
class ProvisionAdmin(RecordsStudentReads, ReadOnlyLedgerAdmin):
    list_display = [
        "provided_at",
        "student",
        "employer",
        "purpose",
        "data_items",
        "first_provided_at",
        "recorded_by",
    ]
    list_filter = ["purpose", ("employer", ChosenOnlyRelatedFilter)]
    search_fields = [*STUDENT_SEARCH, *EMPLOYER_SEARCH, "reference"]
    list_select_related = ["student", "employer", "purpose", "recorded_by"]
    date_hierarchy = "provided_at"


@admin.register(StopUseNotice)
class StopUseNoticeAdmin(RecordsStudentReads, ReadOnlyLedgerAdmin):
    read_student = "event__student_id"
    read_filters = ()

    list_display = ["created_at", "employer", "student", "purpose", "email_to", "email_status"]
    list_filter = ["email__status", ("employer", ChosenOnlyRelatedFilter), "event__purpose"]
    search_fields = [
        "event__student__email",
        "event__student__display_name",
        "=event__student__public_id",
        *EMPLOYER_SEARCH,
        "email__to",
    ]
    list_select_related = ["employer", "email", "event__student", "event__purpose"]
    date_hierarchy = "created_at"

    @admin.display(description=_("student"), ordering="event__student__email")
    def student(self, obj):
        return obj.event.student

    @admin.display(description=_("purpose"), ordering="event__purpose__code")
    def purpose(self, obj):
        return obj.event.purpose

    @admin.display(description=_("sent to"), ordering="email__to")
    def email_to(self, obj):
        return obj.email.to

    @admin.display(description=_("email status"), ordering="email__status")
    def email_status(self, obj):
        return obj.email.get_status_display()


class ApiKeyCreateForm(forms.Form):
    required_css_class = "required"
    error_css_class = "errors"

    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("Who the key is for, e.g. “Analytics pipeline” or “Aoba Systems HR”."),
    )
    kind = forms.ChoiceField(
        label=_("Kind"), choices=ApiClient.Kind.choices, widget=forms.RadioSelect
    )
    employer = forms.ModelChoiceField(
        label=_("Company"),
        queryset=Employer.objects.filter(is_active=True).order_by("name"),
        required=False,
        help_text=_("For a company's key: it sees only that company's rows."),
    )
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        choices=ApiClient.Scope.choices,
        initial=[ApiClient.Scope.CONSENTS],
        widget=forms.CheckboxSelectMultiple,
        required=False,  # none ticked: consents, what every key could do before scopes
        help_text=_("activity:write is for the job site's own key, never a company's."),
    )
    reason = AuditReasonForm.base_fields["reason"]

    def clean(self):
        data = super().clean()
        kind, employer = data.get("kind"), data.get("employer")
        if kind == ApiClient.Kind.EMPLOYER and employer is None:
            self.add_error("employer", _("Choose the company the key is for."))
        if kind == ApiClient.Kind.PIPELINE and employer is not None:
            self.add_error("employer", _("The pipeline's key is for every company: choose none."))
        data["scopes"] = data.get("scopes") or [ApiClient.Scope.CONSENTS]
        if kind == ApiClient.Kind.EMPLOYER and ApiClient.Scope.ACTIVITY_WRITE in data["scopes"]:
            self.add_error("scopes", _("A company's key cannot send activity records."))
        return data


@admin.register(ApiClient)
class ApiClientAdmin(AuditedModelAdmin):
    """Staff with the permission make a key here (shown once; only its SHA-256 is stored),
    rename keys and revoke them. `manage.py create_api_key` does the same on the server."""

    list_display = [
        "name",
        "kind",
        "employer",
        "scopes",
        "key_prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["kind", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "key_prefix", *EMPLOYER_SEARCH]
    list_select_related = ["employer"]
    fields = [
        "name",
        "kind",
        "employer",
        "scopes",
        "key_prefix",
        "key_sha256",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    # A key's scope is fixed when it is made: a new key is made for a new scope.
    readonly_fields = [
        "kind",
        "employer",
        "scopes",
        "key_prefix",
        "key_sha256",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    def has_delete_permission(self, request, obj=None):
        # Provision records name the key that recorded them; a key is revoked, not deleted.
        return False

    def has_revoke_permission(self, request):
        return request.user.has_perm("consent.change_apiclient")

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "create_help": _(
                "A new key is shown once, when it is made (here, or on the server with "
                "“python manage.py create_api_key”); only its SHA-256 is stored."
            ),
        }
        return super().changelist_view(request, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        """Make a key and show it once. Not the model form: the key is made by the service."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ApiKeyCreateForm(request.POST if request.method == "POST" else None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Create an API key"),
            "form": form,
        }
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            employer = data["employer"] if data["kind"] == ApiClient.Kind.EMPLOYER else None
            with transaction.atomic():
                client, key = api_key_create(
                    name=data["name"].strip(), employer=employer, scopes=data["scopes"]
                )
                audit_record(
                    action=AuditEntry.Action.ACTION,
                    name="consent.create_api_key",
                    request=request,
                    target=client,
                    changes={
                        "name": [None, client.name],
                        "kind": [None, client.kind],
                        "employer": [None, str(employer) if employer else None],
                        "scopes": [None, client.scopes],
                        "key_prefix": [None, client.key_prefix],
                    },
                    reason=data["reason"].strip(),
                )
            context.update(title=_("API key created"), client=client, key=key)
            # admin_view marks every admin page never-cache: the key is not kept by a cache.
            return TemplateResponse(request, "admin/consent/apiclient/created.html", context)
        return TemplateResponse(request, "admin/consent/apiclient/add.html", context)

    @admin.action(description=_("Revoke selected keys"), permissions=["revoke"])
    def revoke(self, request, queryset):
        """Asks for a reason first (like Django's delete confirmation), then revokes."""
        live = queryset.filter(revoked_at__isnull=True)
        form = AuditReasonForm(request.POST if request.POST.get("post") else None)
        if not form.is_bound or not form.is_valid():
            return TemplateResponse(
                request,
                "admin/consent/apiclient/revoke.html",
                {
                    **self.admin_site.each_context(request),
                    "opts": self.model._meta,
                    "title": _("Revoke API keys"),
                    "queryset": queryset,
                    "live": live,
                    "form": AuditReasonForm(),
                    "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                },
            )
        now = timezone.now()
        reason = form.cleaned_data["reason"].strip()
        revoked = 0
        with transaction.atomic():
            for client in live.order_by("pk"):
                # Conditional: a key revoked earlier (or meanwhile, by someone else) keeps the
                # time it was revoked, and is not logged twice.
                if not ApiClient.objects.filter(pk=client.pk, revoked_at=None).update(
                    revoked_at=now
                ):
                    continue
                revoked += 1
                audit_record(
                    action=AuditEntry.Action.ACTION,
                    name="consent.revoke_api_key",
                    request=request,
                    target=client,
                    changes={"revoked_at": [None, _iso(now)]},
                    reason=reason,
                )
        self.message_user(
            request,
            ngettext("Revoked %(count)d key.", "Revoked %(count)d keys.", revoked)
            % {"count": revoked},
            messages.SUCCESS,
        )
        return None
