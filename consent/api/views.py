"""The consent API: plain Django function views and a hand-kept OpenAPI 3.1 document.

Why not django-ninja or Django REST framework: docs/api.md ("Why the schema is kept by hand"),
with the measurement (scripts/bench_api_schema.py).

Each view reads like the others: `@api_endpoint` answers the method check, the key and the
rate limit; the view reads its input (payloads.py), calls the one service, and answers.
"""

import json
from datetime import timedelta

import orjson
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from consent.api.endpoint import ApiError, api_endpoint, error_response, json_body
from consent.api.idempotency import idempotent_answer
from consent.api.openapi import OPENAPI_JSON
from consent.api.payloads import (
    changes_query,
    check_triples,
    idempotency_key,
    loads_check_body,
    provision_payload,
)
from consent.models import ConsentEvent, Provision, Purpose
from consent.services import (
    ProvisionRefused,
    consent_check,
    provision_record,
    purpose_code_possible,
)
from portal.models import Employer, User
from portal.shared.jsontime import json_time

# An event's id is taken when it is inserted, but transactions commit in their own order:
# a reader that already moved its cursor past id 8 would never see id 7 if 7 commits later.
# The feed therefore serves only events that occurred this long ago; every consent change
# commits well within it (a handful of rows and one email row).
CHANGES_SETTLE = timedelta(seconds=5)

# How each refusal of provision_record is answered.
REFUSALS = {
    "scope": (403, None),
    "data_items": (422, "data_items"),
    "future": (422, "provided_at"),
    "first_after_last": (422, "first_provided_at"),
    "no_valid_grant": (409, None),
    "before_grant": (409, None),
    "reference": (409, "reference"),
}


@api_endpoint("GET", public=True)
def openapi_document(request: HttpRequest) -> HttpResponse:
    return HttpResponse(OPENAPI_JSON, content_type="application/json")


@api_endpoint("POST")
def consents_check(request: HttpRequest) -> HttpResponse:
    body = json_body(request, loads=loads_check_body)
    triples = check_triples(body)
    results = consent_check(triples=triples, client=request.api_client)
    # Plain dicts written by orjson, the times already text: the view's share of a check is
    # a fraction of its query (docs/performance.md, "What the check costs").
    answer = {
        "results": [
            {
                "student": item["student"],
                "employer": item["employer"],
                "purpose": item["purpose"],
                "allowed": allowed,
                "reason": reason,
                "basis": {
                    "event_id": event_id,
                    "granted_at": granted_at,
                    "policy_version": policy_version,
                }
                if allowed
                else None,
            }
            for item, (allowed, reason, event_id, granted_at, policy_version) in zip(
                body["checks"], results, strict=True
            )
        ]
    }
    try:
        content = orjson.dumps(answer)
    except TypeError:
        # A string orjson will not write (an unpaired surrogate the caller sent, echoed
        # back): the standard encoder escapes it, as it did before orjson.
        content = _DJANGO_JSON.encode(answer).encode()
    return HttpResponse(content, content_type="application/json")


_DJANGO_JSON = DjangoJSONEncoder()


def _provision_json(provision: Provision, *, student: User, purpose: Purpose) -> dict:
    return {
        "id": provision.pk,
        "consent_event_id": provision.consent_event_id,
        "student": str(student.public_id),
        "employer": provision.employer_id,
        "purpose": purpose.code,
        "data_items": provision.data_items,
        "provided_at": provision.provided_at,
        "first_provided_at": provision.first_provided_at,
        "recorded_at": provision.recorded_at,
        "reference": provision.reference or None,
    }


@api_endpoint("POST")
def provisions(request: HttpRequest) -> HttpResponse:
    key = idempotency_key(request)
    body = json_body(request)
    return idempotent_answer(
        client=request.api_client,
        operation="provisions",
        key=key,
        body=body,
        answer=lambda: _provision_answer(body, client=request.api_client),
    )


def _provision_answer(body, *, client) -> JsonResponse:
    payload = provision_payload(body)
    if client.employer_id is not None and payload.employer != client.employer_id:
        # Before any lookup, so that a key cannot learn which other employers exist.
        raise ApiError(
            403,
            "out_of_scope",
            _("This key may only record its own company's provisions."),
            field="employer",
        )
    student = User.objects.filter(public_id=payload.student).first()
    if student is None:
        raise ApiError(404, "unknown_student", _("No student has this id."), field="student")
    employer = Employer.objects.filter(pk=payload.employer).first()
    if employer is None:
        raise ApiError(404, "unknown_employer", _("No employer has this id."), field="employer")
    purpose = (
        Purpose.objects.filter(code=payload.purpose).first()
        if purpose_code_possible(payload.purpose)
        else None
    )
    if purpose is None:
        raise ApiError(404, "unknown_purpose", _("No purpose has this code."), field="purpose")
    repeated = (
        bool(payload.reference)
        and Provision.objects.filter(recorded_by=client, reference=payload.reference).exists()
    )
    try:
        provision = provision_record(
            student=student,
            employer=employer,
            purpose=purpose,
            data_items=payload.data_items,
            provided_at=payload.provided_at,
            first_provided_at=payload.first_provided_at,
            client=client,
            reference=payload.reference,
        )
    except ProvisionRefused as refused:
        status, field = REFUSALS.get(refused.code, (409, None))
        raise ApiError(status, refused.code, refused.messages[0], field=field) from None
    return JsonResponse(
        _provision_json(provision, student=student, purpose=purpose),
        status=200 if repeated else 201,
    )


@api_endpoint("GET")
def consent_changes(request: HttpRequest) -> HttpResponse:
    since, limit = changes_query(request)
    events = ConsentEvent.objects.filter(
        pk__gt=since, occurred_at__lte=timezone.now() - CHANGES_SETTLE
    )
    if request.api_client.employer_id is not None:
        events = events.filter(employer_id=request.api_client.employer_id)
    rows = list(
        events.order_by("pk").values_list(
            "pk",
            "student__public_id",
            "employer_id",
            "purpose__code",
            "action",
            "occurred_at",
            "policy_version__label",
        )[: limit + 1]
    )
    page = rows[:limit]
    # orjson, and the times written as JsonResponse writes them: a page of 1,000 changes
    # took a third of its time in json.dumps and DjangoJSONEncoder.
    changes = [
        {
            "id": pk,
            "student": student,
            "employer": employer,
            "purpose": purpose,
            "action": action,
            "occurred_at": json_time(occurred_at),
            "policy_version": label,
        }
        for pk, student, employer, purpose, action, occurred_at, label in page
    ]
    content = orjson.dumps(
        {
            "changes": changes,
            "next_cursor": page[-1][0] if page else since,
            "has_more": len(rows) > limit,
        }
    )
    return HttpResponse(content, content_type="application/json")


@csrf_exempt
def not_found(request: HttpRequest, *args, **kwargs) -> JsonResponse:
    return error_response(404, "not_found", _("There is no such API endpoint."))


@csrf_exempt
def bench_bare(request: HttpRequest) -> JsonResponse:
    """The benchmark's yardstick: the same parsing and serialising of a 1,000-item payload
    as consents_check, and nothing else. Routed only in a benchmark run (see urls.py)."""
    checks = json.loads(request.body)["checks"]
    return JsonResponse(
        {
            "results": [
                {
                    "student": item["student"],
                    "employer": item["employer"],
                    "purpose": item["purpose"],
                    "allowed": False,
                    "reason": "no_valid_grant",
                    "basis": None,
                }
                for item in checks
            ]
        }
    )
