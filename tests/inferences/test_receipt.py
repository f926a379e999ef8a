"""The Kantara receipt of a grant names the models it allows: those serving the purpose that
were active when the grant was made, as the student's page names them."""

import io
import json
from datetime import timedelta

import jsonschema
import pytest
from django.urls import reverse
from django.utils import timezone
from pypdf import PdfReader

from consent.models import ConsentEvent
from consent.receipts import SCHEMA_PATH
from consent.services import consent_withdraw
from tests.consent.test_receipts import SHARED_SCHEMA
from tests.factories import inference_model

pytestmark = pytest.mark.django_db


def receipt(client, student, event) -> dict:
    client.force_login(student)
    response = client.get(reverse("consent:event_receipt_json", args=[event.receipt_id]))
    assert response.status_code == 200
    body = json.loads(response.content)
    for schema in (SCHEMA_PATH, SHARED_SCHEMA):
        jsonschema.validate(body, json.loads(schema.read_text()))
    return body


def grant_of(scored, employer) -> ConsentEvent:
    return scored.student.consent_events.get(
        employer=employer, purpose=scored.analysis, action="grant"
    )


def test_a_grants_receipt_names_the_models_active_when_it_was_made(client, scored):
    # A draft, and a version activated after the grant: neither was allowed by it.
    inference_model(purpose=scored.analysis, version="3.0-draft", active=False)
    inference_model(
        purpose=scored.analysis, version="2.0", activated_at=timezone.now() + timedelta(days=1)
    )

    body = receipt(client, scored.student, grant_of(scored, scored.aoba))

    [purpose] = body["services"][0]["purposes"]
    assert purpose["inferenceModels"] == [
        {
            "code": "decline_likelihood",
            "version": "1.0",
            "name": "内定辞退率の予測",
            "predicts": scored.model.predicts_ja,
            "neverUsedFor": "合否の判断には決して使わない",
        }
    ]


def test_the_english_receipt_names_them_in_english(client, scored):
    event = grant_of(scored, scored.kaede)
    ConsentEvent.objects.filter(pk=event.pk).update(language="en")
    event.refresh_from_db()

    [purpose] = receipt(client, scored.student, event)["services"][0]["purposes"]

    assert [m["name"] for m in purpose["inferenceModels"]] == ["Decline likelihood"]
    assert purpose["inferenceModels"][0]["neverUsedFor"] == "Never in a pass/fail decision"


def test_a_withdrawals_receipt_names_no_models(client, scored):
    event = consent_withdraw(student=scored.student, employer=scored.aoba, purpose=scored.analysis)

    [purpose] = receipt(client, scored.student, event)["services"][0]["purposes"]

    assert "inferenceModels" not in purpose


def test_the_pdf_receipt_of_a_grant_names_the_models_too(client, scored):
    event = grant_of(scored, scored.aoba)
    client.force_login(scored.student)

    pdf = client.get(reverse("consent:event_receipt_pdf", args=[event.receipt_id])).content

    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "内定辞退率の予測" in text and "合否の判断には決して使わない" in text
