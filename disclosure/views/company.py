"""The company answer page, /r/<token>/: no account, the link is the key.

The page shows the company only what it needs to answer (the request kind and reference,
the student's name and registered email, the due date and the data the company received
with dates) and takes one answer. A used link shows the recorded answer; an expired or
revoked one says how to get a new link; an unknown token is the plain 404. Every hit is
counted per client address, so tokens cannot be guessed at speed.
"""

import logging
import time

from django.conf import settings
from django.contrib import messages
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from consent.decorators import data_rights_page
from consent.models import Provision
from disclosure.forms import answer_form_class
from disclosure.models import AnswerLink, DataRequest, RecipientTask, RequestFile
from disclosure.services import AnswerRefused, link_lookup, recipient_task_answer
from disclosure.services.corrections import correction_of_request
from disclosure.services.task_items import PROVISION_ROWS
from portal.models import Language
from portal.shared.http import client_ip, rate_limit_key

logger = logging.getLogger(__name__)

# A page lists at most this many provision rows (a bulk record is one row however often).

# Where an error of the service (AnswerRefused.code) belongs on the form.
ERROR_FIELDS = {"answer": "answer", "answered_by": "answered_by", "statement": "reason"}


def _rate_limited(request: HttpRequest) -> int | None:
    """Count this hit in the client's fixed one-minute window. Over the limit: the seconds
    until the window ends; otherwise None. A cache outage lets the hit through (the token is
    256 bits: the limit slows guessing, it is not what makes guessing hopeless)."""
    limit = settings.ANSWER_RATE_LIMIT_PER_MINUTE
    now = time.time()
    window = int(now // 60)
    counter = f"answer-rate:{rate_limit_key(client_ip(request))}:{window}"
    try:
        cache.add(counter, 0, timeout=120)
        try:
            count = cache.incr(counter)
        except ValueError:  # evicted between add() and incr()
            cache.add(counter, 1, timeout=120)
            count = 1
    except Exception:
        logger.warning("answer page rate limiter unavailable; hit not counted", exc_info=True)
        return None
    if count > limit:
        return max(1, 60 - int(now % 60))
    return None


def _page_language(request: HttpRequest, company_language: str) -> str:
    """The page speaks the company's language unless the visitor chose one with the
    site's language switcher (its cookie), which LocaleMiddleware has then activated."""
    languages = dict(settings.LANGUAGES)
    if request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) in languages:
        return translation.get_language()
    return company_language if company_language in languages else settings.LANGUAGE_CODE


def _link_state(link: AnswerLink, now) -> str:
    task = link.task
    if task.answered_at is not None or task.status == RecipientTask.Status.ANSWERED:
        return "answered"
    if task.request.status == DataRequest.Status.CANCELLED:
        return "cancelled"
    if (
        link.revoked_at is not None
        or link.expires_at <= now
        or task.status not in (RecipientTask.Status.QUEUED, RecipientTask.Status.SENT)
    ):
        return "gone"
    return "open"


def _provisions(task: RecipientTask, language: str) -> tuple[list[dict], int]:
    rows = Provision.objects.filter(
        student_id=task.request.student_id, employer_id=task.employer_id
    ).select_related("purpose")
    total = rows.count()
    return [
        {
            "data_items": p.data_items,
            "purpose": p.purpose.title(language),
            "provided_at": p.provided_at,
            "first_provided_at": p.first_provided_at
            if p.first_provided_at and p.first_provided_at != p.provided_at
            else None,
        }
        for p in rows.order_by("-provided_at", "-id")[:PROVISION_ROWS]
    ], total


def _recorded(
    request: HttpRequest, task_id: int, language: str, *, status: int = 200, extra=None
) -> HttpResponse:
    task = RecipientTask.objects.select_related("request", "employer").get(pk=task_id)
    return render(
        request,
        "disclosure/answer_recorded.html",
        {
            "task": task,
            "data_request": task.request,
            "employer_name": task.employer.display_name(language),
            "files": list(
                task.files.filter(kind=RequestFile.Kind.COMPANY_FILE).values(
                    "name", "size", "sha256"
                )
            ),
            "second_post": request.method == "POST",
            **(extra or {}),
        },
        status=status,
    )


@data_rights_page
@never_cache
@csrf_protect
def answer(request: HttpRequest, token: str) -> HttpResponse:
    retry_after = _rate_limited(request)
    if retry_after is not None:
        response = render(
            request,
            "disclosure/answer_rate_limited.html",
            {"limit": settings.ANSWER_RATE_LIMIT_PER_MINUTE, "retry_after": retry_after},
            status=429,
        )
        response["Retry-After"] = str(retry_after)
        return response
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD, POST"})
    link = link_lookup(token=token) if len(token) <= 200 else None
    if link is None:
        raise Http404
    # The language the link was written in.
    language = _page_language(request, link.task.employer.message_language)
    request.LANGUAGE_CODE = language
    with translation.override(language):
        response = _answer_page(
            request, link, Language.EN if language.startswith("en") else Language.JA
        )
    response.headers["Content-Language"] = language
    return response


def _answer_page(request: HttpRequest, link: AnswerLink, language: str) -> HttpResponse:
    task = link.task
    data_request = task.request
    employer = task.employer
    state = _link_state(link, timezone.now())

    if state == "answered":
        return _recorded(
            request,
            link.task_id,
            language,
            status=409 if request.method == "POST" else 200,
            extra={"workspace_link_url": request.path + "workspace-link/"},
        )
    if state == "cancelled":
        return render(
            request,
            "disclosure/answer_cancelled.html",
            {"data_request": data_request, "employer_name": employer.display_name(language)},
        )
    if state == "gone":
        return render(
            request,
            "disclosure/answer_gone.html",
            {
                "data_request": data_request,
                "link": link,
                "expired": link.revoked_at is None and link.expires_at <= timezone.now(),
                "link_days": settings.ANSWER_LINK_DAYS,
            },
            status=410,
        )

    return answer_form_page(
        request,
        task,
        language,
        record=lambda **answer: recipient_task_answer(
            task=task, via=RecipientTask.Via.LINK, **answer
        ),
        on_answered=lambda: _recorded(request, link.task_id, language, status=409),
        extra={"workspace_link_url": request.path + "workspace-link/"},
    )


def answer_form_page(
    request: HttpRequest, task: RecipientTask, language: str, *, record, on_answered, extra=None
) -> HttpResponse:
    """The answer form for one open task, shown and taken: on the per-request page and on a
    task's page in the company's workspace. `record(answer=…, answered_by=…, statement=…,
    file=…)` records it; `on_answered()` is the page when it was answered meanwhile."""
    data_request = task.request
    form_class = answer_form_class(data_request.kind)
    if request.method == "POST":
        form = form_class(request.POST, request.FILES)
        if form.is_valid():
            try:
                record(
                    answer=form.cleaned_data["answer"],
                    answered_by=form.cleaned_data["answered_by"],
                    statement=form.statement(),
                    file=form.file(),
                )
            except AnswerRefused as refused:
                if refused.code == "answered":
                    return on_answered()
                form.add_error(ERROR_FIELDS.get(refused.code), refused.messages)
            else:
                messages.success(request, _("Thank you. Your answer has been recorded."))
                return redirect(request.path)
    else:
        form = form_class()

    provisions, provision_total = _provisions(task, language)
    return render(
        request,
        "disclosure/answer.html",
        {
            "form": form,
            "options": form.options(),
            "error_links": form.error_links() if form.is_bound else [],
            "had_upload": bool(request.FILES),
            "data_request": data_request,
            "task": task,
            "student": data_request.student,
            "employer_name": task.employer.display_name(language),
            "provisions": provisions,
            "provision_total": provision_total,
            "live_grant": bool((task.reasons or {}).get("live_grant")),
            "correction": correction_of_request(data_request),
            **(extra or {}),
        },
        status=200,
    )
