"""POST /api/v1/activity: the job site's activity records, stored once per sender and record
id, refused per record under a student's deletion or cessation request."""

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from jsonschema import Draft202012Validator

from consent.api.keys import ScopeRefused, api_key_create
from consent.api.openapi import OPENAPI
from consent.services import consent_grant
from disclosure.models import DataRequest
from disclosure.services import request_file
from portal.models import ActivityRecord
from tests.factories import (
    ActivityRecordFactory,
    EmployerFactory,
    PurposeFactory,
    UserFactory,
    accept,
    published_version,
)

pytestmark = pytest.mark.django_db

ACTIVITY = "/api/v1/activity"


@pytest.fixture
def site():
    """The job site's key: it sends activity and does nothing else."""
    return api_key_create(name="Job site", scopes=["activity:write"])


@pytest.fixture
def site_key(site):
    return site[1]


@pytest.fixture
def student():
    return UserFactory(password=None)


@pytest.fixture
def employer():
    return EmployerFactory()


def post(client, body, key, **headers):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(
        ACTIVITY,
        data,
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}", **headers},
    )


def record(student, *, id=None, employer=None, kind="job_view", at=None, detail="/jobs/1"):
    at = at or timezone.now() - timedelta(minutes=1)
    return {
        "id": id or f"evt-{uuid.uuid4()}",
        "student": str(student.public_id),
        "employer": employer.pk if employer is not None else None,
        "kind": kind,
        "detail": detail,
        "occurred_at": at.isoformat(),
    }


def results(response):
    assert response.status_code == 200, response.content
    return [
        (r["result"], r["status"], r.get("error", {}).get("code"))
        for r in response.json()["results"]
    ]


def assert_documented(body):
    schema = {"$ref": "#/components/schemas/ActivityResponse", "components": OPENAPI["components"]}
    errors = list(Draft202012Validator(schema).iter_errors(body))
    assert not errors, [e.message for e in errors]


def a_request(student, kind, *, at, employers=None, status=DataRequest.Status.IN_PROGRESS):
    request = DataRequest.objects.create(
        reference=f"R-{uuid.uuid4().hex[:10]}",
        student=student,
        kind=kind,
        all_recipients=employers is None,
        language="ja",
        status=status,
        submitted_at=at,
        due_at=at + timedelta(days=14),
    )
    if employers:
        request.employers.set(employers)
    return request


# --- storing ---------------------------------------------------------------------------------


def test_a_record_is_stored_with_its_sender_and_record_id(client, site, student, employer):
    sender, key = site
    body = {"records": [record(student, id="evt-1", employer=employer, detail="求人 #12")]}

    response = post(client, body, key)

    assert results(response) == [("stored", 201, None)]
    assert response.json() | {"results": None} == {
        "results": None,
        "stored": 1,
        "duplicate": 0,
        "refused": 0,
    }
    assert_documented(response.json())
    row = ActivityRecord.objects.get()
    assert (row.student, row.employer, row.kind, row.detail) == (
        student,
        employer,
        "job_view",
        "求人 #12",
    )
    assert (row.sender, row.source_record_id) == (sender, "evt-1")
    assert row.received_at is not None


def test_a_batch_of_1000_is_stored_in_a_bounded_number_of_queries(
    client, site_key, employer, django_assert_max_num_queries
):
    students = UserFactory.create_batch(50, password=None)
    others = [EmployerFactory() for _ in range(4)] + [None]
    records = [
        record(students[i % 50], id=f"evt-{i}", employer=others[i % 5], kind="page_view")
        for i in range(1000)
    ]
    # Half the students have a request on file, so every lookup runs (cessation included).
    for s in students[:25]:
        a_request(s, DataRequest.Kind.DELETION, at=timezone.now() - timedelta(days=30))
    a_request(students[1], DataRequest.Kind.CESSATION, at=timezone.now() - timedelta(days=30))

    # The key, its last use, students, companies, requests, their scopes, grants, the ids
    # already held, the read-back, savepoints; plus the insert, which SQLite splits into
    # statements of at most 999 parameters (9 here) and PostgreSQL makes one.
    started = time.perf_counter()
    with django_assert_max_num_queries(22):
        response = post(client, {"records": records}, site_key)
    elapsed = time.perf_counter() - started

    outcomes = results(response)
    assert len(outcomes) == 1000
    assert {o[0] for o in outcomes} == {"stored", "refused"}
    assert ActivityRecord.objects.count() == response.json()["stored"]
    print(f"\n1,000 activity records: {elapsed * 1000:.0f} ms")


def test_1001_records_are_413_and_nothing_is_stored(client, site_key, student):
    records = [record(student, id=f"evt-{i}") for i in range(1001)]

    response = post(client, {"records": records}, site_key)

    assert response.status_code == 413
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("batch_too_large", "records")
    assert not ActivityRecord.objects.exists()


# --- idempotency by record id --------------------------------------------------------------


def test_a_retried_batch_is_answered_duplicate_and_stores_nothing_twice(
    client, site_key, student, employer
):
    body = {"records": [record(student, id=f"evt-{i}", employer=employer) for i in range(3)]}
    assert results(post(client, body, site_key)) == [("stored", 201, None)] * 3

    again = post(client, body, site_key)

    assert results(again) == [("duplicate", 200, None)] * 3
    assert again.json()["duplicate"] == 3
    assert ActivityRecord.objects.count() == 3


def test_the_same_id_twice_in_one_batch_is_stored_once(client, site_key, student):
    one = record(student, id="evt-1")
    other = {**one, "detail": "/jobs/2"}

    response = post(client, {"records": [one, one, other]}, site_key)

    assert results(response) == [
        ("stored", 201, None),
        ("duplicate", 200, None),
        ("refused", 409, "conflict"),
    ]
    assert ActivityRecord.objects.count() == 1


def test_the_same_id_with_other_content_is_a_conflict_and_changes_nothing(
    client, site_key, student
):
    first = record(student, id="evt-1", detail="/jobs/1")
    post(client, {"records": [first]}, site_key)
    # The same instant written in another offset is the same content.
    in_utc = datetime.fromisoformat(first["occurred_at"]).astimezone(UTC)
    same_instant = {**first, "occurred_at": in_utc.isoformat()}

    response = post(client, {"records": [{**first, "detail": "/jobs/2"}, same_instant]}, site_key)

    assert results(response) == [("refused", 409, "conflict"), ("duplicate", 200, None)]
    assert ActivityRecord.objects.get().detail == "/jobs/1"


def test_another_senders_record_id_does_not_collide(client, site_key, student):
    other_key = api_key_create(name="Second site", scopes=["activity:write"])[1]
    post(client, {"records": [record(student, id="evt-1", detail="/a")]}, site_key)

    response = post(client, {"records": [record(student, id="evt-1", detail="/b")]}, other_key)

    assert results(response) == [("stored", 201, None)]
    assert sorted(ActivityRecord.objects.values_list("detail", flat=True)) == ["/a", "/b"]


# --- refusals ----------------------------------------------------------------------------------


def test_a_record_before_a_deletion_is_refused_and_one_after_it_is_stored(
    client, site_key, student, employer
):
    ActivityRecordFactory(student=student, employer=employer)
    deletion = request_file(student=student, kind=DataRequest.Kind.DELETION)
    assert not ActivityRecord.objects.exists()  # the deletion erased what there was
    before = deletion.submitted_at - timedelta(hours=1)
    after = deletion.submitted_at + timedelta(seconds=30)

    response = post(
        client,
        {
            "records": [
                record(student, employer=employer, at=before),
                record(student, at=deletion.submitted_at),  # at the very time: erased too
                record(student, employer=employer, at=after),
            ]
        },
        site_key,
    )

    assert results(response) == [
        ("refused", 422, "erased_by_request"),
        ("refused", 422, "erased_by_request"),
        ("stored", 201, None),
    ]
    assert list(ActivityRecord.objects.values_list("occurred_at", flat=True)) == [after]
    message = response.json()["results"][0]["error"]["message"]
    assert "削除" in message  # in the portal's default language, Japanese
    assert_documented(response.json())


def test_after_a_cessation_nothing_more_is_stored_until_the_student_grants_again(
    client, site_key, student, employer
):
    analysis = PurposeFactory(code="behaviour_analysis", requires_opt_in=True)
    accept(student, published_version(purposes=[PurposeFactory(code="account"), analysis]))
    other = EmployerFactory()
    now = timezone.now()
    a_request(student, DataRequest.Kind.CESSATION, at=now - timedelta(days=2))

    def send(*items):
        return results(post(client, {"records": list(items)}, site_key))

    assert (
        send(
            record(student, employer=employer, at=now - timedelta(days=3)),
            record(student, employer=employer, at=now - timedelta(days=1)),
            record(student, at=now - timedelta(days=1)),
        )
        == [("refused", 422, "stopped_by_request")] * 3
    )

    # The student grants this company consent again: what they do from then on is collected
    # for it; not what happened between the cessation and the grant, nor for anyone else.
    consent_grant(student=student, employer=employer, purpose=analysis)
    granted_at = timezone.now()
    assert send(
        record(student, employer=employer, at=granted_at + timedelta(seconds=1)),
        record(student, employer=employer, at=now - timedelta(days=1)),
        record(student, employer=other, at=granted_at + timedelta(seconds=1)),
        record(student, at=granted_at + timedelta(seconds=1)),
    ) == [
        ("stored", 201, None),
        ("refused", 422, "stopped_by_request"),
        ("refused", 422, "stopped_by_request"),
        ("refused", 422, "stopped_by_request"),
    ]


def test_a_request_for_chosen_companies_covers_only_their_records(client, site_key, student):
    chosen, other = EmployerFactory(), EmployerFactory()
    at = timezone.now() - timedelta(days=1)
    a_request(student, DataRequest.Kind.DELETION, at=at, employers=[chosen])
    a_request(student, DataRequest.Kind.CESSATION, at=at, employers=[chosen])
    earlier = at - timedelta(days=1)

    response = post(
        client,
        {
            "records": [
                record(student, employer=chosen, at=earlier),
                record(student, employer=other, at=earlier),
                record(student, at=earlier),  # no company: as the deletion, not in its scope
            ]
        },
        site_key,
    )

    assert results(response) == [
        ("refused", 422, "erased_by_request"),
        ("stored", 201, None),
        ("stored", 201, None),
    ]


def test_a_cancelled_request_refuses_nothing(client, site_key, student):
    at = timezone.now() - timedelta(days=1)
    for kind in (DataRequest.Kind.DELETION, DataRequest.Kind.CESSATION):
        a_request(student, kind, at=at, status=DataRequest.Status.CANCELLED)
    a_request(student, DataRequest.Kind.DISCLOSURE, at=at)

    response = post(client, {"records": [record(student, at=at - timedelta(hours=1))]}, site_key)

    assert results(response) == [("stored", 201, None)]


def test_unknown_students_and_companies_and_impossible_times_are_refused_per_record(
    client, site_key, student, employer, settings
):
    stranger = {**record(student), "student": str(uuid.uuid4())}
    now = timezone.now()

    response = post(
        client,
        {
            "records": [
                stranger,
                {**record(student), "employer": 2**40},
                record(student, at=now + timedelta(hours=1)),
                record(student, at=now - timedelta(days=settings.RETENTION_ACTIVITY_DAYS + 1)),
                record(student, employer=employer),
            ]
        },
        site_key,
    )

    assert results(response) == [
        ("refused", 422, "unknown_student"),
        ("refused", 422, "unknown_employer"),
        ("refused", 422, "future"),
        ("refused", 422, "expired"),
        ("stored", 201, None),
    ]
    assert response.json()["refused"] == 4
    assert_documented(response.json())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"occurred_at": "2026-04-01T10:00:00"}, "records[0].occurred_at"),
        ({"occurred_at": None}, "records[0].occurred_at"),
        ({"kind": "purchase"}, "records[0].kind"),
        ({"id": ""}, "records[0].id"),
        ({"id": "a\nb"}, "records[0].id"),
        ({"id": "x" * 101}, "records[0].id"),
        ({"id": 7}, "records[0].id"),
        ({"student": "someone@example.jp"}, "records[0].student"),
        ({"employer": "3"}, "records[0].employer"),
        ({"detail": "x" * 301}, "records[0].detail"),
        ({"detail": "a\x00"}, "records[0].detail"),
    ],
)
def test_a_record_of_the_wrong_shape_fails_the_whole_batch(
    client, site_key, student, change, field
):
    response = post(client, {"records": [{**record(student), **change}, record(student)]}, site_key)

    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert not ActivityRecord.objects.exists()


# --- keys and scopes -------------------------------------------------------------------------


def test_a_key_without_the_activity_scope_is_403(client, student):
    consents_key = api_key_create(name="Analytics pipeline")[1]

    response = post(client, {"records": [record(student)]}, consents_key)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_scope"
    assert not ActivityRecord.objects.exists()


def test_the_activity_key_cannot_ask_about_consents(client, site_key, student, employer):
    check = {
        "checks": [{"student": str(student.public_id), "employer": employer.pk, "purpose": "x"}]
    }
    response = client.post(
        "/api/v1/consents/check",
        check,
        content_type="application/json",
        headers={"Authorization": f"Bearer {site_key}"},
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_scope"


def test_a_companys_key_cannot_hold_the_activity_scope(employer):
    with pytest.raises(ScopeRefused):
        api_key_create(name="Aoba HR", employer=employer, scopes=["activity:write"])
    with pytest.raises(ScopeRefused):
        api_key_create(name="Typo", scopes=["activity:read"])
