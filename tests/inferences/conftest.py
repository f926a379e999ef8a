"""A student with results of the decline-likelihood model, made through the service as the
pipeline's would be: one handed over to the company, one not, and one for a second company."""

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from consent.api.keys import api_key_create
from consent.api.payloads import inference_items
from consent.services import consent_grant
from disclosure.coverage import RequestCoverage
from inferences.services import inferences_record
from tests.factories import EmployerFactory, inference_model, opt_in_purposes, student_who_accepted


def send(client, student, employer, *, id, output, at, handed=False, model="decline_likelihood"):
    """One result sent by `client` through the service the API calls; its outcome."""
    body = {
        "inferences": [
            {
                "id": id,
                "student": str(student.public_id),
                "model": model,
                "model_version": "1.0",
                "employer": employer.pk,
                "output": output,
                "made_at": at.isoformat(),
                "input_from": (at - timedelta(days=30)).isoformat(),
                "input_to": at.isoformat(),
                "handed_over_at": at.isoformat() if handed else None,
            }
        ]
    }
    [outcome] = inferences_record(
        client=client, items=inference_items(body), coverage_for=RequestCoverage.of_students
    )
    return outcome


@pytest.fixture
def scored():
    analysis, provision = opt_in_purposes()
    model = inference_model(purpose=analysis)
    student, _version = student_who_accepted(analysis, provision, email="hanako@example.jp")
    aoba = EmployerFactory(name="株式会社青葉", name_en="Aoba KK", contact_email="hr@aoba.example")
    kaede = EmployerFactory(name="株式会社かえで", name_en="Kaede KK")
    for employer in (aoba, kaede):
        consent_grant(student=student, employer=employer, purpose=analysis)
    # Results are handed only to a company the student lets receive them.
    consent_grant(student=student, employer=aoba, purpose=provision)
    pipeline = api_key_create(name="Analytics pipeline", scopes=["inferences:write"])[0]
    now = timezone.now()
    outcomes = [
        send(
            pipeline, student, aoba, id="r-1", output=81, at=now - timedelta(seconds=3), handed=True
        ),
        send(pipeline, student, aoba, id="r-2", output=64, at=now - timedelta(seconds=2)),
        send(pipeline, student, kaede, id="r-3", output=12, at=now - timedelta(seconds=1)),
    ]
    assert [o.result for o in outcomes] == ["stored"] * 3, outcomes
    return SimpleNamespace(
        student=student,
        model=model,
        analysis=analysis,
        provision=provision,
        aoba=aoba,
        kaede=kaede,
        pipeline=pipeline,
        results={i.source_id: i for i in student.inferences.all()},
    )
