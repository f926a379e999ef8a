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


def test_the_documented_answers_are_the_services(document):
    from consent.api.openapi_requests import ANSWERS_BY_KIND as documented
    from disclosure.services import ANSWERS_BY_KIND

    assert documented == {str(kind): list(answers) for kind, answers in ANSWERS_BY_KIND.items()}
    requests = document["paths"]["/requests"]["get"]["responses"]
    assert {"200", "400", "401", "403", "405", "429", "500"} <= set(requests)
    answer = document["paths"]["/requests/{reference}/answer"]["post"]["responses"]
    assert {"200", "400", "403", "404", "409", "413", "422"} <= set(answer)


def test_real_request_answers_match_the_documented_schemas(
    client, document, monkeypatch, django_capture_on_commit_callbacks
):
    from disclosure import api as disclosure_api
    from disclosure.services import request_cancel, request_file
    from tests.factories import opt_in_purposes

    monkeypatch.setattr(disclosure_api, "REQUESTS_SETTLE", disclosure_api.REQUESTS_SETTLE * 0)
    analysis, provision = opt_in_purposes()
    version = published_version(purposes=[PurposeFactory(code="account"), analysis, provision])
    employer = EmployerFactory()
    requests = []
    for kind in ("deletion", "disclosure", "cessation"):
        student = UserFactory(password=None)
        accept(student, version)
        consent_grant(student=student, employer=employer, purpose=provision)
        requests.append(request_file(student=student, kind=kind))
    request_cancel(request=requests[2], reason="mistake")
    key = api_key_create(name="HR", employer=employer, scopes=["requests:read", "requests:answer"])[
        1
    ]
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "k-1"}

    def answer(reference, body):
        headers["Idempotency-Key"] = str(uuid.uuid4())
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                f"/api/v1/requests/{reference}/answer",
                body,
                content_type="application/json",
                headers=headers,
            )

    body = {"answer": "deleted", "answered_by": "HR", "attestation": True}
    assert_matches(document, "CompanyAnswerRequest", body)
    done = answer(requests[0].reference, body)
    assert done.status_code == 200
    assert_matches(document, "CompanyAnswerResponse", done.json())
    for conflict in (answer(requests[0].reference, body), answer(requests[2].reference, body)):
        assert conflict.status_code == 409
        assert_matches(document, "CompanyAnswerConflict", conflict.json())
        assert_matches(document, "Error", conflict.json())

    page = client.get("/api/v1/requests", {"status": "all", "limit": 2}, headers=headers)
    assert page.status_code == 200 and page.json()["has_more"]
    assert_matches(document, "CompanyRequestsPage", page.json())
    rest = client.get(
        "/api/v1/requests", {"status": "all", "cursor": page.json()["next"]}, headers=headers
    )
    assert_matches(document, "CompanyRequestsPage", rest.json())
    items = page.json()["requests"] + rest.json()["requests"]
    assert {i["status"] for i in items} == {"open", "answered", "closed"}
    # The documented examples are valid too.
    get = document["paths"]["/requests"]["get"]["responses"]["200"]
    assert_matches(document, "CompanyRequestsPage", get["content"]["application/json"]["example"])
    post = document["paths"]["/requests/{reference}/answer"]["post"]
    assert_matches(
        document,
        "CompanyAnswerResponse",
        post["responses"]["200"]["content"]["application/json"]["example"],
    )
    assert_matches(
        document,
        "CompanyAnswerRequest",
        post["requestBody"]["content"]["application/json"]["example"],
    )

    errors = [
        client.get("/api/v1/requests", {"status": "nope"}, headers=headers),
        client.get("/api/v1/requests", {"cursor": "forged"}, headers=headers),
        answer("R-000000-0000000000", body),
        answer(requests[1].reference, {"answer": "deleted", "answered_by": "HR"}),
        client.post("/api/v1/requests/R-1/answer", "{}", content_type="application/json"),
    ]
    for error in errors:
        assert error.status_code >= 400
        assert_matches(document, "Error", error.json())
