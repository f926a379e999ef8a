"""A company's workspace (issue 19): every task passed to one company, by an emailed link.

/company/                ask for a link (one email field; the page answers the same whatever
                         is typed, and sends only to a current privacy contact)
/company/w/<token>/      open a link: a GET shows one button and changes nothing (a link
                         scanner that fetches the address neither spends the link nor gets
                         a session); its POST spends the link, signs this browser in to that
                         one company (the session holds the link's id, never the token) and
                         redirects to
/company/workspace/      the list, its filters and search, and one answer for many tasks
/company/workspace/tasks/<id>/   one task's page: any answer, a refusal with its reason
/company/workspace/csv/          the list's tasks as a CSV file to fill in
/company/workspace/csv/upload/   a filled-in file read back: a preview, nothing recorded
/company/workspace/csv/confirm/  the preview's answers recorded
/company/workspace/delivery/     how the company is told of new requests (workspace_delivery.py)

Every page re-reads the link from the session and stops working the moment it expires or
staff revoke it. The pages use the answer page's head (never indexed; the address, a key,
never sent as a referrer to another site).
"""

import hashlib
import logging
import time
from urllib.parse import urlencode

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import Max, Min
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from consent.decorators import data_rights_page
from consent.models import Provision
from disclosure.models import (
    RecipientTask,
    WorkspaceLink,
)
from disclosure.services import (
    AnswerRefused,
    link_lookup,
    workspace_answer_bulk,
    workspace_answer_one,
    workspace_link_for_task,
    workspace_link_lookup,
    workspace_links_request,
    workspace_sign_in,
    workspace_tasks,
)
from disclosure.services.workspace import OPEN
from disclosure.views.company import (
    _page_language,
    _rate_limited,
    _recorded,
    answer_form_page,
)
from disclosure.workspace_forms import (
    BulkAnswerForm,
    CsvUploadForm,
    DeliveryForm,
    TaskFilterForm,
    WorkspaceRequestForm,
)
from portal.models import Language
from portal.shared.http import client_ip, rate_limit_key
from portal.shared.queueing import publish

logger = logging.getLogger(__name__)

SESSION_KEY = "workspace_link_id"
# Between a CSV's preview and its confirmation: the link, the file's SHA-256, who answers,
# and only the rows that will be answered (task id, answer, statement).
CSV_SESSION_KEY = "workspace_csv"
PER_PAGE = 50
# Asking for a link: per client address, and per address typed (beyond it nothing is sent,
# and the page still answers the same).
REQUESTS_PER_IP_PER_HOUR = 20
REQUESTS_PER_EMAIL_PER_HOUR = 3
FILTER_FIELDS = ("status", "overdue", "kind", "filed_from", "filed_to", "q")


def _over_limit(name: str, key: str, limit: int, window: int = 3600) -> bool:
    """Count a hit in a fixed window of the cache; a cache outage lets it through."""
    counter = f"{name}:{key}:{int(time.time() // window)}"
    try:
        cache.add(counter, 0, timeout=window * 2)
        try:
            count = cache.incr(counter)
        except ValueError:
            cache.add(counter, 1, timeout=window * 2)
            count = 1
    except Exception:
        logger.warning("workspace rate limiter unavailable; hit not counted", exc_info=True)
        return False
    return count > limit


def _language(request: HttpRequest, link: WorkspaceLink) -> str:
    contact_language = link.contact.language if link.contact else link.employer.message_language
    return _page_language(request, contact_language)


def _in_language(view):
    """Render the view in the company's language (or the one the visitor chose)."""

    def run(request: HttpRequest, link: WorkspaceLink, *args, **kwargs) -> HttpResponse:
        language = _language(request, link)
        request.LANGUAGE_CODE = language
        with translation.override(language):
            response = view(
                request,
                link,
                Language.EN if language.startswith("en") else Language.JA,
                *args,
                **kwargs,
            )
        response.headers["Content-Language"] = language
        return response

    return run


def _signed_in(view):
    """The link this browser signed in with, if it still works; else the page that says the
    link has ended and how to get another."""

    def run(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        link_id = request.session.get(SESSION_KEY)
        link = (
            WorkspaceLink.objects.select_related("employer", "contact").filter(pk=link_id).first()
            if isinstance(link_id, int)
            else None
        )
        if link is None or not link.works():
            request.session.pop(SESSION_KEY, None)
            request.session.pop(CSV_SESSION_KEY, None)
            return _gone(request, link, status=403 if link is None else 410)
        return _in_language(view)(request, link, *args, **kwargs)

    return run


def _gone_state(link: WorkspaceLink | None) -> str:
    if link is None:
        return "unknown"
    state = link.state()
    return "expired" if state == "works" else state


def _gone(request: HttpRequest, link: WorkspaceLink | None, *, status: int) -> HttpResponse:
    return render(
        request,
        "disclosure/workspace_gone.html",
        {"state": _gone_state(link), "link_days": settings.WORKSPACE_LINK_DAYS},
        status=status,
    )


# --- asking for a link ---------------------------------------------------------------------
LINKS_SEND = "disclosure.tasks.workspace_links_send"


@data_rights_page
@never_cache
@csrf_protect
def workspace_request(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        if _over_limit(
            "workspace-ask-ip", rate_limit_key(client_ip(request)), REQUESTS_PER_IP_PER_HOUR
        ):
            return render(
                request, "disclosure/workspace_request.html", {"limited": True}, status=429
            )
        form = WorkspaceRequestForm(request.POST)
        if form.is_valid():
            email = form.cleaned_data["email"].strip().lower()
            digest = hashlib.sha256(email.encode()).hexdigest()
            if not _over_limit("workspace-ask-email", digest, REQUESTS_PER_EMAIL_PER_HOUR):
                # Queued: the page does the same work whether or not the address is a
                # contact's, so its answer time does not tell. Sent here only if the broker
                # cannot take it (the contact would otherwise wait for nothing).
                ip = client_ip(request)
                if not publish(LINKS_SEND, email, ip):
                    workspace_links_request(email=email, ip=ip)
            return redirect("disclosure:workspace_request_sent")
    else:
        form = WorkspaceRequestForm()
    return render(
        request,
        "disclosure/workspace_request.html",
        {"form": form, "link_days": settings.WORKSPACE_LINK_DAYS},
        status=400 if form.is_bound else 200,
    )


@data_rights_page
@never_cache
def workspace_request_sent(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "disclosure/workspace_request_sent.html",
        {"link_days": settings.WORKSPACE_LINK_DAYS},
    )


@data_rights_page
@never_cache
@csrf_protect
@require_POST
def answer_workspace_link(request: HttpRequest, token: str) -> HttpResponse:
    """From the per-request answer page: email the company's contact a workspace link. The
    answer link itself never opens the workspace."""
    if _rate_limited(request) is not None:
        return HttpResponse(status=429)
    link = link_lookup(token=token) if len(token) <= 200 else None
    if link is None:
        raise Http404
    if link.expires_at <= timezone.now() and link.task.answered_at is None:
        return redirect("disclosure:answer", token=token)
    sent = None
    if not _over_limit("workspace-ask-task", str(link.task_id), REQUESTS_PER_EMAIL_PER_HOUR):
        sent = workspace_link_for_task(task=link.task, request=request)
    language = _page_language(request, link.task.employer.message_language)
    with translation.override(language):
        response = render(
            request,
            "disclosure/workspace_link_sent.html",
            {
                "sent": sent is not None,
                "answer_url": reverse("disclosure:answer", args=[token]),
                "link_days": settings.WORKSPACE_LINK_DAYS,
            },
        )
    response.headers["Content-Language"] = language
    return response


# --- opening a link ------------------------------------------------------------------------


@data_rights_page
@never_cache
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def workspace_open(request: HttpRequest, token: str) -> HttpResponse:
    """A GET shows the button; only its POST spends the link and signs this browser in. A
    link used, expired or revoked says so (410), whichever the method."""
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
    link = workspace_link_lookup(token=token)
    if link is None:
        return _gone(request, None, status=404)
    if request.session.get(SESSION_KEY) == link.pk and link.works():
        return redirect("disclosure:workspace")  # the link again, in the browser it signed in
    if request.method != "POST":
        if not link.opens():
            return _gone(request, link, status=410)
        return _in_language(_open_page)(request, link)
    if not workspace_sign_in(link=link, request=request):
        link.refresh_from_db()
        return _gone(request, link, status=410)
    request.session.cycle_key()  # a key planted before the sign-in is useless after it
    request.session[SESSION_KEY] = link.pk
    return redirect("disclosure:workspace")


def _open_page(request: HttpRequest, link: WorkspaceLink, language: str) -> HttpResponse:
    return render(
        request,
        "disclosure/workspace_open.html",
        {"employer_name": link.employer.display_name(language)},
    )


@data_rights_page
@never_cache
@csrf_protect
@require_POST
def workspace_sign_out(request: HttpRequest) -> HttpResponse:
    request.session.pop(SESSION_KEY, None)
    request.session.pop(CSV_SESSION_KEY, None)
    request.session.cycle_key()
    return redirect("disclosure:workspace_request")


# --- the list and the answers --------------------------------------------------------------


def _provisions_by_student(employer_id: int, student_ids: list[int]) -> dict[int, list[dict]]:
    """What the company received about each student of the page: one query."""
    rows = (
        Provision.objects.filter(employer_id=employer_id, student_id__in=student_ids)
        .values("student_id", "data_items")
        .annotate(first=Min(Coalesce("first_provided_at", "provided_at")), last=Max("provided_at"))
        .order_by("student_id", "-last")
    )
    result: dict[int, list[dict]] = {}
    for row in rows:
        result.setdefault(row["student_id"], []).append(row)
    return result


def _rows(tasks, employer_id: int) -> list[dict]:
    now = timezone.now()
    provisions = _provisions_by_student(employer_id, [t.request.student_id for t in tasks])
    rows = []
    for task in tasks:
        is_open = task.status in OPEN
        rows.append(
            {
                "task": task,
                "request": task.request,
                "student": task.request.student,
                "is_open": is_open,
                "days_left": (task.request.due_at - now).days if is_open else None,
                "overdue": is_open and task.request.due_at < now,
                "provisions": provisions.get(task.request.student_id, []),
            }
        )
    return rows


def _filter_query(form: TaskFilterForm) -> str:
    return urlencode(
        [(name, value) for name in FILTER_FIELDS for value in form.data.getlist(name) if value]
    )


def _list_page(
    request: HttpRequest,
    link: WorkspaceLink,
    filter_form: TaskFilterForm,
    *,
    bulk_form: BulkAnswerForm | None = None,
    csv_form: CsvUploadForm | None = None,
    delivery_form: DeliveryForm | None = None,
    selected: set[int] = frozenset(),
    notice: str = "",
    status: int = 200,
) -> HttpResponse:
    tasks = workspace_tasks(employer=link.employer, filters=filter_form.filters())
    tasks = tasks.select_related("request__student").only(
        "id",
        "status",
        "answer",
        "answered_at",
        "reminders_sent",
        "created_at",
        "request__id",
        "request__reference",
        "request__kind",
        "request__all_recipients",
        "request__submitted_at",
        "request__due_at",
        "request__status",
        "request__student__id",
        "request__student__display_name",
        "request__student__email",
    )
    paginator = Paginator(tasks, PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    query = _filter_query(filter_form)
    open_matching = workspace_tasks(employer=link.employer, filters=filter_form.filters()).filter(
        status__in=OPEN
    )
    return render(
        request,
        "disclosure/workspace.html",
        {
            "link": link,
            "employer_name": link.employer.display_name(
                Language.EN if translation.get_language().startswith("en") else Language.JA
            ),
            "filter_form": filter_form,
            "bulk_form": bulk_form or BulkAnswerForm(),
            "csv_form": csv_form or CsvUploadForm(),
            "delivery_form": delivery_form
            or DeliveryForm(initial={"delivery": link.employer.request_delivery}),
            "page": page,
            "rows": _rows(list(page.object_list), link.employer_id),
            "query": query,
            "open_matching": open_matching.count(),
            "selected": selected,
            "notice": notice,
        },
        status=status,
    )


@data_rights_page
@never_cache
@_signed_in
def workspace(request: HttpRequest, link: WorkspaceLink, language: str) -> HttpResponse:
    return _list_page(request, link, TaskFilterForm(request.GET))


def _ids(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit() and len(v) < 19]


@data_rights_page
@never_cache
@csrf_protect
@require_POST
@_signed_in
def workspace_answer(request: HttpRequest, link: WorkspaceLink, language: str) -> HttpResponse:
    """One answer for the tasks ticked, or for every open task matching the filter (whose
    count the contact saw and confirmed; if it changed meanwhile, nothing is answered)."""
    filter_form = TaskFilterForm(QueryDict(request.POST.get("filter", "")))
    form = BulkAnswerForm(request.POST)
    selected = set(_ids(request.POST.getlist("task")))
    all_matching = request.POST.get("all_matching") == "1"
    if all_matching:
        matching = workspace_tasks(employer=link.employer, filters=filter_form.filters()).filter(
            status__in=OPEN
        )
        ids = list(matching.values_list("pk", flat=True))
        if str(len(ids)) != request.POST.get("expected", ""):
            notice = _(
                "Nothing was answered: %(count)s requests now match the filter, not the "
                "number you confirmed. Please check the list and send again."
            ) % {"count": len(ids)}
            return _list_page(request, link, filter_form, bulk_form=form, notice=notice, status=409)
    else:
        ids = sorted(selected)
    if not ids:
        notice = _("Nothing was answered: tick at least one request, or “all matching”.")
        return _list_page(request, link, filter_form, bulk_form=form, notice=notice, status=400)
    if not form.is_valid():
        return _list_page(request, link, filter_form, bulk_form=form, selected=selected, status=400)
    try:
        result = workspace_answer_bulk(
            link=link,
            task_ids=ids,
            answer=form.cleaned_data["answer"],
            name=form.cleaned_data["name"],
            role=form.cleaned_data["role"],
            attested=form.cleaned_data["attestation"],
            request=request,
        )
    except AnswerRefused as refused:
        notice = " ".join(refused.messages)
        return _list_page(request, link, filter_form, bulk_form=form, notice=notice, status=400)
    return render(
        request,
        "disclosure/workspace_result.html",
        {
            "result": result,
            "answer": RecipientTask.Answer(form.cleaned_data["answer"]).label,
            "back_url": reverse("disclosure:workspace") + "?" + _filter_query(filter_form),
        },
    )


@data_rights_page
@never_cache
@csrf_protect
@_signed_in
def workspace_task(
    request: HttpRequest, link: WorkspaceLink, language: str, task_id: int
) -> HttpResponse:
    task = (
        RecipientTask.objects.select_related("request__student", "employer")
        .filter(pk=task_id, employer_id=link.employer_id)
        .first()
    )
    if task is None:
        raise Http404
    back = {"workspace_url": reverse("disclosure:workspace")}
    if task.answered_at is not None or task.status not in OPEN or not task.request.is_open:
        return _recorded(request, task.pk, language, extra=back)
    return answer_form_page(
        request,
        task,
        language,
        record=lambda **answer: workspace_answer_one(
            link=link, task=task, request=request, **answer
        ),
        on_answered=lambda: _recorded(request, task.pk, language, status=409, extra=back),
        extra=back,
    )
