"""The hand-kept OpenAPI document: valid, complete, and true to what the views answer."""

import json
import uuid

import pytest
from jsonschema import Draft202012Validator

from consent.api import views
from consent.api.keys import api_key_create
from consent.services import consent_grant
from tests.factories import EmployerFactory, PurposeFactory, UserFactory, accept, published_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def document(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)


def assert_matches(document, schema_name, instance):
    """Validate `instance` against components/schemas/<schema_name> of the document."""
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    errors = list(validator.iter_errors(instance))
    assert not errors, [e.message for e in errors]


def test_the_document_is_public_and_lists_the_three_endpoints(document):
    assert document["openapi"].startswith("3.1")
    assert {"/consents/check", "/provisions", "/consents/changes"} <= set(document["paths"])
    assert document["servers"] == [{"url": "/api/v1"}]
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_every_operation_documents_its_errors_in_the_error_schema(document):
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path == "/openapi.json":
                continue
            codes = set(operation["responses"])
            assert {"401", "405", "429", "500"} <= codes, (path, method)
            assert "200" in codes or "201" in codes
    check = document["paths"]["/consents/check"]["post"]["responses"]
    assert {"400", "413", "422"} <= set(check)
    provisions = document["paths"]["/provisions"]["post"]["responses"]
    assert {"201", "403", "404", "409", "422"} <= set(provisions)


def test_the_document_is_valid_openapi(document):
    import openapi_spec_validator

    openapi_spec_validator.validate(document)


def test_real_answers_match_the_documented_schemas(client, document, monkeypatch):
    monkeypatch.setattr(views, "CHANGES_SETTLE", views.CHANGES_SETTLE * 0)
    analysis = PurposeFactory(code="behaviour_analysis", requires_opt_in=True)
    version = published_version(purposes=[PurposeFactory(code="account"), analysis])
    student = UserFactory(password=None)
    accept(student, version)
    employer = EmployerFactory()
    consent_grant(student=student, employer=employer, purpose=analysis)
    key = api_key_create(name="Analytics pipeline")[1]
    headers = {"Authorization": f"Bearer {key}"}

    def post(url, body):
        return client.post(url, body, content_type="application/json", headers=headers)

    checks = [
        {"student": str(student.public_id), "employer": employer.pk, "purpose": code}
        for code in ("behaviour_analysis", "nope")
    ] + [{"student": str(uuid.uuid4()), "employer": employer.pk, "purpose": "nope"}]
    assert_matches(document, "CheckRequest", {"checks": checks})
    answer = post("/api/v1/consents/check", {"checks": checks})
    assert_matches(document, "CheckResponse", answer.json())

    body = {
        "student": str(student.public_id),
        "employer": employer.pk,
        "purpose": "behaviour_analysis",
        "data_items": "scores",
        "reference": "r-1",
    }
    assert_matches(document, "ProvisionRequest", body)
    assert_matches(document, "Provision", post("/api/v1/provisions", body).json())

    changes = client.get("/api/v1/consents/changes", headers=headers)
    assert changes.json()["changes"]
    assert_matches(document, "ChangesResponse", changes.json())

    errors = [
        client.get("/api/v1/consents/check"),
        post("/api/v1/consents/check", {"checks": [{}]}),
        post("/api/v1/provisions", {**body, "purpose": "nope", "reference": ""}),
        client.get("/api/v1/nothing-here"),
    ]
    for error in errors:
        assert error.status_code >= 400
        assert_matches(document, "Error", error.json())
