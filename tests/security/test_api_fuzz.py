"""The consent API fuzzed through its own OpenAPI document (schemathesis), and its scopes.

Schemathesis reads `/api/v1/openapi.json` from the real WSGI application and generates
requests for every operation, valid ones (positive) and ones that break the document's
schemas (negative), sent with real keys made by `api_key_create`: the pipeline's, which
sees every employer, and one employer's, which must see only its own rows. The data is
real too (students who accepted a version, grants, withdrawals, a lapse, provisions across
three employers), and generated requests are steered onto it now and then, so that the
fuzzer reaches the success paths and not only the 4xx ones.

Every answer must: not be a 5xx; have a status the document lists for the operation; have
the documented content type, headers and schema; and, with the employer's key, reveal
nothing about another employer (`employer_scope_respected`). Negative cases must be
refused with a 4xx.

Deterministic (Hypothesis derandomized, no example database) and bounded by MAX_EXAMPLES,
so the file takes about a minute on SQLite and on PostgreSQL; each test records how many
cases it ran (`schemathesis_cases` in the JUnit properties, and a line in the terminal).
"""

import json
import uuid
from datetime import timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from consent.api import views as api_views
from consent.api.keys import api_key_create, api_key_revoke
from consent.models import Consent, Provision
from consent.services import consent_grant, consent_withdraw, provision_record
from portal.wsgi import application
from tests.factories import EmployerFactory, PurposeFactory, UserFactory, accept, published_version

pytestmark = pytest.mark.django_db

# Cases per (operation, scope, mode). Chosen so that the whole file runs in about a minute
# on the 2-core CI machine, on either database; raise them locally for a longer hunt.
MAX_EXAMPLES = {GenerationMode.POSITIVE: 60, GenerationMode.NEGATIVE: 40}
OPERATIONS = ["consentsCheck", "provisionsRecord", "consentsChanges", "openapi"]

CHECK = "/api/v1/consents/check"
PROVISIONS = "/api/v1/provisions"
CHANGES = "/api/v1/consents/changes"


# --- the world the fuzzer runs in ----------------------------------------------------------


class World:
    """Real rows across three employers, and the keys to ask about them."""

    def __init__(self):
        analysis = PurposeFactory(code="behaviour_analysis", requires_opt_in=True)
        provision = PurposeFactory(code="provision_to_employer", requires_opt_in=True)
        account = PurposeFactory(code="account")
        version = published_version(label="2019.03", purposes=[account, analysis, provision])
        narrower = published_version(label="2019.04", purposes=[account, analysis])
        self.own, self.other, self.third = EmployerFactory(), EmployerFactory(), EmployerFactory()
        self.employers = [self.own, self.other, self.third]
        self.students = [UserFactory(password=None) for _ in range(6)]
        for student in self.students:
            accept(student, version)
        purposes = [analysis, provision]
        # Each student holds a different mix of grants, so that every answer occurs.
        for index, student in enumerate(self.students):
            for offset, employer in enumerate(self.employers):
                if (index + offset) % 3 == 2:
                    continue
                for purpose in purposes[: 1 + (index + offset) % 2]:
                    consent_grant(student=student, employer=employer, purpose=purpose)
        consent_withdraw(student=self.students[0], employer=self.other, purpose=analysis)
        consent_withdraw(student=self.students[1], employer=self.own, purpose=analysis)
        # A lapse: the newest version this student accepted drops provision_to_employer.
        accept(self.students[2], narrower)
        for student in self.students[3:]:
            for employer in self.employers:
                if employer_grants(student, employer, analysis):
                    provision_record(
                        student=student,
                        employer=employer,
                        purpose=analysis,
                        data_items="閲覧履歴の分析結果（関心度スコア）",
                    )
        self.granted = [
            {
                "student": str(c.student.public_id),
                "employer": c.employer_id,
                "purpose": c.purpose.code,
            }
            for c in Consent.objects.filter(granted=True).select_related("student", "purpose")
        ]
        self.granted_own = [g for g in self.granted if g["employer"] == self.own.pk]
        self.codes = ["behaviour_analysis", "provision_to_employer", "account", "no_such_purpose"]
        self.public_ids = [str(s.public_id) for s in self.students] + [str(uuid.uuid4())]
        self.pipeline, self.pipeline_key = api_key_create(name="Analytics pipeline")
        self.employer_client, self.employer_key = api_key_create(
            name="株式会社テスト HR", employer=self.own
        )
        self.other_key = api_key_create(name="Other HR", employer=self.other)[1]
        self.revoked_key = api_key_create(name="Old pipeline")[1]
        api_key_revoke(prefix_or_key=self.revoked_key)

    def key(self, scope: str) -> str:
        return self.pipeline_key if scope == "pipeline" else self.employer_key


def employer_grants(student, employer, purpose) -> bool:
    return student.consents.filter(employer=employer, purpose=purpose, granted=True).exists()


@pytest.fixture
def world(settings, monkeypatch):
    # Hundreds of requests a minute from one key are the point here, not abuse.
    settings.API_RATE_LIMIT_PER_MINUTE = 1_000_000
    # The feed holds events back for a few seconds; the fuzzer must see this world's events.
    monkeypatch.setattr(api_views, "CHANGES_SETTLE", timedelta(0))
    return World()


# What a request that breaks the document may be answered. 413 is the documented answer
# to more than 1,000 checks (maxItems); a 5xx is never right, whatever was sent.
REFUSALS = ["400", "401", "403", "404", "405", "409", "413", "415", "422", "429"]
# What a request the document calls valid may be answered: a check or a page of the feed
# always succeeds; a provision may still be refused for what a schema cannot say (another
# employer, an unknown student, no grant, a date after now: see `valid_provision_refusals`).
CONFIG = {
    "checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}},
    "operations": [
        {
            "include-operation-id": operation_id,
            "checks": {"positive_data_acceptance": {"expected-statuses": statuses}},
        }
        for operation_id, statuses in [
            ("consentsCheck", ["200"]),
            ("consentsChanges", ["200"]),
            ("openapi", ["200"]),
            ("provisionsRecord", ["200", "201", "403", "404", "409", "422"]),
        ]
    ],
}


@pytest.fixture
def in_process_requests():
    """Requests served by the WSGI application in this process, inside the test's
    transaction. Django closes the database connection at the start and end of every
    request; Django's own test client switches that off, and so must we, or the first
    request on PostgreSQL would close the connection that holds the test's data."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def schema(world, in_process_requests):
    config = schemathesis.Config.from_dict(CONFIG)
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application, config=config)


# --- the scope property, as a check on every answer -----------------------------------------


def employer_scope_check(employer_id: int):
    """A schemathesis check: an answer to this employer's key holds no other employer's row.

    Check results about another employer are `out_of_scope` with nothing else said (the
    same answer whether or not the student, the purpose or a grant exists), the changes
    feed lists only this employer's events, and a provision is recorded only for it.
    """

    def employer_scope_respected(ctx, response, case):
        if response.status_code >= 300:
            return None
        body = response.json()
        path = case.operation.path
        if path == "/consents/check":
            for result in body["results"]:
                if result["employer"] != employer_id:
                    leaked = (result["allowed"], result["reason"], result["basis"])
                    assert leaked == (False, "out_of_scope", None), result
        elif path == "/consents/changes":
            foreign = [c for c in body["changes"] if c["employer"] != employer_id]
            assert not foreign, f"another employer's changes: {foreign}"
        elif path == "/provisions":
            assert body["employer"] == employer_id, body
        return True

    return employer_scope_respected


# A provision the document calls valid may still be refused with 422 for the two date rules
# the document states in words (not after now; first not after last), and for nothing else.
DATE_FIELDS = {"provided_at", "first_provided_at"}


def valid_provision_refusals(ctx, response, case):
    if case.operation.path != "/provisions" or response.status_code != 422:
        return None
    error = response.json()["error"]
    assert error.get("field") in DATE_FIELDS, f"a documented-valid provision refused: {error}"
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


# --- steering generated requests onto real rows ---------------------------------------------


def steer(case, world: World, scope: str, data) -> None:
    """Now and then put real students, employers and purposes into a generated body or
    query, so that grants are found and provisions recorded; the rest stays generated."""
    body = case.body
    operation = case.operation.path
    if operation == "/consents/check" and isinstance(body, dict):
        checks = body.get("checks")
        if isinstance(checks, list):
            for item in checks:
                if isinstance(item, dict) and data.draw(st.booleans(), label="real triple"):
                    item.update(real_triple(world, data))
    elif operation == "/provisions" and isinstance(body, dict):
        choice = data.draw(st.integers(0, 3), label="provision")
        if choice == 1:
            body.update(real_triple(world, data))
        elif choice > 1:
            # A triple with a valid grant (the employer key's own, for that key): the
            # success path, and a repeated reference now and then.
            granted = world.granted if scope == "pipeline" else world.granted_own
            body.update(data.draw(st.sampled_from(granted), label="granted triple"))
        if choice and data.draw(st.booleans(), label="without dates"):
            body.pop("provided_at", None)
            body.pop("first_provided_at", None)
    elif operation == "/consents/changes" and isinstance(case.query, dict):
        if data.draw(st.booleans(), label="small cursor"):
            case.query["since"] = data.draw(st.integers(0, 40), label="cursor")


def real_triple(world: World, data) -> dict:
    return {
        "student": data.draw(st.sampled_from(world.public_ids), label="student"),
        "employer": data.draw(st.sampled_from([e.pk for e in world.employers]), label="employer"),
        "purpose": data.draw(st.sampled_from(world.codes), label="purpose"),
    }


# --- the fuzzing ---------------------------------------------------------------------------


def fuzz_params():
    for operation_id in OPERATIONS:
        for scope in ("pipeline", "employer"):
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                # The document itself takes no input, so nothing can break its schema.
                if operation_id != "openapi" or mode is GenerationMode.POSITIVE:
                    yield pytest.param(
                        operation_id, scope, mode, id=f"{operation_id}-{scope}-{mode}"
                    )


@pytest.mark.parametrize(("operation_id", "scope", "mode"), list(fuzz_params()))
def test_every_answer_is_documented_and_in_scope(
    world, schema, operation_id, scope, mode, capsys, record_property
):
    operation = schema.find_operation_by_id(operation_id)
    headers = {"Authorization": f"Bearer {world.key(scope)}"}
    checks = list(CHECKS)
    if scope == "employer":
        checks.append(employer_scope_check(world.own.pk))
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    else:
        checks += [positive_data_acceptance, valid_provision_refusals]
    seen = {"cases": 0, "statuses": {}}

    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @settings(
        max_examples=MAX_EXAMPLES[mode],
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case, data):
        if mode is GenerationMode.POSITIVE:
            steer(case, world, scope, data)
        response = case.call_and_validate(headers=headers, checks=checks)
        seen["cases"] += 1
        outcome = str(response.status_code)
        if response.status_code >= 400:
            outcome += " " + response.json()["error"]["code"]
        seen["statuses"][outcome] = seen["statuses"].get(outcome, 0) + 1

    fuzz()

    record_property("schemathesis_cases", seen["cases"])
    record_property("schemathesis_statuses", json.dumps(seen["statuses"], sort_keys=True))
    with capsys.disabled():
        print(
            f"\nschemathesis {operation_id} {scope} {mode}: {seen['cases']} cases, "
            f"statuses {dict(sorted(seen['statuses'].items()))}"
        )
    assert seen["cases"] > 0
    if mode is GenerationMode.POSITIVE and operation_id != "openapi":
        # Steered onto real rows, the fuzzer must have reached the success path.
        assert any(outcome.startswith("2") for outcome in seen["statuses"]), seen


def test_the_fuzzed_world_spans_employers_and_every_kind_of_row(world):
    # The fuzzer reaches success paths only if the world holds them.
    assert Provision.objects.values("employer").distinct().count() >= 2
    actions = set(world.students[0].consent_events.values_list("action", flat=True))
    assert {"grant", "withdraw"} <= actions
    assert world.students[2].consent_events.filter(action="lapse").exists()
