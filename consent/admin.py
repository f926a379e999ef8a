from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from consent import reports
from consent.diff import text_diff
from consent.models import (
    ApiClient,
    Consent,
    ConsentEvent,
    PolicyAcceptance,
    PolicyVersion,
    Provision,
    Purpose,
    StopUseNotice,
)
from consent.services import policy_publish

IMPACT_PER_PAGE = 100
STUDENT_COLUMNS = ["pk", "email", "display_name"]


def _page_url(request: HttpRequest, param: str, number: int) -> str:
    # Each section pages on its own; paging one keeps the other where it was.
    query = request.GET.copy()
    query[param] = number
    return f"?{query.urlencode()}"


@admin.register(Purpose)
class PurposeAdmin(admin.ModelAdmin):
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

    def _viewable_purpose(self, request: HttpRequest, pk: int) -> Purpose:
        purpose = get_object_or_404(Purpose, pk=pk)
        if not self.has_view_permission(request, purpose):
            raise PermissionDenied
        return purpose

    def impact_view(self, request: HttpRequest, pk: int):
        purpose = self._viewable_purpose(request, pk)
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
            "can_request_review": self.has_change_permission(request, purpose),
            "review_interval_days": reports.REVIEW_REQUEST_INTERVAL.days,
            "review_batch": reports.REVIEW_REQUEST_BATCH,
        }
        return render(request, "admin/consent/purpose/impact.html", context)

    def impact_csv_view(self, request: HttpRequest, pk: int, section: str):
        purpose = self._viewable_purpose(request, pk)
        if section not in reports.SECTIONS:
            raise Http404
        filename = reports.impact_csv_filename(purpose=purpose, section=section)
        return StreamingHttpResponse(
            reports.impact_csv_lines(purpose=purpose, section=section),
            content_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    def impact_request_review_view(self, request: HttpRequest, pk: int):
        purpose = get_object_or_404(Purpose, pk=pk)
        if not self.has_change_permission(request, purpose):
            raise PermissionDenied
        try:
            result = reports.review_request_send(purpose=purpose)
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
class PolicyVersionAdmin(admin.ModelAdmin):
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
            and self.has_change_permission(request, version),
        }
        return render(request, "admin/consent/policyversion/preview.html", context)

    def publish_view(self, request: HttpRequest, pk: int):
        version = get_object_or_404(PolicyVersion, pk=pk)
        change_url = reverse("admin:consent_policyversion_change", args=[pk])
        if request.method != "POST" or not self.has_change_permission(request, version):
            return HttpResponseRedirect(change_url)
        try:
            published = policy_publish(version=version, by=request.user)
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
class PolicyAcceptanceAdmin(admin.ModelAdmin):
    """Who accepted which version, where and how. A ledger: read-only."""

    list_display = ["accepted_at", "student", "version", "screen", "language", "short_hash"]
    list_filter = ["version", "screen", "language"]
    search_fields = ["student__email", "student__display_name", "receipt_id"]
    list_select_related = ["student", "version"]
    date_hierarchy = "accepted_at"
    show_full_result_count = False

    @admin.display(description=_("text hash"))
    def short_hash(self, obj):
        return obj.text_sha256[:12] + "…"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyLedgerAdmin(admin.ModelAdmin):
    """Staff read the ledgers; nobody changes them here (DESIGN.md, "Ledgers are append-only").

    Large tables: no full count on every page, related rows in the same query.
    """

    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


STUDENT_SEARCH = ["student__email", "student__display_name", "=student__public_id"]
EMPLOYER_SEARCH = ["employer__name", "employer__name_en"]


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyLedgerAdmin):
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
    list_filter = ["action", "purpose", "screen", "actor"]
    search_fields = [*STUDENT_SEARCH, *EMPLOYER_SEARCH, "=receipt_id"]
    list_select_related = ["student", "employer", "purpose", "policy_version"]
    date_hierarchy = "occurred_at"


@admin.register(Consent)
class ConsentAdmin(ReadOnlyLedgerAdmin):
    """The current state, derived from the events; shown for support, changed only by them."""

    list_display = ["student", "employer", "purpose", "granted", "updated_at", "event"]
    list_filter = ["granted", "purpose"]
    search_fields = [*STUDENT_SEARCH, *EMPLOYER_SEARCH]
    list_select_related = ["student", "employer", "purpose", "event"]
    date_hierarchy = "updated_at"


@admin.register(Provision)
class ProvisionAdmin(ReadOnlyLedgerAdmin):
    list_display = [
        "provided_at",
        "student",
        "employer",
        "purpose",
        "data_items",
        "first_provided_at",
        "recorded_by",
    ]
    list_filter = ["purpose", "employer"]
    search_fields = [*STUDENT_SEARCH, *EMPLOYER_SEARCH, "reference"]
    list_select_related = ["student", "employer", "purpose", "recorded_by"]
    date_hierarchy = "provided_at"


@admin.register(StopUseNotice)
class StopUseNoticeAdmin(ReadOnlyLedgerAdmin):
    list_display = ["created_at", "employer", "student", "purpose", "email_to", "email_status"]
    list_filter = ["email__status", "employer"]
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


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    """Keys are made by `manage.py create_api_key`, which shows the key once; here staff see
    them, rename them and revoke them."""

    list_display = [
        "name",
        "kind",
        "employer",
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
        "key_prefix",
        "key_sha256",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # Provision records name the key that recorded them; a key is revoked, not deleted.
        return False

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "create_help": _(
                "API keys are created on the server with "
                "“python manage.py create_api_key”, which shows the key once; "
                "only its SHA-256 is stored."
            ),
        }
        return super().changelist_view(request, extra_context)

    @admin.action(description=_("Revoke selected keys"), permissions=["change"])
    def revoke(self, request, queryset):
        # Conditional: a key revoked earlier keeps the time it was revoked.
        revoked = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(
            request,
            ngettext("Revoked %(count)d key.", "Revoked %(count)d keys.", revoked)
            % {"count": revoked},
            messages.SUCCESS,
        )
