"""The register's own API, routed with the others (portal/api_urls.py) and described in the
same OpenAPI document (consent/api/openapi_inferences.py):

- `GET /api/v1/inferences/disputes`: the change feed of disputed results. A company's key
  reads the disputes (and staff's outcome) of the results handed over to its company, so that
  it knows a result it holds is disputed, and later whether the dispute was upheld; the
  pipeline's key reads every one. Never the student's words or staff's reason: those are
  the student's.

The check (`POST /api/v1/inferences/check`) and the intake need the requests' coverage, so
their views are the requests' (disclosure/api.py)."""

from datetime import UTC, datetime, timedelta

import orjson
from django.core import signing
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from consent.api.endpoint import ApiError, api_endpoint
from consent.api.payloads import (
    MAX_CHANGES_LIMIT,
    MODEL_CODE,
    _id,
    _matching,
    _object,
    _query_int,
    _uuid,
    batch_items,
)
from consent.models import ApiClient
from inferences.models import InferenceDispute
from inferences.services.checks import InferenceCheck
from portal.shared.jsontime import json_time


def inference_check_items(body) -> list[tuple[str, int, str]]:
    """`{"checks": [{"student", "employer", "model"}, ...]}` → (public id, employer, code),
    for `POST /inferences/check`; a wrong item fails the request (422 naming it)."""
    checks = batch_items(
        body,
        "checks",
        _("Expected 'checks': a list of up to 1,000 checks."),
        _("At most %(max)d checks per request; this one has %(count)d."),
    )
    items = []
    for index, item in enumerate(checks):
        where = f"checks[{index}]"
        item = _object(item, where)
        items.append(
            (
                _uuid(item.get("student"), f"{where}.student"),
                _id(item.get("employer"), f"{where}.employer"),
                _matching(
                    item.get("model"),
                    MODEL_CODE,
                    f"{where}.model",
                    _("Expected a model's code (letters, digits, - and _)."),
                ),
            )
        )
    return items


def inference_check_answer(items: list[tuple[str, int, str]], answers: list[InferenceCheck]):
    """The check's JSON: one result per check, in the order asked."""
    return {
        "results": [
            {
                "student": student,
                "employer": employer,
                "model": model,
                "purpose": answer.purpose,
                "allowed": answer.allowed,
                "reason": answer.reason,
                "basis": {"event_id": answer.event_id, "granted_at": json_time(answer.granted_at)}
                if answer.allowed
                else None,
            }
            for (student, employer, model), answer in zip(items, answers, strict=True)
        ]
    }


# As the other feeds: a dispute's times are taken before its transaction commits, so the
# feed serves only changes this old (consent/api/views.py, CHANGES_SETTLE).
DISPUTES_SETTLE = timedelta(seconds=5)
DEFAULT_LIMIT = 500
CURSOR_SALT = "api.inferences.disputes.cursor"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DISPUTES_PARAMETERS = frozenset({"cursor", "limit"})
MAX_CURSOR = 200
# Each dispute is two changes: filed (the result is disputed) and answered.
DISPUTED, ANSWERED = 0, 1
EVENTS = {DISPUTED: "disputed", ANSWERED: "answered"}


def _cursor_dumps(client: ApiClient, at: datetime, pk: int, event: int) -> str:
    micros = (at - EPOCH) // timedelta(microseconds=1)
    return signing.dumps([client.pk, micros, pk, event], salt=CURSOR_SALT)


def _cursor_loads(client: ApiClient, cursor: str) -> tuple[datetime, int, int]:
    """The position a cursor stands for: signed and bound to the key, as the requests'."""
    try:
        key, micros, pk, event = signing.loads(cursor, salt=CURSOR_SALT)
        if key != client.pk or not all(type(v) is int for v in (micros, pk, event)):
            raise ValueError
        return EPOCH + timedelta(microseconds=micros), pk, event
    except (signing.BadSignature, ValueError, TypeError, OverflowError):
        raise ApiError(
            400, "bad_cursor", _("This cursor is not one we gave."), field="cursor"
        ) from None


def _query(request: HttpRequest) -> tuple[str | None, int]:
    unknown = sorted(set(request.GET) - DISPUTES_PARAMETERS)
    if unknown:
        raise ApiError(
            400,
            "unknown_parameter",
            _("Unknown query parameter '%(name)s'; this endpoint takes cursor and limit.")
            % {"name": unknown[0]},
            field=unknown[0],
        )
    cursor = request.GET.get("cursor") or None
    if cursor is not None and len(cursor) > MAX_CURSOR:
        raise ApiError(400, "bad_cursor", _("This cursor is not one we gave."), field="cursor")
    limit = _query_int(
        request, "limit", DEFAULT_LIMIT, low=1, high=MAX_CHANGES_LIMIT, code="bad_limit"
    )
    return cursor, limit


FIELDS = (
    "pk",
    "filed_at",
    "answered_at",
    "outcome",
    "inference__source_id",
    "inference__student__public_id",
    "inference__model__code",
    "inference__model__version",
    "inference__employer_id",
    "inference__made_at",
    "inference__output_label",
    "inference__output_number",
    "inference__handed_over_at",
)


@api_endpoint("GET")
def disputes(request: HttpRequest) -> HttpResponse:
    client = request.api_client
    cursor, limit = _query(request)
    at, pk, event = (EPOCH, 0, ANSWERED) if cursor is None else _cursor_loads(client, cursor)
    settled = timezone.now() - DISPUTES_SETTLE
    rows = InferenceDispute.objects.all()
    if client.employer_id is not None:
        # A company learns only of the results it was handed.
        rows = rows.filter(
            inference__employer_id=client.employer_id, inference__handed_over_at__isnull=False
        )
    filed = rows.filter(filed_at__lte=settled).filter(
        Q(filed_at__gt=at) | Q(filed_at=at, pk__gt=pk)
    )
    after_filed = Q(answered_at=at, pk=pk) if event == DISPUTED else Q(pk__in=[])
    answered = rows.filter(answered_at__isnull=False, answered_at__lte=settled).filter(
        Q(answered_at__gt=at) | Q(answered_at=at, pk__gt=pk) | after_filed
    )
    changes = sorted(
        [
            (row[1], row[0], DISPUTED, row)
            for row in filed.order_by("filed_at", "pk").values_list(*FIELDS)[: limit + 1]
        ]
        + [
            (row[2], row[0], ANSWERED, row)
            for row in answered.order_by("answered_at", "pk").values_list(*FIELDS)[: limit + 1]
        ],
        key=lambda change: change[:3],
    )
    page = changes[:limit]
    content = orjson.dumps(
        {
            "changes": [_change(event, row) for _at, _pk, event, row in page],
            "next": _cursor_dumps(client, *page[-1][:3]) if page else cursor,
            "has_more": len(changes) > limit,
        }
    )
    return HttpResponse(content, content_type="application/json")


def _change(event: int, row: tuple) -> dict:
    (pk, filed_at, answered_at, outcome, source_id, student, model, version, employer, made_at,
     label, number, handed_over_at) = row  # fmt: skip
    return {
        "dispute": pk,
        "event": EVENTS[event],
        "at": json_time(filed_at if event == DISPUTED else answered_at),
        "outcome": (outcome or None) if event == ANSWERED else None,
        "inference": {
            "id": source_id,
            "student": str(student),
            "model": model,
            "model_version": version,
            "employer": employer,
            "made_at": json_time(made_at),
            "output": label if number is None else number,
            "handed_over_at": json_time(handed_over_at) if handed_over_at else None,
        },
    }
