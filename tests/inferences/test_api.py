"""POST /api/v1/inferences and the service behind it: a result recorded once per sender and
id, refused per result without a live grant (409), after an objection (409) and under a
student's deletion or cessation request (422), as provisions and activity records are."""

import json
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from jsonschema import Draft202012Validator

from consent.api.keys import ScopeRefused, api_key_create
from consent.api.openapi import OPENAPI
from consent.api.openapi_inferences import REFUSALS
from consent.api.payloads import MAX_OUTPUT_LABEL, inference_items
from consent.models import Provision
from consent.services import consent_grant, consent_withdraw
from disclosure import coverage as disclosure_coverage
from disclosure.coverage import RequestCoverage
from disclosure.services import request_file
from inferences.models import MAX_LABEL, VERSION_PATTERN, Inference
from inferences.services import inference_model_object, inferences_record
from inferences.services.intake import COVERAGE_REASONS
from tests.factories import (
    EmployerFactory,
    UserFactory,
    inference_model,
    opt_in_purposes,
    student_who_accepted,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/inferences"


@pytest.fixture
def purposes():
    return opt_in_purposes()


@pytest.fixture
def model(purposes):
    return inference_model(purpose=purposes[0])


@pytest.fixture
def pipeline():
    return api_key_create(name="Analytics pipeline", scopes=["inferences:write"])


@pytest.fixture
def key(pipeline):
    return pipeline[1]


@pytest.fixture
def employer():
    return EmployerFactory()


@pytest.fixture
def granted(purposes, employer):
    """A student who granted the model's purpose (behaviour analysis) for the employer."""
    student, _version = student_who_accepted(*purposes)
    consent_grant(student=student, employer=employer, purpose=purposes[0])
    return student


def item(
    student,
    employer,
    *,
    id=None,
    model="decline_likelihood",
    version="1.0",
    output=72,
    at=None,
    **extra,
):
    at = at or timezone.now() - timedelta(seconds=1)
    return {
        "id": id or f"inf-{uuid.uuid4()}",
        "student": str(student.public_id),
        "model": model,
        "model_version": version,
        "employer": employer.pk,
        "output": output,
        "made_at": at.isoformat(),
        "input_from": (at - timedelta(days=30)).isoformat(),
        "input_to": at.isoformat(),
        **extra,
    }


def post(client, body, key, **headers):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(
        URL,
        data,
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}", **headers},
    )


def results(response):
    assert response.status_code == 200, response.content
    assert_documented(response.json())
    return [
        (r["result"], r["status"], r.get("error", {}).get("code"))
        for r in response.json()["results"]
    ]


def assert_documented(body):
    schema = {
        "$ref": "#/components/schemas/InferencesResponse",
        "components": OPENAPI["components"],
    }
    errors = list(Draft202012Validator(schema).iter_errors(body))
    assert not errors, [e.message for e in errors]


def record(client, items):
    """The service, as the API calls it."""
    return inferences_record(
        client=client,
        items=inference_items({"inferences": items}),
        coverage_for=RequestCoverage.of_students,
    )


# --- recorded ---------------------------------------------------------------------------------


def test_a_result_with_a_live_grant_is_recorded_with_its_sender_and_id(
    client, pipeline, purposes, model, employer, granted
):
    sender, key = pipeline
    consent_grant(student=granted, employer=employer, purpose=purposes[1])  # to hand it over
    handed = timezone.now()
    body = {"inferences": [item(granted, employer, id="inf-1", handed_over_at=handed.isoformat())]}

    response = post(client, body, key)

    assert results(response) == [("stored", 201, None)]
    assert (response.json()["stored"], response.json()["refused"]) == (1, 0)
    row = Inference.objects.get()
    assert (row.student, row.model, row.employer, row.output_number, row.output_label) == (
        granted,
        model,
        employer,
        72.0,
        "",
    )
    assert (row.sender, row.source_id, row.handed_over) == (sender, "inf-1", True)
    assert row.input_from < row.input_to <= row.made_at


def test_a_retried_batch_is_a_duplicate_and_other_content_under_an_id_a_conflict(
    client, key, model, employer, granted
):
    first = item(granted, employer, id="inf-1")
    assert results(post(client, {"inferences": [first]}, key)) == [("stored", 201, None)]

    again = post(client, {"inferences": [first, {**first, "output": 10}]}, key)

    assert results(again) == [("duplicate", 200, None), ("refused", 409, "conflict")]
    assert Inference.objects.count() == 1


def test_an_idempotency_key_replays_the_first_answer(client, key, model, employer, granted):
    body = {"inferences": [item(granted, employer)]}
    first = post(client, body, key, **{"Idempotency-Key": "batch-1"})
    replay = post(client, body, key, **{"Idempotency-Key": "batch-1"})

    assert replay.content == first.content
    assert replay["Idempotent-Replayed"] == "true"
    reused = post(client, {"inferences": []}, key, **{"Idempotency-Key": "batch-1"})
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert Inference.objects.count() == 1


def test_a_label_model_takes_only_its_labels(client, key, purposes, employer, granted):
    inference_model(
        purpose=purposes[0],
        code="interest_level",
        output_kind="label",
        labels="A\nB\nC",
        number_min=None,
        number_max=None,
    )
    body = {
        "inferences": [
            item(granted, employer, model="interest_level", output="B"),
            item(granted, employer, model="interest_level", output="Z"),
            item(granted, employer, model="interest_level", output=2),
        ]
    }
    assert results(post(client, body, key)) == [
        ("stored", 201, None),
        ("refused", 422, "invalid_output"),
        ("refused", 422, "invalid_output"),
    ]
    assert Inference.objects.get().output == "B"


# --- refused: consent ---------------------------------------------------------------------------


def test_without_a_grant_a_result_is_refused_409_by_the_service_and_over_http(
    client, pipeline, key, purposes, model, employer
):
    student, _version = student_who_accepted(*purposes)
    # A grant of the other purpose, or for another employer, is not the model's.
    consent_grant(student=student, employer=employer, purpose=purposes[1])
    consent_grant(student=student, employer=EmployerFactory(), purpose=purposes[0])

    [outcome] = record(pipeline[0], [item(student, employer)])
    assert (outcome.result, outcome.status, outcome.code) == ("refused", 409, "no_valid_grant")
    assert results(post(client, {"inferences": [item(student, employer)]}, key)) == [
        ("refused", 409, "no_valid_grant")
    ]
    assert not Inference.objects.exists()


def test_after_a_withdrawal_the_next_result_is_refused_by_the_service_and_over_http(
    client, pipeline, key, purposes, model, employer, granted
):
    assert results(post(client, {"inferences": [item(granted, employer)]}, key))[0][0] == "stored"

    consent_withdraw(student=granted, employer=employer, purpose=purposes[0])

    [outcome] = record(pipeline[0], [item(granted, employer)])
    assert (outcome.status, outcome.code) == (409, "no_valid_grant")
    # Even one made before the withdrawal and sent late: processing stopped with it.
    late = item(granted, employer, at=timezone.now() - timedelta(minutes=1))
    assert results(post(client, {"inferences": [late]}, key)) == [
        ("refused", 409, "no_valid_grant")
    ]
    assert Inference.objects.count() == 1


def test_a_result_made_before_the_grant_is_refused(client, key, model, employer, granted):
    before = item(granted, employer, at=timezone.now() - timedelta(days=2))
    assert results(post(client, {"inferences": [before]}, key)) == [
        ("refused", 409, "before_grant")
    ]


# --- refused: the student's objection and requests -----------------------------------------------


def test_after_an_objection_the_next_result_by_any_version_is_refused_409(
    client, key, purposes, model, employer, granted
):
    inference_model(purpose=purposes[0], version="2.0")
    inference_model_object(student=granted, model=model)

    body = {"inferences": [item(granted, employer), item(granted, employer, version="2.0")]}
    response = post(client, body, key)

    assert results(response) == [("refused", 409, "objected")] * 2
    assert "異議" in response.json()["results"][0]["error"]["message"]
    assert not Inference.objects.exists()


def test_a_deletion_refuses_what_was_made_before_it_422_and_the_grant_then_409(
    client, key, model, employer, granted, django_capture_on_commit_callbacks
):
    made = timezone.now() - timedelta(seconds=30)
    with django_capture_on_commit_callbacks(execute=True):
        request_file(student=granted, kind="deletion")

    after = timezone.now() + timedelta(seconds=1)
    body = {"inferences": [item(granted, employer, at=made), item(granted, employer, at=after)]}
    assert results(post(client, body, key)) == [
        ("refused", 422, "erased_by_request"),
        ("refused", 409, "no_valid_grant"),  # the deletion withdrew the grant
    ]


def test_after_a_cessation_nothing_more_is_kept_until_the_student_grants_again(
    client, key, purposes, model, employer, granted, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request_file(student=granted, kind="cessation")
    assert results(post(client, {"inferences": [item(granted, employer)]}, key)) == [
        ("refused", 422, "stopped_by_request")
    ]

    consent_grant(student=granted, employer=employer, purpose=purposes[0])

    later = item(granted, employer, at=timezone.now() + timedelta(seconds=1))
    assert results(post(client, {"inferences": [later]}, key)) == [("stored", 201, None)]


def test_the_coverage_reasons_are_the_requests_own():
    assert set(COVERAGE_REASONS) == {
        disclosure_coverage.DELETED,
        disclosure_coverage.CEASED,
        disclosure_coverage.CEASED_SINCE,
    }


# --- refused: what only the register can say ------------------------------------------------------


def test_unknown_and_inactive_models_students_employers_and_future_times_are_refused_per_result(
    client, key, purposes, model, employer, granted
):
    inference_model(purpose=purposes[0], version="3.0-draft", active=False)
    recent = inference_model(
        purpose=purposes[0], version="4.0", activated_at=timezone.now() - timedelta(hours=1)
    )
    assert recent.is_active
    future = timezone.now() + timedelta(hours=1)
    body = {
        "inferences": [
            item(UserFactory(), employer),
            item(granted, employer, version="9.9"),
            item(granted, employer, version="3.0-draft"),
            item(granted, employer, version="4.0", at=timezone.now() - timedelta(days=1)),
            {**item(granted, employer), "employer": 2**62},
            item(granted, employer, at=future),
            item(granted, employer, output=101),
        ]
    }
    assert [code for _r, _s, code in results(post(client, body, key))] == [
        "no_valid_grant",  # a real student who granted nothing
        "unknown_model",
        "model_not_active",
        "model_not_active",  # made before its version was active
        "unknown_employer",
        "future",
        "invalid_output",
    ]
    body = {"inferences": [{**item(granted, employer), "student": str(uuid.uuid4())}]}
    assert results(post(client, body, key)) == [("refused", 422, "unknown_student")]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"output": True}, "inferences[0].output"),
        ({"output": ""}, "inferences[0].output"),
        ({"output": "x" * (MAX_OUTPUT_LABEL + 1)}, "inferences[0].output"),
        ({"model": "decline likelihood"}, "inferences[0].model"),
        ({"model_version": "1.0\u0000"}, "inferences[0].model_version"),
        ({"made_at": "2026-04-01T10:00:00"}, "inferences[0].made_at"),
        ({"input_from": "0001-01-01T00:00:00+09:00"}, "inferences[0].input_from"),
        ({"input_to": None}, "inferences[0].input_to"),
        ({"handed_over_at": "2000-01-01T00:00:00Z"}, "inferences[0].handed_over_at"),
    ],
)
def test_a_result_of_the_wrong_shape_fails_the_whole_batch(
    client, key, model, employer, granted, change, field
):
    body = {"inferences": [{**item(granted, employer), **change}, item(granted, employer)]}
    response = post(client, body, key)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert not Inference.objects.exists()


def test_times_out_of_order_fail_the_batch(client, key, model, employer, granted):
    now = timezone.now()
    for change, field in [
        (
            {"input_from": now.isoformat(), "input_to": (now - timedelta(1)).isoformat()},
            "input_from",
        ),
        ({"input_to": (now + timedelta(1)).isoformat()}, "input_to"),
    ]:
        response = post(
            client, {"inferences": [{**item(granted, employer, at=now), **change}]}, key
        )
        assert response.json()["error"]["field"] == f"inferences[0].{field}"


def test_1001_results_are_413(client, key, model, employer, granted):
    body = {"inferences": [item(granted, employer)] * 1001}
    assert post(client, body, key).status_code == 413


# --- keys -------------------------------------------------------------------------------------


def test_only_a_pipeline_key_with_the_scope_may_send_inferences(client, model, employer, granted):
    consents_key = api_key_create(name="Pipeline, consents only")[1]
    response = post(client, {"inferences": [item(granted, employer)]}, consents_key)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "missing_scope"
    with pytest.raises(ScopeRefused):
        api_key_create(name="HR", employer=employer, scopes=["inferences:write"])


# --- what it costs --------------------------------------------------------------------------------


def test_1000_results_cost_a_bounded_number_of_queries(
    client, key, purposes, model, django_assert_max_num_queries
):
    employers = [EmployerFactory() for _ in range(4)]
    students = []
    for _ in range(50):
        student, _version = student_who_accepted(*purposes)
        for employer in employers[:3]:
            consent_grant(student=student, employer=employer, purpose=purposes[0])
        # The first company may receive the results: those made for it are handed over.
        consent_grant(student=student, employer=employers[0], purpose=purposes[1])
        students.append(student)
    inference_model_object(student=students[0], model=model)
    at = timezone.now() - timedelta(seconds=1)
    body = {
        "inferences": [
            item(
                students[i % 50],
                employers[i % 4],
                id=f"inf-{i}",
                output=i % 101,
                at=at,
                handed_over_at=at.isoformat() if i % 4 == 0 else None,
            )
            for i in range(1000)
        ]
    }

    # 15 on PostgreSQL (with the hand-overs' grants and their records of provision); SQLite
    # splits each insert by its limit on a statement's parameters.
    with django_assert_max_num_queries(INTAKE_QUERIES[connection.vendor]):
        response = post(client, body, key)

    counts = response.json()
    assert (counts["stored"], counts["refused"]) == (730, 270)  # no grant: 250; objected: 20
    assert Inference.objects.count() == 730
    # 250 handed over to the first company, less the 10 objected to: each with its record.
    assert Provision.objects.count() == 240
    assert Inference.objects.filter(provision__isnull=False).count() == 240


INTAKE_QUERIES = {"postgresql": 15, "sqlite": 26}


# --- the document -------------------------------------------------------------------------------


def test_the_documented_refusals_are_the_services_and_the_models_limits_the_payloads():
    documented = OPENAPI["components"]["schemas"]["InferenceResult"]["properties"]["error"]
    assert documented["properties"]["code"]["enum"] == list(REFUSALS)
    assert MAX_OUTPUT_LABEL == MAX_LABEL
    pattern = OPENAPI["components"]["schemas"]["Inference"]["properties"]["model_version"]
    assert pattern["pattern"] == f"^{VERSION_PATTERN}$"
    from inferences.services import intake

    source = open(intake.__file__, encoding="utf-8").read()
    for code, status in REFUSALS.items():
        assert f'"{code}"' in source, code
        assert status in (409, 422)
