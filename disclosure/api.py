"""The API's endpoints that belong to the requests, routed with the consent API's
(portal/api_urls.py) and described in the same OpenAPI document:

- `POST /api/v1/activity`: the job site sends the activity records it collects; what it
  refuses is the students' requests' (disclosure/activity.py).
- `POST /api/v1/inferences`: the site's pipeline sends the results its registered models
  made; the inferences app records them (inferences/services/intake.py), refusing what the
  students' requests cover by the same rule as activity (disclosure/coverage.py).
- `POST /api/v1/inferences/check`: before it runs a model, the pipeline asks whether a result
  would be accepted now (the same rules: a grant of the model's purpose, no objection, no
  deletion or cessation covering it).
- `GET /api/v1/requests` and `POST /api/v1/requests/{reference}/answer`: a company's key
  lists the requests passed on to its company and answers them, as the answer page does
  (disclosure/views/company.py), never seeing another company's.
"""

from datetime import UTC, datetime, timedelta

from django.core import signing
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from consent.api.endpoint import ApiError, api_endpoint, json_body
from consent.api.idempotency import idempotent_answer
from consent.api.payloads import (
    AnswerPayload,
    activity_records,
    answer_payload,
    idempotency_key,
    inference_items,
    requests_query,
)
from consent.models import ApiClient
from disclosure.activity import REFUSED, activity_receive
from disclosure.coverage import RequestCoverage
from disclosure.models import (
    CESSATION_ATTESTATION,
    DELETION_ATTESTATION,
    DataRequest,
    RecipientTask,
)
from disclosure.services import ANSWERS_BY_KIND, AnswerRefused, recipient_task_answer
from disclosure.services.task_items import OPEN_STATUSES, task_item, task_items_provisions
from inferences.api import inference_check_answer, inference_check_items
from inferences.services import inferences_record
from inferences.services.checks import inferences_check


@api_endpoint("POST", scope=ApiClient.Scope.ACTIVITY_WRITE)
def activity(request: HttpRequest) -> JsonResponse:
    records = activity_records(json_body(request))
    outcomes = activity_receive(client=request.api_client, records=records)
    results = []
    for record, outcome in zip(records, outcomes, strict=True):
        result = {"id": record.id, "result": outcome.result, "status": outcome.status}
        if outcome.result == REFUSED:
            result["error"] = {"code": outcome.code, "message": outcome.message}
        results.append(result)
    counts = {"stored": 0, "duplicate": 0, "refused": 0}
    for outcome in outcomes:
        counts[outcome.result] += 1
    # 200 whenever the batch was read, as /consents/check answers: each record's own
    # status says what became of it (201 stored, 200 duplicate, 422 or 409 refused).
    return JsonResponse({"results": results, **counts})


@api_endpoint("POST", scope=ApiClient.Scope.INFERENCES_WRITE)
def inferences(request: HttpRequest) -> HttpResponse:
    key = idempotency_key(request)
    body = json_body(request)
    return idempotent_answer(
        client=request.api_client,
        operation="inferences",
        key=key,
        body=body,
        answer=lambda: _inferences_answer(body, client=request.api_client),
    )


def _inferences_answer(body, *, client: ApiClient) -> JsonResponse:
    items = inference_items(body)
    outcomes = inferences_record(
        client=client, items=items, coverage_for=RequestCoverage.of_students
    )
    results = []
    counts = {"stored": 0, "duplicate": 0, "refused": 0}
    for item, outcome in zip(items, outcomes, strict=True):
        result = {"id": item.id, "result": outcome.result, "status": outcome.status}
        if outcome.result == REFUSED:
            result["error"] = {"code": outcome.code, "message": outcome.message}
        results.append(result)
        counts[outcome.result] += 1
    # As /activity: 200 whenever the batch was read, each result's status saying what
    # became of it (201 stored, 200 duplicate, 409 or 422 refused).
    return JsonResponse({"results": results, **counts})


@api_endpoint("POST", scope=ApiClient.Scope.INFERENCES_WRITE)
def inferences_check_view(request: HttpRequest) -> JsonResponse:
    """May a model make a result about a student for an employer now (inferences/services/
    checks.py)? Answered by the intake's rules, the requests' coverage among them."""
    items = inference_check_items(json_body(request))
    answers = inferences_check(checks=items, coverage_for=RequestCoverage.of_students)
    return JsonResponse(inference_check_answer(items, answers))


# A task's changed_at is taken when its transaction starts, and transactions commit in
# their own order: a reader whose cursor already passed 10:00:00.5 would never see a change
# stamped 10:00:00.4 that commits later. The list therefore serves only changes this old;
# every change of a task commits well within it (a few rows and an email row), as in the
# consent feed (consent/api/views.py, CHANGES_SETTLE).
REQUESTS_SETTLE = timedelta(seconds=5)
CURSOR_SALT = "api.requests.cursor"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The task's status as the company sees it.
STATUS_FILTERS = {
    "open": Q(status__in=OPEN_STATUSES),
    "answered": Q(status=RecipientTask.Status.ANSWERED),
    "all": Q(),
}


def _employer_of(client: ApiClient) -> int:
    if client.employer_id is None:
        # requests:* are refused on a pipeline key when it is made; this is the belt.
        raise ApiError(403, "out_of_scope", _("Only a company's key has requests."))
    return client.employer_id


def _cursor_dumps(client: ApiClient, task: RecipientTask) -> str:
    micros = (task.changed_at - EPOCH) // timedelta(microseconds=1)
    return signing.dumps([client.pk, micros, task.pk], salt=CURSOR_SALT)


def _cursor_loads(client: ApiClient, cursor: str) -> tuple[datetime, int]:
    """The position a cursor stands for. Signed and bound to the key: a cursor cannot be
    made up, nor carried to another key (and the company filter applies whatever it says)."""
    try:
        key, micros, pk = signing.loads(cursor, salt=CURSOR_SALT)
        if key != client.pk or type(micros) is not int or type(pk) is not int:
            raise ValueError
        return EPOCH + timedelta(microseconds=micros), pk
    except (signing.BadSignature, ValueError, TypeError, OverflowError):
        raise ApiError(
            400, "bad_cursor", _("This cursor is not one we gave."), field="cursor"
        ) from None


def _tasks(employer_id: int):
    return RecipientTask.objects.filter(employer_id=employer_id).select_related(
        "request__student", "request__correction"
    )


@api_endpoint("GET", scope=ApiClient.Scope.REQUESTS_READ)
def requests_list(request: HttpRequest) -> JsonResponse:
    client = request.api_client
    employer_id = _employer_of(client)
    query = requests_query(request)
    tasks = _tasks(employer_id).filter(
        STATUS_FILTERS[query.status], changed_at__lte=timezone.now() - REQUESTS_SETTLE
    )
    if query.changed_since is not None:
        tasks = tasks.filter(changed_at__gte=query.changed_since)
    if query.cursor is not None:
        at, pk = _cursor_loads(client, query.cursor)
        tasks = tasks.filter(Q(changed_at__gt=at) | Q(changed_at=at, pk__gt=pk))
    rows = list(tasks.order_by("changed_at", "pk")[: query.limit + 1])
    page = rows[: query.limit]
    provisions = task_items_provisions(page)
    return JsonResponse(
        {
            "requests": [
                task_item(task, provisions.get((task.request.student_id, employer_id), []))
                for task in page
            ],
            "next": _cursor_dumps(client, page[-1]) if page else query.cursor,
            "has_more": len(rows) > query.limit,
        }
    )


MAX_REFERENCE = DataRequest._meta.get_field("reference").max_length
ATTESTED = {"deleted": DELETION_ATTESTATION, "stopped": CESSATION_ATTESTATION}
# Which answers take a statement (the page's reason, or the data described): required.
WITH_STATEMENT = {"refused", "disclosed"}
MAX_REASON = 4000  # the page's reason field


def _statement(payload: AnswerPayload, task: RecipientTask) -> str:
    """The statement recorded, as the page records it: the attestation the company
    confirmed (in its language), the reason or the data described, or none."""
    answer = payload.answer
    if answer in WITH_STATEMENT:
        if not payload.statement:
            message = (
                _("Say why you cannot comply.")
                if answer == "refused"
                else _("Describe the data you hold.")
            )
            raise ApiError(422, "invalid_field", message, field="statement")
        if answer == "refused" and len(payload.statement) > MAX_REASON:
            raise ApiError(
                422,
                "invalid_field",
                _("At most %(max)d characters.") % {"max": MAX_REASON},
                field="statement",
            )
        return payload.statement
    if payload.statement:
        raise ApiError(
            422,
            "invalid_field",
            _("This answer takes no statement: only refused and disclosed do."),
            field="statement",
        )
    if answer in ATTESTED:
        if not payload.attestation:
            raise ApiError(
                422,
                "invalid_field",
                _(
                    "Confirm the attestation (attestation: true); the answer cannot be recorded "
                    "without it."
                ),
                field="attestation",
            )
        with translation.override(task.employer.message_language):
            return str(ATTESTED[answer])
    return ""


def _task_for(client: ApiClient, reference: str) -> RecipientTask:
    """The company's task on this request; 404 alike for another company's request and an
    unknown reference, so a key learns nothing about requests not passed to its company."""
    employer_id = _employer_of(client)
    task = None
    if len(reference) <= MAX_REFERENCE and "\x00" not in reference:
        task = (
            _tasks(employer_id)
            .select_related("employer")
            .filter(request__reference=reference)
            .first()
        )
    if task is None:
        raise ApiError(
            404, "unknown_request", _("Your company has no request with this reference.")
        )
    return task


def _one(task: RecipientTask, *, status: int = 200, error: dict | None = None) -> JsonResponse:
    provisions = task_items_provisions([task]).get((task.request.student_id, task.employer_id), [])
    body = {"request": task_item(task, provisions)}
    if error is not None:
        body = {"error": error, **body}
    return JsonResponse(body, status=status)


@api_endpoint("POST", scope=ApiClient.Scope.REQUESTS_ANSWER)
def request_answer(request: HttpRequest, reference: str) -> JsonResponse:
    client = request.api_client
    _employer_of(client)
    key = idempotency_key(request)
    if key is None:
        raise ApiError(
            400,
            "missing_idempotency_key",
            _("Send an Idempotency-Key header with an answer, so that a retry is safe."),
            field="Idempotency-Key",
        )
    body = json_body(request)
    return idempotent_answer(
        client=client,
        operation="requests.answer",
        key=key,
        # The reference is part of what the key stands for: the same key for another
        # request is a reuse, not a replay.
        body={"reference": reference, "body": body},
        answer=lambda: _answer(client, reference, body),
    )


def _answer(client: ApiClient, reference: str, body) -> JsonResponse:
    task = _task_for(client, reference)
    if task.status == RecipientTask.Status.ANSWERED:
        return _already_answered(task)
    if task.status == RecipientTask.Status.CLOSED or not task.request.is_open:
        return _closed(task)
    payload = answer_payload(body, answers=ANSWERS_BY_KIND[task.request.kind])
    statement = _statement(payload, task)
    try:
        task = recipient_task_answer(
            task=task,
            answer=payload.answer,
            answered_by=payload.answered_by,
            statement=statement,
            via=RecipientTask.Via.API,
            client=client,
        )
    except AnswerRefused as refused:
        task = _tasks(task.employer_id).get(pk=task.pk)
        if task.status == RecipientTask.Status.ANSWERED:
            return _already_answered(task)  # answered meanwhile (by the link, say)
        if refused.code == "answered":
            return _closed(task)
        raise ApiError(422, "invalid_field", refused.messages[0], field=refused.code) from None
    return _one(task)


def _already_answered(task: RecipientTask) -> JsonResponse:
    return _one(
        task,
        status=409,
        error={
            "code": "already_answered",
            "message": _("This request has already been answered."),
        },
    )


def _closed(task: RecipientTask) -> JsonResponse:
    return _one(task, status=409, error={"code": "closed", "message": _("This request is closed.")})
