from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils.translation import get_language
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.i18n import set_language as django_set_language

from audit.models import StaffRead
from audit.reads import staff_role_label
from consent.decorators import data_rights_page
from consent.models import Consent, PolicyAcceptance, Provision
from consent.services import policy_acceptance_due
from inferences.models import Inference
from portal import health
from portal.models import LANGUAGE_CHOSEN_SIGNED_OUT, ActivityRecord, Language
from portal.shared.redirects import is_own_path


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "portal/home.html")


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    return HttpResponsePermanentRedirect(static("portal/favicon.svg"))


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    student = request.user
    latest = PolicyAcceptance.objects.latest_for(student)
    context = {
        "latest_acceptance": latest,
        "acceptance_due": policy_acceptance_due(student=student),
        "acceptance_count": PolicyAcceptance.objects.filter(student=student).count(),
        "activity_count": ActivityRecord.objects.filter(student=student).count(),
        "live_consents": Consent.objects.filter(student=student, granted=True).count(),
        "inference_count": Inference.objects.filter(student=student).count(),
        "recipient_count": Provision.objects.filter(student=student)
        .values("employer_id")
        .distinct()
        .count(),
        "language": get_language(),
    }
    return render(request, "portal/dashboard.html", context)


STAFF_LOOKS_PER_PAGE = 50


@login_required
def staff_looks(request: HttpRequest) -> HttpResponse:
    """Who at the portal looked at the student's data: role, date, what and why (issue 17,
    item 2). Not who by name: the role is what the student can weigh; the Privacy officer
    sees the name."""
    looks = StaffRead.objects.filter(student=request.user).only(
        "at", "role", "what", "record_type", "label", "reason"
    )
    page = Paginator(looks, STAFF_LOOKS_PER_PAGE).get_page(request.GET.get("page"))
    for look in page:
        look.role_label = staff_role_label(look.role)
    return render(request, "portal/staff_looks.html", {"page": page})


@require_POST
@data_rights_page
def set_language(request: HttpRequest) -> HttpResponse:
    """Django's switcher, plus remembering the choice on the account (emails and PDFs
    go out in it), and going back only to one of our own paths: Django's accepts an
    absolute URL to this host, and falls back to the Referer header."""
    response = django_set_language(request)
    if isinstance(response, HttpResponseRedirect) and not is_own_path(response.url):
        response["Location"] = "/"
    language = request.POST.get("language")
    if language in Language.values:
        if not request.user.is_authenticated:
            # Chosen on the sign-in page: the sign-in keeps it (portal/adapters.py).
            request.session[LANGUAGE_CHOSEN_SIGNED_OUT] = language
        elif request.user.language != language:
            request.user.language = language
            request.user.save(update_fields=["language"])
    return response


@require_GET
@never_cache
@data_rights_page
def healthz(request: HttpRequest) -> JsonResponse:
    db_ok, db_detail = health.database_state()
    broker_ok, broker_detail = health.broker_state()
    healthy = db_ok and broker_ok
    return JsonResponse(
        {
            "status": "ok" if healthy else "unavailable",
            "database": {"ok": db_ok, "detail": db_detail},
            "broker": {"ok": broker_ok, "detail": broker_detail},
        },
        status=200 if healthy else 503,
    )
