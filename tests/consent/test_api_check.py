"""The batch check's fast path answers what the plain definition answers.

The endpoint checks a batch at once (the ids column by column, the triples as three arrays
in one query, the grant's time written by the query). The definition it must agree with,
triple by triple: a student found by public id, a purpose by code, and its `Consent` row
for the employer granted, whose event is the basis; written by DjangoJSONEncoder.
"""

import json
import uuid
from datetime import UTC, datetime

import pytest
from django.core.serializers.json import DjangoJSONEncoder

from consent.api.keys import api_key_create
from consent.models import Consent, ConsentEvent, Purpose
from consent.services import consent_grant, consent_withdraw
from portal.models import User
from tests.factories import (
    EmployerFactory,
    PurposeFactory,
    UserFactory,
    accept,
    published_version,
)

pytestmark = pytest.mark.django_db

CHECK = "/api/v1/consents/check"


def plain_answer(check: dict, *, scope: int | None = None) -> dict:
    """One check answered by the definition, one lookup at a time."""
    answer = {key: check[key] for key in ("student", "employer", "purpose")}
    refused = {"allowed": False, "basis": None}
    if scope is not None and check["employer"] != scope:
        return {**answer, **refused, "reason": "out_of_scope"}
    student = User.objects.filter(public_id=check["student"].lower()).first()
    if student is None:
        return {**answer, **refused, "reason": "unknown_student"}
    purpose = Purpose.objects.filter(code=check["purpose"]).first()
    if purpose is None:
        return {**answer, **refused, "reason": "unknown_purpose"}
    state = (
        Consent.objects.filter(
            student=student, employer_id=int(check["employer"]), purpose=purpose, granted=True
        )
        .select_related("event__policy_version")
        .first()
    )
    if state is None:
        return {**answer, **refused, "reason": "no_valid_grant"}
    basis = {
        "event_id": state.event_id,
        "granted_at": state.event.occurred_at,
        "policy_version": state.event.policy_version.label,
    }
    return {**answer, "allowed": True, "reason": "granted", "basis": basis}


def plain_body(checks: list[dict], *, scope: int | None = None) -> dict:
    """The whole answer, as JsonResponse would write the definition's."""
    results = [plain_answer(check, scope=scope) for check in checks]
    return json.loads(json.dumps({"results": results}, cls=DjangoJSONEncoder))


def at(microsecond: int) -> datetime:
    return datetime(2026, 4, 1, 1, 2, 3, microsecond, tzinfo=UTC)


@pytest.fixture
def world():
    """Students with every kind of history, grant times on the millisecond's edges."""
    analysis = PurposeFactory(code="behaviour_analysis", requires_opt_in=True)
    provision = PurposeFactory(code="provision_to_employer", requires_opt_in=True)
    account = PurposeFactory(code="account")
    version = published_version(label="2019.03", purposes=[account, analysis, provision])
    employers = EmployerFactory.create_batch(3)
    students = UserFactory.create_batch(6, password=None)
    for student in students:
        accept(student, version)
    granted, withdrawn, again, never, lapsed, both = students
    times = iter([at(0), at(7_000), at(500), at(123_456), at(999_999)])
    for student, employer, purpose in (
        (granted, employers[0], analysis),
        (again, employers[1], analysis),
        (both, employers[0], analysis),
        (both, employers[2], provision),
    ):
        event = consent_grant(student=student, employer=employer, purpose=purpose)
        ConsentEvent.objects.filter(pk=event.pk).update(occurred_at=next(times))
    consent_grant(student=withdrawn, employer=employers[0], purpose=analysis)
    consent_withdraw(student=withdrawn, employer=employers[0], purpose=analysis)
    consent_withdraw(student=again, employer=employers[1], purpose=analysis)
    event = consent_grant(student=again, employer=employers[1], purpose=analysis)
    ConsentEvent.objects.filter(pk=event.pk).update(occurred_at=next(times))
    consent_grant(student=lapsed, employer=employers[0], purpose=analysis)
    accept(lapsed, published_version(label="2020.01", purposes=[account]))
    return students, employers


def every_triple(students, employers) -> list[dict]:
    """Each student with each employer and purpose, and the unknowns among them."""
    checks = [
        {"student": str(student.public_id), "employer": employer.pk, "purpose": code}
        for student in students
        for employer in employers
        for code in ("behaviour_analysis", "provision_to_employer")
    ]
    checks[1]["student"] = checks[1]["student"].upper()
    return [
        *checks,
        {"student": str(uuid.uuid4()), "employer": employers[0].pk, "purpose": "account"},
        {"student": str(students[0].public_id), "employer": 2**52, "purpose": "account"},
        {"student": checks[0]["student"], "employer": employers[0].pk, "purpose": "no_such"},
        {"student": checks[0]["student"], "employer": employers[0].pk, "purpose": "行動 分析"},
        {"student": checks[0]["student"], "employer": employers[0].pk, "purpose": "null"},
    ]


def post(client, key, checks):
    response = client.post(
        CHECK,
        data=json.dumps({"checks": checks}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.content[:300]
    return response.json()


def test_the_batch_answers_what_the_definition_answers(client, world):
    students, employers = world
    checks = every_triple(students, employers)
    _client, key = api_key_create(name="pipeline")

    answer = post(client, key, checks)

    assert answer == plain_body(checks)
    reasons = {result["reason"] for result in answer["results"]}
    assert reasons == {"granted", "no_valid_grant", "unknown_student", "unknown_purpose"}
    times = sorted(r["basis"]["granted_at"] for r in answer["results"] if r["allowed"])
    assert times == [
        "2026-04-01T01:02:03.000Z",  # 500 µs: cut, not rounded
        "2026-04-01T01:02:03.123Z",
        "2026-04-01T01:02:03.999Z",  # not the next second
        "2026-04-01T01:02:03Z",  # a whole second: no fraction
    ]


def test_a_batch_the_fast_path_refuses_is_answered_the_same_one_by_one(client, world):
    students, employers = world
    checks = every_triple(students, employers)
    # An employer id written 3.0 is an id, but not an int: the checks are read one by one.
    checks[0]["employer"] = float(checks[0]["employer"])
    _client, key = api_key_create(name="pipeline")

    answer = post(client, key, checks)

    assert answer == plain_body(checks)
    assert answer["results"][0]["employer"] == checks[0]["employer"]


def test_an_employer_key_gets_the_definitions_answers_for_its_own_rows_only(client, world):
    students, employers = world
    checks = every_triple(students, employers)
    _client, key = api_key_create(name="company", employer=employers[0])

    answer = post(client, key, checks)

    assert answer == plain_body(checks, scope=employers[0].pk)
    assert "out_of_scope" in {result["reason"] for result in answer["results"]}


@pytest.mark.parametrize(
    "student",
    [
        # Fixed ids: xdist's workers must collect the same test names.
        "53aa3181-9127-425e-8d57-8ff57fd7e04a\nb43d77bd-1730-4ba1-929b-d83bfd400f4d",  # two ids in one value, the batch's separator
        "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
        "０" * 8 + "-0000-0000-0000-000000000000",  # full-width digits
        "18227c878ad542f6af846aab4c59af57",
        3,
    ],
)
def test_a_batch_with_one_id_that_is_not_canonical_is_refused_naming_it(client, student):
    _client, key = api_key_create(name="pipeline")
    checks = [{"student": str(uuid.uuid4()), "employer": 1, "purpose": "p"} for _ in range(3)]
    checks[1]["student"] = student

    response = client.post(
        CHECK,
        data=json.dumps({"checks": checks}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "checks[1].student"
