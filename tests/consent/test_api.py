"""The consent API: keys, the batch check, provisions, the changes feed, errors, limits."""

import json
import uuid
from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consent.api import views as api_views
from consent.api.keys import api_key_create, api_key_revoke
from consent.models import ApiClient, ConsentEvent, Provision
from consent.services import consent_grant, consent_withdraw
from tests.factories import EmployerFactory, PurposeFactory, UserFactory, accept, published_version

pytestmark = pytest.mark.django_db

CHECK = "/api/v1/consents/check"
PROVISIONS = "/api/v1/provisions"
CHANGES = "/api/v1/consents/changes"


# --- helpers -----------------------------------------------------------------------------


@pytest.fixture
def analysis():
    return PurposeFactory(code="behaviour_analysis", requires_opt_in=True)


@pytest.fixture
def version(analysis):
    return published_version(label="2019.03", purposes=[PurposeFactory(code="account"), analysis])


@pytest.fixture
def student(version):
    student = UserFactory(password=None)
    accept(student, version)
    return student


@pytest.fixture
def employer():
    return EmployerFactory()


@pytest.fixture
def pipeline_key():
    return api_key_create(name="Analytics pipeline")[1]


@pytest.fixture
def settled(monkeypatch):
    """The changes feed holds events back for a few seconds; most tests need them at once."""
    monkeypatch.setattr(api_views, "CHANGES_SETTLE", timedelta(0))


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def post(client, url, body, key):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data=data, content_type="application/json", headers=auth(key))


def check(client, key, *triples):
    checks = [{"student": str(s), "employer": e, "purpose": p} for s, e, p in triples]
    return post(client, CHECK, {"checks": checks}, key)


def provision_body(student, employer, purpose="behaviour_analysis", **extra):
    return {
        "student": str(student.public_id),
        "employer": employer.pk,
        "purpose": purpose,
        "data_items": "閲覧履歴の分析結果（関心度スコア）",
        **extra,
    }


def error_of(response):
    assert response["Content-Type"] == "application/json"
    return response.json()["error"]


# --- authentication ----------------------------------------------------------------------


def test_a_request_without_a_key_is_refused_with_a_bearer_challenge(client):
    response = client.post(CHECK, data={"checks": []}, content_type="application/json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "missing_key"


def test_a_key_in_another_scheme_is_refused(client, pipeline_key):
    response = client.post(
        CHECK,
        data={"checks": []},
        content_type="application/json",
        headers={"Authorization": f"Basic {pipeline_key}"},
    )
    assert response.status_code == 401
    assert error_of(response)["code"] == "missing_key"


def test_an_unknown_key_is_refused(client, pipeline_key):
    response = post(client, CHECK, {"checks": []}, pipeline_key + "x")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert error_of(response)["code"] == "invalid_key"


def test_a_revoked_key_is_refused(client, pipeline_key):
    assert post(client, CHECK, {"checks": []}, pipeline_key).status_code == 200
    api_key_revoke(prefix_or_key=pipeline_key)
    response = post(client, CHECK, {"checks": []}, pipeline_key)
    assert response.status_code == 401
    assert error_of(response)["code"] == "revoked_key"


def test_last_used_is_written_at_most_once_a_minute(client, pipeline_key):
    assert ApiClient.objects.get().last_used_at is None
    post(client, CHECK, {"checks": []}, pipeline_key)
    first = ApiClient.objects.get().last_used_at
    assert first is not None

    with CaptureQueriesContext(connection) as queries:
        post(client, CHECK, {"checks": []}, pipeline_key)
    assert not [q for q in queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    assert ApiClient.objects.get().last_used_at == first

    ApiClient.objects.update(last_used_at=first - timedelta(minutes=2))
    post(client, CHECK, {"checks": []}, pipeline_key)
    assert ApiClient.objects.get().last_used_at > first


# --- the batch check ---------------------------------------------------------------------


def test_a_grant_allows_and_names_its_event_and_policy_version(
    client, pipeline_key, student, employer, analysis
):
    grant = consent_grant(student=student, employer=employer, purpose=analysis)

    response = check(client, pipeline_key, (student.public_id, employer.pk, "behaviour_analysis"))

    assert response.status_code == 200
    [result] = response.json()["results"]
    assert result["allowed"] is True
    assert result["reason"] == "granted"
    assert result["basis"]["event_id"] == grant.pk
    assert result["basis"]["policy_version"] == "2019.03"
    granted_at = result["basis"]["granted_at"]
    assert abs(datetime.fromisoformat(granted_at) - grant.occurred_at) < timedelta(milliseconds=1)


def test_without_a_grant_it_is_not_allowed(client, pipeline_key, student, employer, analysis):
    other = EmployerFactory()
    consent_grant(student=student, employer=other, purpose=analysis)

    response = check(client, pipeline_key, (student.public_id, employer.pk, "behaviour_analysis"))

    [result] = response.json()["results"]
    assert result == {
        "student": str(student.public_id),
        "employer": employer.pk,
        "purpose": "behaviour_analysis",
        "allowed": False,
        "reason": "no_valid_grant",
        "basis": None,
    }


def test_after_withdrawal_it_is_not_allowed(client, pipeline_key, student, employer, analysis):
    consent_grant(student=student, employer=employer, purpose=analysis)
    consent_withdraw(student=student, employer=employer, purpose=analysis)

    response = check(client, pipeline_key, (student.public_id, employer.pk, "behaviour_analysis"))

    [result] = response.json()["results"]
    assert (result["allowed"], result["reason"]) == (False, "no_valid_grant")


def test_a_grant_lapses_when_the_student_accepts_a_version_without_the_purpose(
    client, pipeline_key, student, employer, analysis
):
    consent_grant(student=student, employer=employer, purpose=analysis)
    accept(student, published_version(purposes=[PurposeFactory(code="account")]))

    response = check(client, pipeline_key, (student.public_id, employer.pk, "behaviour_analysis"))

    assert response.json()["results"][0]["allowed"] is False


def test_unknown_students_and_purposes_are_named_in_the_order_sent(
    client, pipeline_key, student, employer, analysis
):
    consent_grant(student=student, employer=employer, purpose=analysis)

    response = check(
        client,
        pipeline_key,
        (uuid.uuid4(), employer.pk, "behaviour_analysis"),
        (student.public_id, employer.pk, "no_such_purpose"),
        (student.public_id, employer.pk, "behaviour_analysis"),
    )

    reasons = [(r["allowed"], r["reason"]) for r in response.json()["results"]]
    assert reasons == [
        (False, "unknown_student"),
        (False, "unknown_purpose"),
        (True, "granted"),
    ]


def test_a_student_id_in_capitals_is_the_same_student(
    client, pipeline_key, student, employer, analysis
):
    consent_grant(student=student, employer=employer, purpose=analysis)
    shouted = str(student.public_id).upper()

    response = check(client, pipeline_key, (shouted, employer.pk, "behaviour_analysis"))

    [result] = response.json()["results"]
    assert (result["student"], result["allowed"]) == (shouted, True)


def test_an_empty_batch_answers_an_empty_list(client, pipeline_key):
    response = post(client, CHECK, {"checks": []}, pipeline_key)
    assert response.status_code == 200
    assert response.json() == {"results": []}


def test_a_batch_of_1000_runs_a_fixed_number_of_queries(
    client, pipeline_key, version, analysis, django_assert_max_num_queries
):
    employers = EmployerFactory.create_batch(5)
    students = []
    for _ in range(10):
        student = UserFactory(password=None)
        accept(student, version)
        students.append(student)
    for student in students[:5]:
        for employer in employers:
            consent_grant(student=student, employer=employer, purpose=analysis)
    known = [(s.public_id, e.pk, "behaviour_analysis") for s in students for e in employers]
    triples = (known * 20)[:900] + [(uuid.uuid4(), employers[0].pk, "x") for _ in range(100)]

    # The key, last_used_at (first use of the minute), students, purposes, grants.
    with django_assert_max_num_queries(5):
        response = check(client, pipeline_key, *triples)

    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 1000
    assert sum(r["allowed"] for r in results) == 450


# --- scoping -----------------------------------------------------------------------------


def test_an_employer_key_sees_only_its_own_employers_grants(client, student, employer, analysis):
    other = EmployerFactory()
    consent_grant(student=student, employer=employer, purpose=analysis)
    consent_grant(student=student, employer=other, purpose=analysis)
    _client, key = api_key_create(name="Employer HR", employer=employer)

    response = check(
        client,
        key,
        (student.public_id, employer.pk, "behaviour_analysis"),
        (student.public_id, other.pk, "behaviour_analysis"),
        (uuid.uuid4(), other.pk, "behaviour_analysis"),
    )

    own, foreign, unknown = response.json()["results"]
    assert (own["allowed"], own["reason"]) == (True, "granted")
    # The same answer whether or not the student or a grant exists: nothing is revealed.
    for result in (foreign, unknown):
        assert (result["allowed"], result["reason"], result["basis"]) == (
            False,
            "out_of_scope",
            None,
        )


def test_an_employer_key_sees_only_its_own_changes(client, settled, student, employer, analysis):
    other = EmployerFactory()
    mine = consent_grant(student=student, employer=employer, purpose=analysis)
    consent_grant(student=student, employer=other, purpose=analysis)
    consent_withdraw(student=student, employer=other, purpose=analysis)
    _client, key = api_key_create(name="Employer HR", employer=employer)

    response = client.get(CHANGES, headers=auth(key))

    assert [c["id"] for c in response.json()["changes"]] == [mine.pk]


def test_the_pipeline_key_sees_every_employers_changes(
    client, settled, pipeline_key, student, employer, analysis
):
    other = EmployerFactory()
    consent_grant(student=student, employer=employer, purpose=analysis)
    consent_grant(student=student, employer=other, purpose=analysis)

    response = client.get(CHANGES, headers=auth(pipeline_key))

    assert {c["employer"] for c in response.json()["changes"]} == {employer.pk, other.pk}


# --- errors ------------------------------------------------------------------------------


def test_more_than_1000_checks_is_413(client, pipeline_key):
    checks = [{"student": str(uuid.uuid4()), "employer": 1, "purpose": "x"}] * 1001
    response = post(client, CHECK, {"checks": checks}, pipeline_key)
    assert response.status_code == 413
    assert error_of(response)["code"] == "batch_too_large"


def test_a_body_over_the_upload_limit_is_413(client, pipeline_key, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = post(client, CHECK, {"checks": [], "padding": "x" * 2000}, pipeline_key)
    assert response.status_code == 413
    assert error_of(response)["code"] == "too_large"


@pytest.mark.parametrize("body", ['{"checks": [', "not json", b"\xff\xfe"])
def test_malformed_json_is_400(client, pipeline_key, body):
    response = post(client, CHECK, body, pipeline_key)
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed_json"


STUDENT = "6f1c2d1e-8a4b-4c1e-9d7a-0b5e3f2a1c9d"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], ""),
        ({}, "checks"),
        ({"checks": {"student": STUDENT}}, "checks"),
        ({"checks": ["x"]}, "checks[0]"),
        ({"checks": [{"employer": 1, "purpose": "p"}]}, "checks[0].student"),
        (
            {"checks": [{"student": "bulk-0000001", "employer": 1, "purpose": "p"}]},
            "checks[0].student",
        ),
        (
            {
                "checks": [
                    {"student": STUDENT, "employer": 1, "purpose": "p"},
                    {"student": STUDENT, "employer": "1", "purpose": "p"},
                ]
            },
            "checks[1].employer",
        ),
        (
            {"checks": [{"student": STUDENT, "employer": True, "purpose": "p"}]},
            "checks[0].employer",
        ),
        (
            {"checks": [{"student": STUDENT, "employer": 2**64, "purpose": "p"}]},
            "checks[0].employer",
        ),
        ({"checks": [{"student": STUDENT, "employer": 1, "purpose": ""}]}, "checks[0].purpose"),
        ({"checks": [{"student": STUDENT, "employer": 1, "purpose": 7}]}, "checks[0].purpose"),
    ],
)
def test_a_wrong_shape_is_422_naming_the_item_and_field(client, pipeline_key, body, field):
    response = post(client, CHECK, body, pipeline_key)
    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_field"
    assert error["field"] == field


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [("get", CHECK, "POST"), ("put", PROVISIONS, "POST"), ("post", CHANGES, "GET")],
)
def test_another_method_is_405_json(client, pipeline_key, method, url, allowed):
    response = getattr(client, method)(url, headers=auth(pipeline_key))
    assert response.status_code == 405
    assert response["Allow"] == allowed
    assert error_of(response)["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "path", ["/api/v1/", "/api/v1/consents", "/api/v1/consents/check/", "/api/v1/_bench/bare"]
)
def test_an_unknown_api_path_is_404_json(client, path):
    response = client.post(path)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_an_unexpected_fault_answers_json_500(client, pipeline_key, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(api_views, "consent_check", broken)
    response = post(client, CHECK, {"checks": []}, pipeline_key)
    assert response.status_code == 500
    assert error_of(response)["code"] == "server_error"
    assert "database" not in response.content.decode()


# --- rate limit --------------------------------------------------------------------------


def test_a_key_over_its_limit_gets_429_with_retry_after(client, settings, pipeline_key):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    other_key = api_key_create(name="Another pipeline")[1]

    statuses = [post(client, CHECK, {"checks": []}, pipeline_key).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    response = post(client, CHECK, {"checks": []}, pipeline_key)
    assert error_of(response)["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    # Counted per key.
    assert post(client, CHECK, {"checks": []}, other_key).status_code == 200


# --- provisions --------------------------------------------------------------------------


def test_a_provision_with_a_grant_is_recorded(client, pipeline_key, student, employer, analysis):
    grant = consent_grant(student=student, employer=employer, purpose=analysis)

    response = post(client, PROVISIONS, provision_body(student, employer), pipeline_key)

    assert response.status_code == 201
    body = response.json()
    provision = Provision.objects.get()
    assert body["id"] == provision.pk
    assert body["consent_event_id"] == grant.pk == provision.consent_event_id
    assert body["student"] == str(student.public_id)
    assert provision.recorded_by == ApiClient.objects.get()
    assert provision.data_items == "閲覧履歴の分析結果（関心度スコア）"


def test_a_provision_without_a_grant_is_409(client, pipeline_key, student, employer):
    response = post(client, PROVISIONS, provision_body(student, employer), pipeline_key)
    assert response.status_code == 409
    assert error_of(response)["code"] == "no_valid_grant"
    assert not Provision.objects.exists()


def test_a_provision_after_withdrawal_is_409(client, pipeline_key, student, employer, analysis):
    consent_grant(student=student, employer=employer, purpose=analysis)
    consent_withdraw(student=student, employer=employer, purpose=analysis)

    response = post(client, PROVISIONS, provision_body(student, employer), pipeline_key)

    assert response.status_code == 409
    assert error_of(response)["code"] == "no_valid_grant"


def test_a_repeated_reference_answers_200_with_the_same_record(
    client, pipeline_key, student, employer, analysis
):
    consent_grant(student=student, employer=employer, purpose=analysis)
    body = provision_body(student, employer, reference="batch-2026-04-01/17")

    first = post(client, PROVISIONS, body, pipeline_key)
    again = post(client, PROVISIONS, body, pipeline_key)

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert Provision.objects.count() == 1


def test_a_reference_used_for_another_record_is_409(
    client, pipeline_key, student, employer, analysis, version
):
    another = UserFactory(password=None)
    accept(another, version)
    for someone in (student, another):
        consent_grant(student=someone, employer=employer, purpose=analysis)
    post(client, PROVISIONS, provision_body(student, employer, reference="r-1"), pipeline_key)

    response = post(
        client, PROVISIONS, provision_body(another, employer, reference="r-1"), pipeline_key
    )

    assert response.status_code == 409
    assert error_of(response)["code"] == "reference"


def test_a_bulk_record_keeps_its_first_and_last_dates(
    client, pipeline_key, student, employer, analysis
):
    consent_grant(student=student, employer=employer, purpose=analysis)
    now = timezone.now()
    first, last = now + timedelta(seconds=1), now + timedelta(minutes=2)
    body = provision_body(
        student,
        employer,
        first_provided_at=first.isoformat().replace("+00:00", "Z"),
        provided_at=timezone.localtime(last).isoformat(),  # +09:00
    )

    response = post(client, PROVISIONS, body, pipeline_key)

    assert response.status_code == 201
    provision = Provision.objects.get()
    assert (provision.first_provided_at, provision.provided_at) == (first, last)
    assert response.json()["first_provided_at"].endswith("Z")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"provided_at": "2026-04-01T10:00:00"}, "provided_at"),  # no offset: refused
        ({"provided_at": "yesterday"}, "provided_at"),
        ({"provided_at": 1775000000}, "provided_at"),
        ({"first_provided_at": "2026-04-01"}, "first_provided_at"),
        ({"data_items": "  "}, "data_items"),
        ({"data_items": "x" * 501}, "data_items"),
        ({"reference": "r" * 101}, "reference"),
        ({"reference": 12}, "reference"),
        ({"student": "not-a-uuid"}, "student"),
        ({"employer": "3"}, "employer"),
    ],
)
def test_bad_provision_fields_are_422(
    client, pipeline_key, student, employer, analysis, extra, field
):
    consent_grant(student=student, employer=employer, purpose=analysis)
    response = post(
        client, PROVISIONS, {**provision_body(student, employer), **extra}, pipeline_key
    )
    assert response.status_code == 422
    assert error_of(response)["field"] == field


def test_dates_the_service_refuses_are_422_or_409(
    client, pipeline_key, student, employer, analysis
):
    consent_grant(student=student, employer=employer, purpose=analysis)
    now = timezone.now()
    cases = [
        ({"provided_at": (now + timedelta(days=1)).isoformat()}, 422, "future"),
        (
            {
                "first_provided_at": now.isoformat(),
                "provided_at": (now - timedelta(minutes=1)).isoformat(),
            },
            422,
            "first_after_last",
        ),
        ({"provided_at": (now - timedelta(days=30)).isoformat()}, 409, "before_grant"),
    ]
    for extra, status, code in cases:
        response = post(
            client, PROVISIONS, provision_body(student, employer, **extra), pipeline_key
        )
        assert (response.status_code, error_of(response)["code"]) == (status, code)
    assert not Provision.objects.exists()


def test_an_employer_key_cannot_record_for_another_employer(client, student, employer, analysis):
    other = EmployerFactory()
    consent_grant(student=student, employer=other, purpose=analysis)
    _client, key = api_key_create(name="Employer HR", employer=employer)

    response = post(client, PROVISIONS, provision_body(student, other), key)

    assert response.status_code == 403
    assert error_of(response)["code"] == "out_of_scope"
    assert not Provision.objects.exists()


def test_an_employer_key_records_its_own_provisions(client, student, employer, analysis):
    consent_grant(student=student, employer=employer, purpose=analysis)
    _client, key = api_key_create(name="Employer HR", employer=employer)
    response = post(client, PROVISIONS, provision_body(student, employer), key)
    assert response.status_code == 201


@pytest.mark.parametrize("unknown", ["student", "employer", "purpose"])
def test_unknown_ids_are_404(client, pipeline_key, student, employer, analysis, unknown):
    consent_grant(student=student, employer=employer, purpose=analysis)
    body = provision_body(student, employer)
    body[unknown] = {"student": str(uuid.uuid4()), "employer": employer.pk + 1000, "purpose": "x"}[
        unknown
    ]

    response = post(client, PROVISIONS, body, pipeline_key)

    assert response.status_code == 404
    error = error_of(response)
    assert (error["code"], error["field"]) == (f"unknown_{unknown}", unknown)


# --- the changes feed --------------------------------------------------------------------


def test_the_changes_feed_pages_with_a_cursor(
    client, settled, pipeline_key, student, employer, analysis
):
    consent_grant(student=student, employer=employer, purpose=analysis)
    consent_withdraw(student=student, employer=employer, purpose=analysis)
    consent_grant(student=student, employer=employer, purpose=analysis)
    others = EmployerFactory.create_batch(2)
    for other in others:
        consent_grant(student=student, employer=other, purpose=analysis)
    events = list(ConsentEvent.objects.order_by("pk"))
    assert len(events) == 5

    seen, cursor, pages = [], 0, 0
    while True:
        response = client.get(CHANGES, {"since": cursor, "limit": 2}, headers=auth(pipeline_key))
        assert response.status_code == 200
        page = response.json()
        pages += 1
        seen += page["changes"]
        if page["changes"]:
            assert page["next_cursor"] == page["changes"][-1]["id"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break

    assert pages == 3
    assert [c["id"] for c in seen] == [e.pk for e in events]
    assert [c["action"] for c in seen[:3]] == ["grant", "withdraw", "grant"]
    assert seen[0] == {
        "id": events[0].pk,
        "student": str(student.public_id),
        "employer": employer.pk,
        "purpose": "behaviour_analysis",
        "action": "grant",
        "occurred_at": seen[0]["occurred_at"],
        "policy_version": "2019.03",
    }
    # Nothing new: the same cursor back.
    response = client.get(CHANGES, {"since": cursor}, headers=auth(pipeline_key))
    assert response.json() == {"changes": [], "next_cursor": cursor, "has_more": False}


def test_the_changes_feed_shows_lapses(client, settled, pipeline_key, student, employer, analysis):
    consent_grant(student=student, employer=employer, purpose=analysis)
    accept(student, published_version(purposes=[PurposeFactory(code="account")]))

    response = client.get(CHANGES, headers=auth(pipeline_key))

    assert [c["action"] for c in response.json()["changes"]] == ["grant", "lapse"]


def test_a_change_appears_once_it_has_settled(client, pipeline_key, student, employer, analysis):
    event = consent_grant(student=student, employer=employer, purpose=analysis)

    assert client.get(CHANGES, headers=auth(pipeline_key)).json()["changes"] == []

    ConsentEvent.objects.filter(pk=event.pk).update(
        occurred_at=event.occurred_at - api_views.CHANGES_SETTLE
    )
    assert [c["id"] for c in client.get(CHANGES, headers=auth(pipeline_key)).json()["changes"]] == [
        event.pk
    ]


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"since": "abc"}, "bad_cursor"),
        ({"since": "-1"}, "bad_cursor"),
        ({"since": "1.5"}, "bad_cursor"),
        ({"since": "9" * 5000}, "bad_cursor"),
        ({"limit": "0"}, "bad_limit"),
        ({"limit": "1001"}, "bad_limit"),
    ],
)
def test_a_bad_cursor_or_limit_is_400(client, pipeline_key, query, code):
    response = client.get(CHANGES, query, headers=auth(pipeline_key))
    assert response.status_code == 400
    assert error_of(response)["code"] == code
