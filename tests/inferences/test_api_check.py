"""POST /api/v1/inferences/check: the pipeline asks, before it runs a model, whether a result
would be accepted now; the answer names the model's purpose and follows the intake's rules."""

import json
import uuid
from types import SimpleNamespace

import pytest
from django.utils import timezone

from consent.api.keys import api_key_create
from consent.api.openapi_inferences import CHECK_REASONS
from consent.services import consent_withdraw
from disclosure.services import request_file
from inferences.services import inference_model_object
from tests.factories import EmployerFactory
from tests.inferences.conftest import send

pytestmark = pytest.mark.django_db

URL = "/api/v1/inferences/check"


@pytest.fixture
def key(scored):
    return api_key_create(name="Models", scopes=["inferences:write"])[1]


def check(client, key, *triples):
    body = {
        "checks": [
            {"student": str(student.public_id), "employer": employer.pk, "model": model}
            for student, employer, model in triples
        ]
    }
    response = client.post(
        URL, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    assert response.status_code == 200, response.content
    return [(r["allowed"], r["reason"], r["purpose"]) for r in response.json()["results"]]


def test_a_granted_model_is_allowed_with_its_purpose_and_the_grant(client, scored, key):
    body = {
        "checks": [
            {
                "student": str(scored.student.public_id),
                "employer": scored.aoba.pk,
                "model": "decline_likelihood",
            }
        ]
    }
    response = client.post(
        URL, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )

    [result] = response.json()["results"]
    assert (result["allowed"], result["reason"]) == (True, "granted")
    assert result["purpose"] == scored.analysis.code
    grant = scored.student.consents.get(employer=scored.aoba, purpose=scored.analysis)
    assert result["basis"]["event_id"] == grant.event_id


def test_each_refusal_is_the_intakes(client, scored, key, django_capture_on_commit_callbacks):
    stranger = EmployerFactory()
    nobody = SimpleNamespace(public_id=uuid.uuid4())
    purpose = scored.analysis.code
    assert check(
        client,
        key,
        (scored.student, stranger, "decline_likelihood"),
        (scored.student, scored.aoba, "no_such_model"),
        (nobody, scored.aoba, "decline_likelihood"),
    ) == [
        (False, "no_valid_grant", purpose),
        (False, "unknown_model", None),
        (False, "unknown_student", purpose),
    ]

    consent_withdraw(student=scored.student, employer=scored.kaede, purpose=scored.analysis)
    assert check(client, key, (scored.student, scored.kaede, "decline_likelihood")) == [
        (False, "no_valid_grant", purpose)
    ]

    inference_model_object(student=scored.student, model=scored.model)
    assert check(client, key, (scored.student, scored.aoba, "decline_likelihood")) == [
        (False, "objected", purpose)
    ]
    # And the intake answers the same.
    refused = send(
        scored.pipeline, scored.student, scored.aoba, id="x", output=1, at=timezone.now()
    )
    assert refused.code == "objected"


def test_a_cessation_stops_the_model_as_it_stops_the_intake(
    client, scored, key, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        request_file(student=scored.student, kind="cessation")

    assert check(client, key, (scored.student, scored.aoba, "decline_likelihood")) == [
        (False, "stopped_by_request", scored.analysis.code)
    ]


def test_an_allowed_check_is_a_stored_result(client, scored, key):
    [(allowed, _reason, _purpose)] = check(
        client, key, (scored.student, scored.aoba, "decline_likelihood")
    )
    stored = send(scored.pipeline, scored.student, scored.aoba, id="y", output=5, at=timezone.now())

    assert allowed and stored.result == "stored"


def test_only_a_key_that_sends_inferences_may_check(client, scored):
    consents_key = api_key_create(name="Pipeline")[1]
    response = client.post(
        URL, "{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {consents_key}"
    )
    assert response.status_code == 403


def test_a_thousand_checks_cost_a_fixed_number_of_queries(
    client, scored, key, django_assert_max_num_queries
):
    triples = [
        (scored.student, scored.aoba if n % 2 else scored.kaede, "decline_likelihood")
        for n in range(1000)
    ]
    # The key, the rate limit, the students, models, employers, objections, grants and the
    # requests' coverage.
    with django_assert_max_num_queries(12):
        results = check(client, key, *triples)
    assert {r[1] for r in results} == {"granted"}


def test_the_documented_reasons_are_the_services():
    from inferences.services import checks

    source = open(checks.__file__, encoding="utf-8").read()
    assert all(f'"{reason}"' in source for reason in CHECK_REASONS)
