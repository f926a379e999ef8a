"""The purposes of use, and each purpose's impact report: who relies on it without a policy
that lists it, and the request to review it sent to them."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from audit.log import audit_record
from audit.mixins import AuditedModelAdmin
from audit.models import AuditEntry
from consent import reports
from consent.admin.common import RUN_IMPACT_REPORT, SEND_RECONSENT_MAILING
from consent.admin.forms import AuditReasonForm
from consent.models import PolicyVersion, Purpose
from portal.shared.files import attachment_response
from portal.shared.pagination import KnownCountPaginator

IMPACT_PER_PAGE = 100
STUDENT_COLUMNS = ["pk", "email", "display_name"]


def _page_url(request: HttpRequest, param: str, number: int) -> str:
    # Each section pages on its own; paging one keeps the other where it was.
    query = request.GET.copy()
    query[param] = number
    query.pop("recount", None)  # counted once, when asked: not again on every page after
    return f"?{query.urlencode()}"


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
    # The apps above consent extend the report (inferences/admin/impact.py): a template that
    # extends this one, and `impact_context` for what it shows.
    impact_template = "admin/consent/purpose/impact.html"

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
        versions = reports.policy_versions(purpose)
        counts = reports.impact_counts(
            purpose=purpose, recount="recount" in request.GET, versions=versions
        )
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
            # The count as kept for a few minutes (reports.impact_counts); the page read now.
            paginator = KnownCountPaginator(
                reports.impact_section(purpose=purpose, section=key, versions=versions).only(
                    *STUDENT_COLUMNS
                ),
                IMPACT_PER_PAGE,
                count=counts[key].count,
            )
            page = paginator.get_page(request.GET.get(page_param))
            page.object_list = reports.with_impact_details(
                purpose=purpose, section=key, students=list(page.object_list)
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
            "counted_at": min(count.counted_at for count in counts.values()),
            "count_minutes": reports.IMPACT_COUNT_SECONDS // 60,
            "recount_url": "?recount=1",
            "can_request_review": request.user.has_perm(SEND_RECONSENT_MAILING),
            "review_form": AuditReasonForm(),
            "review_interval_days": reports.REVIEW_REQUEST_INTERVAL.days,
            "review_batch": reports.REVIEW_REQUEST_BATCH,
            **self.impact_context(request, purpose),
        }
        return render(request, self.impact_template, context)

    def impact_context(self, request: HttpRequest, purpose: Purpose) -> dict:
        """What the apps above consent add to the report."""
        return {}

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
