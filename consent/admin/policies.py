"""The privacy policy's versions (drafted, previewed with a diff, published once and final)
and the ledger of who accepted which version."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _

from audit.log import audit_record
from audit.mixins import AuditedModelAdmin
from audit.models import AuditEntry
from audit.reads import RecordsStudentReads
from consent.admin.common import PUBLISH_POLICYVERSION, _iso
from consent.admin.forms import AuditReasonForm
from consent.diff import text_diff
from consent.models import PolicyAcceptance, PolicyVersion
from consent.services import policy_publish
from portal.shared.admin import STUDENT_SEARCH, ReadOnlyLedgerAdmin


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
        # Each version's acceptances counted on their own, by the version's index: a join of
        # every acceptance (166,000 at bench scale) grouped by the versions' every column,
        # bodies included, took 100-120 ms for three versions.
        counted = (
            PolicyAcceptance.objects.filter(version=OuterRef("pk"))
            .order_by()
            .values("version")
            .annotate(total=Count("*"))
            .values("total")
        )
        return (
            super()
            .get_queryset(request)
            .annotate(acceptance_total=Coalesce(Subquery(counted, output_field=IntegerField()), 0))
        )

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
