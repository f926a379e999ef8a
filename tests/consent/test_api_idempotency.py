"""POST /api/v1/provisions with an Idempotency-Key: a retry is answered as the first call was
and records nothing twice; keys are per sender; the retention job forgets them."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from backoffice.retention import idempotency_keys_expire
from consent.api.keys import api_key_create
from consent.models import IdempotencyKey, Provision
from consent.services import consent_grant
from tests.factories import EmployerFactory, PurposeFactory, UserFactory, accept, published_version

pytestmark = pytest.mark.django_db

PROVISIONS = "/api/v1/provisions"


@pytest.fixture
def world():
    analysis = PurposeFactory(code="behaviour_analysis", requires_opt_in=True)
    version = published_version(purposes=[PurposeFactory(code="account"), analysis])
    student = UserFactory(password=None)
    accept(student, version)
    employer = EmployerFactory()
    consent_grant(student=student, employer=employer, purpose=analysis)

    class World:
        pass

    w = World()
    w.student, w.employer, w.analysis = student, employer, analysis
    w.body = {
        "student": str(student.public_id),
        "employer": employer.pk,
        "purpose": "behaviour_analysis",
        "data_items": "関心度スコア",
    }
    w.key = api_key_create(name="Analytics pipeline")[1]
    return w


def post(client, body, key, idempotency_key=None):
    headers = {"Authorization": f"Bearer {key}"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post(PROVISIONS, data, content_type="application/json", headers=headers)


def test_a_retry_with_the_same_key_gets_the_first_answer_and_records_nothing(client, world):
    first = post(client, world.body, world.key, "order-1")
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first

    # The same JSON spaced and ordered otherwise is the same request.
    respaced = json.dumps(dict(reversed(list(world.body.items()))), indent=2)
    retry = post(client, respaced, world.key, "order-1")

    assert retry.status_code == 201
    assert retry.content == first.content
    assert retry["Idempotent-Replayed"] == "true"
    assert Provision.objects.count() == 1


def test_the_same_key_with_another_body_is_422_and_records_nothing(client, world):
    post(client, world.body, world.key, "order-1")

    response = post(client, {**world.body, "data_items": "別の項目"}, world.key, "order-1")

    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("idempotency_key_reused", "Idempotency-Key")
    assert Provision.objects.count() == 1


def test_without_a_key_each_call_records(client, world):
    post(client, world.body, world.key)
    post(client, world.body, world.key)
    assert Provision.objects.count() == 2
    assert not IdempotencyKey.objects.exists()


def test_keys_are_per_sender(client, world):
    other_key = api_key_create(name="Second pipeline")[1]

    assert post(client, world.body, world.key, "k").status_code == 201
    assert post(client, world.body, other_key, "k").status_code == 201

    assert Provision.objects.count() == 2


def test_a_refusal_keeps_nothing_so_the_key_works_once_the_cause_is_fixed(client, world):
    other = EmployerFactory()
    body = {**world.body, "employer": other.pk}

    refused = post(client, body, world.key, "order-2")
    assert refused.status_code == 409
    assert not IdempotencyKey.objects.exists()

    consent_grant(student=world.student, employer=other, purpose=world.analysis)
    assert post(client, body, world.key, "order-2").status_code == 201
    assert post(client, body, world.key, "order-2").status_code == 201
    assert Provision.objects.filter(employer=other).count() == 1


@pytest.mark.parametrize("key", ["", "ä", "a b", "x" * 256])
def test_a_malformed_key_is_400(client, world, key):
    response = post(client, world.body, world.key, key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_idempotency_key"
    assert not Provision.objects.exists()


def test_the_retention_job_forgets_keys_after_their_period(client, world, settings):
    post(client, world.body, world.key, "old")
    post(client, world.body, world.key, "new")
    IdempotencyKey.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(days=settings.RETENTION_IDEMPOTENCY_KEY_DAYS, hours=1)
    )

    assert idempotency_keys_expire() == 1

    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
    # Forgotten, the old key records anew.
    assert post(client, world.body, world.key, "old").status_code == 201
    assert Provision.objects.count() == 3
