import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from consent.decorators import data_rights_page
from consent.diff import text_diff
from consent.forms import AcceptForm
from consent.models import PolicyAcceptance, PolicyVersion, Screen
from consent.receipts import acceptance_receipt_json, acceptance_receipt_pdf
from consent.services import (
    AcceptanceRefused,
    policy_accept,
    policy_acceptance_due,
    previous_acceptance,
)
from portal.models import Language
from portal.shared.files import attachment_response
from portal.shared.http import client_ip, page_language
from portal.shared.redirects import own_path_or


def _safe_next(request: HttpRequest, default: str = "dashboard") -> str:
    return own_path_or(request.POST.get("next") or request.GET.get("next"), default)


@login_required
@data_rights_page
def accept(request: HttpRequest) -> HttpResponse:
    """The separate, explicit step where a student accepts the current policy version."""
    due = policy_acceptance_due(student=request.user)
    version = due.version if due else PolicyVersion.objects.current()
    if version is None:
        messages.info(request, _("There is no privacy policy to accept yet."))
        return redirect("dashboard")
    screen = due.screen if due else Screen.REVIEW
    already = PolicyAcceptance.objects.filter(student=request.user, version=version).first()
    language = page_language()
    text = version.text(language)

    if request.method == "POST":
        form = AcceptForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            if data["version"] != version.pk:
                messages.warning(
                    request,
                    _("A newer version was published while you were reading. Please read it."),
                )
                return redirect("consent:accept")
            try:
                acceptance = policy_accept(
                    student=request.user,
                    version=version,
                    screen=data["screen"] if data["screen"] in Screen.values else screen,
                    language=data["language"],
                    shown_sha256=data["text_sha256"],
                    ip_address=client_ip(request),
                    user_agent=request.META.get("HTTP_USER_AGENT", ""),
                )
            except AcceptanceRefused as exc:
                form.add_error(None, exc)
            else:
                messages.success(
                    request,
                    _(
                        "You accepted privacy policy %(label)s. Its receipt is in "
                        "“My privacy policies”."
                    )
                    % {"label": acceptance.version.label},
                )
                return redirect(_safe_next(request))
    else:
        form = AcceptForm(
            initial={
                "version": version.pk,
                "language": language,
                "text_sha256": text.sha256,
                "screen": screen,
            }
        )

    previous = PolicyAcceptance.objects.latest_for(request.user)
    diff = None
    if previous is not None and previous.version_id != version.pk:
        diff = text_diff(previous.version.text(language).body, text.body)
    return render(
        request,
        "consent/accept.html",
        {
            "form": form,
            "version": version,
            "text": text,
            "screen": screen,
            "due": due,
            "already": already,
            "previous": previous,
            "diff": diff,
            "purposes": version.purposes.all(),
            "next": _safe_next(request, ""),
        },
    )


@login_required
@data_rights_page
def policy_list(request: HttpRequest) -> HttpResponse:
    acceptances = list(
        PolicyAcceptance.objects.filter(student=request.user)
        .select_related("version")
        .order_by("-accepted_at")
    )
    # Which acceptance came before which, computed here rather than one query per row.
    by_version = sorted(
        acceptances, key=lambda a: (a.version.effective_at, a.accepted_at), reverse=True
    )
    for index, acceptance in enumerate(by_version):
        acceptance.previous = by_version[index + 1] if index + 1 < len(by_version) else None
    return render(
        request,
        "consent/policy_list.html",
        {"acceptances": acceptances, "due": policy_acceptance_due(student=request.user)},
    )


def _own_acceptance(request: HttpRequest, receipt_id) -> PolicyAcceptance:
    return get_object_or_404(
        PolicyAcceptance.objects.select_related("version", "student"),
        receipt_id=receipt_id,
        student=request.user,
    )


@login_required
@data_rights_page
def acceptance_detail(request: HttpRequest, receipt_id) -> HttpResponse:
    acceptance = _own_acceptance(request, receipt_id)
    return render(
        request,
        "consent/acceptance_detail.html",
        {
            "acceptance": acceptance,
            "text": acceptance.shown_text(),
            "purposes": acceptance.version.purposes.all(),
            "previous": previous_acceptance(acceptance=acceptance),
        },
    )


@login_required
@data_rights_page
def acceptance_diff(request: HttpRequest, receipt_id) -> HttpResponse:
    acceptance = _own_acceptance(request, receipt_id)
    previous = previous_acceptance(acceptance=acceptance)
    diff = None
    if previous is not None:
        # Both sides in the language this acceptance was shown in.
        diff = text_diff(
            previous.version.text(acceptance.language).canonical,
            acceptance.shown_text().canonical,
        )
    return render(
        request,
        "consent/acceptance_diff.html",
        {"acceptance": acceptance, "previous": previous, "diff": diff},
    )


@login_required
@data_rights_page
def receipt_pdf(request: HttpRequest, receipt_id) -> HttpResponse:
    acceptance = _own_acceptance(request, receipt_id)
    return attachment_response(
        content=acceptance_receipt_pdf(acceptance),
        filename=f"policy-{acceptance.version.label}-receipt-{acceptance.receipt_id}.pdf",
        content_type="application/pdf",
    )


@login_required
@data_rights_page
def receipt_json(request: HttpRequest, receipt_id) -> HttpResponse:
    acceptance = _own_acceptance(request, receipt_id)
    body = json.dumps(acceptance_receipt_json(acceptance), ensure_ascii=False, indent=2)
    return attachment_response(
        content=body.encode("utf-8"),
        filename=f"policy-{acceptance.version.label}-receipt-{acceptance.receipt_id}.json",
        content_type="application/json",
    )


@require_GET
@data_rights_page
def version_text(request: HttpRequest, label: str) -> HttpResponse:
    """A published version's full text, public: the `policyUrl` of every receipt."""
    if label == "current":
        version = PolicyVersion.objects.current()
        if version is None:
            raise Http404
        return redirect("consent:version_text", version.label)
    version = get_object_or_404(PolicyVersion.objects.published(), label=label)
    language = request.GET.get("lang")
    if language not in Language.values:
        language = page_language()
    versions = list(PolicyVersion.objects.published().order_by("-effective_at"))
    compare = None
    other_label = request.GET.get("compare")
    if other_label:
        other = next((v for v in versions if v.label == other_label), None)
        if other is None:
            raise Http404
        older, newer = sorted([other, version], key=lambda v: v.effective_at)
        compare = {
            "older": older,
            "newer": newer,
            "diff": text_diff(older.text(language).canonical, newer.text(language).canonical),
        }
    return render(
        request,
        "consent/version_text.html",
        {
            "version": version,
            "text": version.text(language),
            "text_language": language,
            "purposes": version.purposes.all(),
            "versions": versions,
            "compare": compare,
        },
    )
