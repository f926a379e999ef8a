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
nothing about another employer (`employer_scope_respected`). A request the document calls
valid must succeed (checks, the feed) or be refused only for what a schema cannot say
(provisions: see CONFIG); a request that breaks the document must be refused with a 4xx.
Below the fuzzing, handmade requests pin down each fault it found, the scope rules and the
answers to bad keys.

Deterministic (Hypothesis derandomized, no example database) and bounded by MAX_EXAMPLES,
so the file takes about a minute on SQLite and on PostgreSQL; each test records how many
cases it ran and what they were answered (a line in the terminal, and the test suite's
properties in a `--junitxml` report).
"""

import json
import uuid
from datetime import timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
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
from consent.models import Consent, ConsentEvent, Provision
from consent.services import consent_grant, consent_withdraw, provision_record
from disclosure import api as disclosure_api
from disclosure.services import request_file
from inferences import api as inferences_api
from inferences.models import InferenceDispute
from portal.wsgi import application
from tests.factories import (
    EmployerFactory,
    InferenceFactory,
    PurposeFactory,
    UserFactory,
    accept,
    inference_model,
    published_version,
)
from tests.worlds import module_rows

pytestmark = pytest.mark.django_db

# Cases per (operation, scope, mode). Chosen so that the whole file runs in about a minute
# on the 2-core CI machine, on either database; raise them locally for a longer hunt.
MAX_EXAMPLES = {GenerationMode.POSITIVE: 100, GenerationMode.NEGATIVE: 60}
OPERATIONS = [
    "consentsCheck",
    "provisionsRecord",
    "consentsChanges",
    "activityRecord",
    "inferencesRecord",
    "inferencesCheck",
    "inferencesDisputes",
    "requestsList",
    "requestAnswer",
    "openapi",
]
# A company's own requests: only a company's key may hold their scopes.
EMPLOYER_ONLY = {"requestsList", "requestAnswer"}
# What the site itself sends: only its own keys may hold those scopes.
PIPELINE_ONLY = {"activityRecord", "inferencesRecord", "inferencesCheck"}

CHECK = "/api/v1/consents/check"
PROVISIONS = "/api/v1/provisions"
CHANGES = "/api/v1/consents/changes"
ACTIVITY = "/api/v1/activity"
INFERENCES = "/api/v1/inferences"
INFERENCES_CHECK = "/api/v1/inferences/check"
DISPUTES = "/api/v1/inferences/disputes"
REQUESTS = "/api/v1/requests"
ANSWER = "/api/v1/requests/R-260401-3F9A0C12BE/answer"


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
        consent_grant(student=self.students[2], employer=self.own, purpose=provision)
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
        # Students' requests passed on to the companies (their tasks left queued: no
        # worker runs here), every kind, for the requests endpoints to list and answer.
        self.requests = []
        for index in range(15):
            student = UserFactory(password=None)
            accept(student, version)
            for employer in (self.own, self.other) if index % 3 else (self.other,):
                consent_grant(student=student, employer=employer, purpose=provision)
            kind = ("deletion", "cessation", "disclosure")[index % 3]
            self.requests.append(request_file(student=student, kind=kind))
        self.own_references = {
            r.reference: r.kind for r in self.requests if r.tasks.filter(employer=self.own)
        }
        self.other_references = [
            r.reference for r in self.requests if r.reference not in self.own_references
        ]
        self.pipeline, self.pipeline_key = api_key_create(name="Analytics pipeline")
        self.employer_client, self.employer_key = api_key_create(
            name="株式会社テスト HR",
            employer=self.own,
            scopes=["consents", "requests:read", "requests:answer"],
        )
        self.other_key = api_key_create(name="Other HR", employer=self.other)[1]
        self.revoked_key = api_key_create(name="Old pipeline")[1]
        api_key_revoke(prefix_or_key=self.revoked_key)
        # The job site's key sends activity and nothing else (activity:write).
        self.site_key = api_key_create(name="Job site", scopes=["activity:write"])[1]
        # The pipeline's results: a registered model, sent with its own key.
        self.model = inference_model(purpose=analysis)
        self.inference_client, self.inference_key = api_key_create(
            name="Models", scopes=["inferences:write"]
        )
        # Disputed results for the disputes feed: one handed to this key's company, one made
        # for it and kept, one handed to another; each disputed, one answered.
        for index, (employer, handed) in enumerate(
            [(self.own, True), (self.own, False), (self.other, True)]
        ):
            result = InferenceFactory(
                student=self.students[index],
                model=self.model,
                employer=employer,
                sender=self.inference_client,
                handed_over_at=timezone.now() if handed else None,
            )
            dispute = InferenceDispute.objects.create(
                inference=result, student=result.student, statement="違う", language="ja"
            )
        InferenceDispute.objects.filter(pk=dispute.pk).update(
            answered_at=timezone.now(), outcome="upheld", answer="誤り"
        )

    def key(self, scope: str, operation_id: str = "") -> str:
        if operation_id == "activityRecord":
            return self.site_key
        if operation_id in ("inferencesRecord", "inferencesCheck"):
            return self.inference_key
        return self.pipeline_key if scope == "pipeline" else self.employer_key


def employer_grants(student, employer, purpose) -> bool:
    return student.consents.filter(employer=employer, purpose=purpose, granted=True).exists()


@pytest.fixture(scope="module")
def _world_rows(django_db_setup, django_db_blocker):
    """The world's rows, made once for the module (it took 0.75 s, and 108 tests each made
    it again): inside a transaction that is rolled back after the module's last test. Each
    test runs in a savepoint within it, as pytest-django nests it, so what one test changes
    is gone before the next; none of them changes the World object itself (tests/worlds.py)."""
    with module_rows(django_db_blocker):
        yield World()


@pytest.fixture
def world(_world_rows, settings, monkeypatch):
    # Hundreds of requests a minute from one key are the point here, not abuse.
    settings.API_RATE_LIMIT_PER_MINUTE = 1_000_000
    # The feed holds events back for a few seconds; the fuzzer must see this world's events.
    monkeypatch.setattr(api_views, "CHANGES_SETTLE", timedelta(0))
    monkeypatch.setattr(disclosure_api, "REQUESTS_SETTLE", timedelta(0))
    monkeypatch.setattr(inferences_api, "DISPUTES_SETTLE", timedelta(0))
    return _world_rows


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
            ("activityRecord", ["200"]),
            # The times' order, stated in words; a reused Idempotency-Key.
            ("inferencesRecord", ["200", "422"]),
            ("inferencesCheck", ["200"]),
            # A cursor is any string to the document, and only ours to the view.
            ("inferencesDisputes", ["200", "400"]),
            ("openapi", ["200"]),
            ("provisionsRecord", ["200", "201", "403", "404", "409", "422"]),
            # A cursor is any string to the document, and only ours to the view.
            ("requestsList", ["200", "400"]),
            # Unknown reference; answered or closed; a rule stated in words.
            ("requestAnswer", ["200", "404", "409", "422"]),
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


def employer_scope_check(employer_id: int, own_references):
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
        elif path == "/requests":
            foreign = [r for r in body["requests"] if r["reference"] not in own_references]
            assert not foreign, f"another employer's requests: {foreign}"
        elif path == "/requests/{reference}/answer":
            assert body["request"]["reference"] in own_references, body
        elif path == "/inferences/disputes":
            foreign = [
                c
                for c in body["changes"]
                if c["inference"]["employer"] != employer_id
                or c["inference"]["handed_over_at"] is None
            ]
            assert not foreign, f"disputes of results not handed to this employer: {foreign}"
        return True

    return employer_scope_respected


# A provision the document calls valid may still be refused with 422 for the two date rules
# the document states in words (not after now; first not after last), and for an
# Idempotency-Key the fuzzer happened to send before with another body; for nothing else.
DATE_FIELDS = {"provided_at", "first_provided_at", "Idempotency-Key"}


# And a documented-valid answer or list request may be refused only for what the document
# says in words: a cursor not given to this key; an answer that does not fit the request's
# kind, a statement or attestation its answer needs or refuses, a reused Idempotency-Key.
VALID_REQUESTS_REFUSALS = {
    ("/requests", 400): {"cursor"},
    ("/inferences/disputes", 400): {"cursor"},
    ("/requests/{reference}/answer", 422): {
        "answer",
        "statement",
        "attestation",
        "Idempotency-Key",
    },
}


def valid_requests_refusals(ctx, response, case):
    fields = VALID_REQUESTS_REFUSALS.get((case.operation.path, response.status_code))
    if fields is None:
        return None
    error = response.json()["error"]
    assert error.get("field") in fields, f"a documented-valid request refused: {error}"
    return True


# A batch of results the document calls valid may be refused whole only for the order of its
# times, which the document states in words, or a reused Idempotency-Key.
INFERENCE_ORDER_FIELDS = (".input_from", ".input_to", ".handed_over_at")


def valid_inference_refusals(ctx, response, case):
    if case.operation.path != "/inferences" or response.status_code != 422:
        return None
    field = response.json()["error"].get("field") or ""
    assert field == "Idempotency-Key" or field.endswith(INFERENCE_ORDER_FIELDS), (
        f"a documented-valid batch refused: {response.json()['error']}"
    )
    return True


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
        # A generated Idempotency-Key repeats across cases (and is then refused with another
        # body): now and then make it fresh, so the success path stays reachable.
        headers = case.headers or {}
        if "Idempotency-Key" in headers and data.draw(st.booleans(), label="fresh key"):
            headers["Idempotency-Key"] = str(uuid.uuid4())
    elif operation == "/activity" and isinstance(body, dict):
        # Real students, recent times: records stored, duplicated and refused.
        for item in body.get("records") or []:
            if isinstance(item, dict) and data.draw(st.booleans(), label="real record"):
                item["student"] = data.draw(st.sampled_from(world.public_ids), label="student")
                item["employer"] = data.draw(
                    st.sampled_from([None] + [e.pk for e in world.employers]), label="employer"
                )
                minutes = data.draw(st.integers(1, 60 * 24 * 30), label="minutes ago")
                item["occurred_at"] = (timezone.now() - timedelta(minutes=minutes)).isoformat()
    elif operation == "/inferences" and isinstance(body, dict):
        steer_inferences(case, world, data)
    elif operation == "/inferences/check" and isinstance(body, dict):
        for item in body.get("checks") or []:
            if isinstance(item, dict) and data.draw(st.booleans(), label="real check"):
                item.update(
                    student=data.draw(st.sampled_from(world.public_ids), label="student"),
                    employer=data.draw(
                        st.sampled_from([e.pk for e in world.employers]), label="employer"
                    ),
                    model=data.draw(st.sampled_from([world.model.code, "nope"]), label="model"),
                )
    elif operation == "/inferences/disputes" and isinstance(case.query, dict):
        if "cursor" in case.query and data.draw(st.booleans(), label="drop cursor"):
            del case.query["cursor"]
    elif operation == "/requests/{reference}/answer":
        steer_answer(case, world, data)
    elif operation == "/requests" and isinstance(case.query, dict):
        if "cursor" in case.query and data.draw(st.booleans(), label="drop cursor"):
            del case.query["cursor"]
    elif operation == "/consents/changes" and isinstance(case.query, dict):
        if data.draw(st.booleans(), label="small cursor"):
            case.query["since"] = data.draw(st.integers(0, 40), label="cursor")


def steer_inferences(case, world: World, data) -> None:
    """Now and then a result of the registered model about a real student and company, its
    times in order and recent: recorded, or refused for the student's grants."""
    for item in case.body.get("inferences") or []:
        if not isinstance(item, dict) or not data.draw(st.booleans(), label="real result"):
            continue
        minutes = data.draw(st.integers(0, 60 * 24 * 30), label="minutes ago")
        made = timezone.now() - timedelta(minutes=minutes)
        item.update(
            student=data.draw(st.sampled_from(world.public_ids), label="student"),
            employer=data.draw(st.sampled_from([e.pk for e in world.employers]), label="employer"),
            model=world.model.code,
            model_version=world.model.version,
            output=data.draw(st.integers(-10, 110), label="output"),
            made_at=made.isoformat(),
            input_from=(made - timedelta(days=30)).isoformat(),
            input_to=made.isoformat(),
            handed_over_at=data.draw(st.sampled_from([None, made.isoformat()]), label="handed"),
        )
    headers = case.headers or {}
    if "Idempotency-Key" in headers and data.draw(st.booleans(), label="fresh key"):
        headers["Idempotency-Key"] = str(uuid.uuid4())


FITTING = {
    "deletion": ["deleted", "held_none", "refused"],
    "cessation": ["stopped", "held_none", "refused"],
    "disclosure": ["disclosed", "held_none", "refused"],
}


def steer_answer(case, world: World, data) -> None:
    """Now and then the company's own request, with an answer that fits it and a fresh
    key: the success path (each request answers once; later ones are 409)."""
    if not data.draw(st.booleans(), label="real reference"):
        return
    own = sorted(world.own_references)
    reference = data.draw(st.sampled_from(own + world.other_references[:2]), label="reference")
    case.path_parameters["reference"] = reference
    headers = case.headers if case.headers is not None else {}
    headers["Idempotency-Key"] = str(uuid.uuid4())
    case.headers = headers
    kind = world.own_references.get(reference)
    if kind is None or not isinstance(case.body, dict):
        return
    if data.draw(st.booleans(), label="fitting answer"):
        answer = data.draw(st.sampled_from(FITTING[kind]), label="answer")
        case.body["answer"] = answer
        case.body["answered_by"] = "佐藤 花子, 人事部長"
        case.body["attestation"] = answer in ("deleted", "stopped")
        if answer in ("refused", "disclosed"):
            case.body["statement"] = "理由 / the data we hold"
        else:
            case.body.pop("statement", None)


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
                # The document itself takes no input, so nothing can break its schema; and
                # a company's key cannot hold activity:write nor inferences:write (handmade tests).
                if operation_id in PIPELINE_ONLY and scope == "employer":
                    continue
                if operation_id in EMPLOYER_ONLY and scope == "pipeline":
                    continue  # nor can the pipeline's key hold requests:* (handmade below)
                if operation_id != "openapi" or mode is GenerationMode.POSITIVE:
                    yield pytest.param(
                        operation_id, scope, mode, id=f"{operation_id}-{scope}-{mode}"
                    )


# What the generated cases find beyond the hand-written tests below is what PostgreSQL
# refuses and SQLite takes (a NUL, an integer past 32 bits): CI runs them there.
@pytest.mark.left_to_postgresql
@pytest.mark.parametrize(("operation_id", "scope", "mode"), list(fuzz_params()))
def test_every_answer_is_documented_and_in_scope(
    world, schema, operation_id, scope, mode, capsys, record_testsuite_property
):
    operation = schema.find_operation_by_id(operation_id)
    headers = {"Authorization": f"Bearer {world.key(scope, operation_id)}"}
    checks = list(CHECKS)
    if scope == "employer":
        checks.append(employer_scope_check(world.own.pk, world.own_references))
    if mode is GenerationMode.NEGATIVE:
        checks.append(negative_data_rejection)
    else:
        checks += [
            positive_data_acceptance,
            valid_provision_refusals,
            valid_requests_refusals,
            valid_inference_refusals,
        ]
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

    name = f"schemathesis[{operation_id}-{scope}-{mode}]"
    record_testsuite_property(f"{name}.cases", seen["cases"])
    record_testsuite_property(f"{name}.statuses", json.dumps(seen["statuses"], sort_keys=True))
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


# --- handmade requests: what the fuzzer found, and the scope and key rules spelt out -------


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def post(client, url, body, key, content_type="application/json"):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data=data, content_type=content_type, headers=auth(key))


def error_of(response, document_error_schema):
    """The answer's error object, after checking it has the documented shape."""
    assert response["Content-Type"] == "application/json"
    errors = list(document_error_schema.iter_errors(response.json()))
    assert not errors, [e.message for e in errors]
    return response.json()["error"]


@pytest.fixture
def error_schema():
    from consent.api.openapi import OPENAPI

    schema = {"$ref": "#/components/schemas/Error", "components": OPENAPI["components"]}
    return Draft202012Validator(schema)


def triple(world, student, employer, purpose="behaviour_analysis"):
    return {"student": str(student.public_id), "employer": employer.pk, "purpose": purpose}


def test_an_employer_key_is_told_nothing_about_another_employers_triples(client, world):
    granted = next(g for g in world.granted if g["employer"] == world.other.pk)
    unknown = {"student": str(uuid.uuid4()), "employer": world.other.pk, "purpose": "nope"}
    missing = {**granted, "employer": 2**52}
    response = post(client, CHECK, {"checks": [granted, unknown, missing]}, world.employer_key)

    assert response.status_code == 200
    results = response.json()["results"]
    # A granted row, an unknown student and an employer that does not exist all answer the
    # same: nothing tells one from another.
    assert {(r["allowed"], r["reason"], r["basis"]) for r in results} == {
        (False, "out_of_scope", None)
    }
    # The pipeline's key sees the grant that the employer's key was not told about.
    pipeline = post(client, CHECK, {"checks": [granted]}, world.pipeline_key)
    assert pipeline.json()["results"][0]["reason"] == "granted"


def test_each_key_calls_only_the_endpoints_its_scopes_allow(client, world, error_schema):
    record = {
        "id": "evt-1",
        "student": str(world.students[0].public_id),
        "kind": "page_view",
        "occurred_at": timezone.now().isoformat(),
    }
    for key in (world.pipeline_key, world.employer_key):
        response = post(client, ACTIVITY, {"records": [record]}, key)
        assert response.status_code == 403
        assert error_of(response, error_schema)["code"] == "missing_scope"
    for url in (CHECK, PROVISIONS):
        response = post(client, url, {"checks": []}, world.site_key)
        assert error_of(response, error_schema)["code"] == "missing_scope"
    feed = client.get(CHANGES, headers=auth(world.site_key))
    assert feed.status_code == 403
    assert post(client, ACTIVITY, {"records": [record]}, world.site_key).status_code == 200


def test_the_inferences_key_sends_inferences_and_nothing_else(client, world, error_schema):
    student, employer = world.students[3], world.own
    made = timezone.now() - timedelta(minutes=1)
    result = {
        "id": "inf-1",
        "student": str(student.public_id),
        "model": world.model.code,
        "model_version": world.model.version,
        "employer": employer.pk,
        "output": 50,
        "made_at": made.isoformat(),
        "input_from": (made - timedelta(days=1)).isoformat(),
        "input_to": made.isoformat(),
    }
    for key in (world.pipeline_key, world.employer_key, world.site_key):
        response = post(client, INFERENCES, {"inferences": [result]}, key)
        assert error_of(response, error_schema)["code"] == "missing_scope"
    for url in (CHECK, PROVISIONS, ACTIVITY):
        response = post(client, url, {"checks": []}, world.inference_key)
        assert error_of(response, error_schema)["code"] == "missing_scope"
    response = post(client, INFERENCES, {"inferences": [result]}, world.inference_key)
    assert response.status_code == 200


def test_an_employer_key_reads_only_its_own_employers_changes_on_every_page(client, world):
    pages, since = [], 0
    while True:
        page = client.get(CHANGES, {"since": since, "limit": 2}, headers=auth(world.employer_key))
        assert page.status_code == 200
        pages.append(page.json())
        since = page.json()["next_cursor"]
        if not page.json()["has_more"]:
            break
    seen = [c for p in pages for c in p["changes"]]
    own = list(
        ConsentEvent.objects.filter(employer=world.own).order_by("pk").values_list("pk", flat=True)
    )
    assert [c["id"] for c in seen] == own
    assert {c["employer"] for c in seen} == {world.own.pk}
    assert {"grant", "withdraw", "lapse"} <= {c["action"] for c in seen}


def test_an_employer_key_cannot_record_a_provision_for_another_employer(
    client, world, error_schema
):
    granted = next(g for g in world.granted if g["employer"] == world.other.pk)
    before = Provision.objects.count()
    for employer in (world.other.pk, 2**52):  # one that exists, one that does not
        body = {**granted, "employer": employer, "data_items": "scores"}
        response = post(client, PROVISIONS, body, world.employer_key)
        assert response.status_code == 403
        error = error_of(response, error_schema)
        # The same answer for both: a key cannot learn which employers exist.
        assert (error["code"], error["field"]) == ("out_of_scope", "employer")
    assert Provision.objects.count() == before

    own = next(g for g in world.granted if g["employer"] == world.own.pk)
    response = post(client, PROVISIONS, {**own, "data_items": "scores"}, world.employer_key)
    assert response.status_code == 201
    assert response.json()["employer"] == world.own.pk


def test_another_employers_key_is_refused_for_this_employers_rows(client, world, error_schema):
    own = next(g for g in world.granted if g["employer"] == world.own.pk)
    check = post(client, CHECK, {"checks": [own]}, world.other_key)
    assert check.json()["results"][0]["reason"] == "out_of_scope"
    provision = post(client, PROVISIONS, {**own, "data_items": "x"}, world.other_key)
    assert provision.status_code == 403
    assert error_of(provision, error_schema)["code"] == "out_of_scope"


BAD_AUTHORIZATION = [
    (None, "missing_key"),
    ("", "missing_key"),
    ("Bearer", "missing_key"),
    ("Bearer    ", "missing_key"),
    ("Basic dXNlcjpwYXNz", "missing_key"),
    ("Token sdp_abc", "missing_key"),
    ("Bearer sdp_", "invalid_key"),
    ("Bearer sdp_" + "A" * 5000, "invalid_key"),
    ("Bearer not a key at all", "invalid_key"),
    ("Bearer sdp_\x00", "invalid_key"),
]


@pytest.mark.parametrize(("authorization", "code"), BAD_AUTHORIZATION)
@pytest.mark.parametrize(
    ("method", "url"), [("post", CHECK), ("post", PROVISIONS), ("get", CHANGES)]
)
def test_a_missing_or_malformed_key_is_401_with_the_documented_shape(
    client, world, error_schema, method, url, authorization, code
):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = (
        getattr(client, method)(url, data="{}", content_type="application/json", headers=headers)
        if method == "post"
        else client.get(url, headers=headers)
    )

    assert response.status_code == 401
    assert error_of(response, error_schema)["code"] == code
    assert response["WWW-Authenticate"].startswith('Bearer realm="api"')


@pytest.mark.parametrize("url", [CHECK, PROVISIONS, CHANGES, REQUESTS, ANSWER])
def test_a_revoked_key_is_401_on_every_endpoint(client, world, error_schema, url):
    if url in (CHANGES, REQUESTS):
        response = client.get(url, headers=auth(world.revoked_key))
    else:
        response = post(client, url, {"checks": []}, world.revoked_key)
    assert response.status_code == 401
    assert error_of(response, error_schema)["code"] == "revoked_key"
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_a_nul_or_unpaired_surrogate_in_a_purpose_is_an_unknown_purpose(client, world):
    student = str(world.students[3].public_id)
    # Raw JSON: "\ud800" is a lone surrogate, which json.dumps would not write from a str.
    body = (
        '{"checks": ['
        f'{{"student": "{student}", "employer": {world.own.pk}, "purpose": "behaviour_analysis\\u0000"}},'
        f'{{"student": "{student}", "employer": {world.own.pk}, "purpose": "\\ud800"}},'
        f'{{"student": "{student}", "employer": {world.own.pk}, "purpose": "行動分析"}}'
        "]}"
    )
    response = post(client, CHECK, body, world.pipeline_key)
    assert response.status_code == 200
    assert [r["reason"] for r in response.json()["results"]] == ["unknown_purpose"] * 3

    provision = {**triple(world, world.students[3], world.own), "data_items": "x"}
    response = post(client, PROVISIONS, {**provision, "purpose": "a\x00"}, world.pipeline_key)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_purpose"


@pytest.mark.parametrize("field", ["data_items", "reference"])
@pytest.mark.parametrize("text", ["scores\\u0000", "\\udc00scores"])
def test_a_nul_or_unpaired_surrogate_in_stored_text_is_422(
    client, world, error_schema, field, text
):
    granted = next(g for g in world.granted if g["employer"] == world.own.pk)
    body = json.dumps({**granted, "data_items": "scores", field: "PLACEHOLDER"})
    body = body.replace("PLACEHOLDER", text)
    before = Provision.objects.count()

    response = post(client, PROVISIONS, body, world.pipeline_key)

    assert response.status_code == 422
    assert error_of(response, error_schema)["field"] == field
    assert Provision.objects.count() == before


def test_a_deeply_nested_body_is_400_not_500(client, world, error_schema):
    body = "[" * 100_000 + "]" * 100_000
    for url in (CHECK, PROVISIONS):
        response = post(client, url, body, world.pipeline_key)
        assert response.status_code == 400
        assert error_of(response, error_schema)["code"] == "malformed_json"


@pytest.mark.parametrize(
    "employer",
    [
        "-1",
        "0",
        str(2**53),
        str(2**63),
        str(2**70),
        "1e300",
        "9007199254740993.0",
        "9007199254740992.0",
        "NaN",
        "Infinity",
        "true",
        '"1"',
        "null",
        "[1]",
        "1.5",
    ],
)
def test_an_employer_id_out_of_range_or_of_another_type_is_422(
    client, world, error_schema, employer
):
    student = str(world.students[0].public_id)
    body = f'{{"checks": [{{"student": "{student}", "employer": {employer}, "purpose": "p"}}]}}'
    response = post(client, CHECK, body, world.pipeline_key)
    assert response.status_code == 422
    assert error_of(response, error_schema)["field"] == "checks[0].employer"


def test_an_employer_id_sent_as_a_whole_float_is_that_employer(client, world):
    granted = next(g for g in world.granted if g["employer"] == world.own.pk)
    body = json.dumps({"checks": [granted]}).replace(
        f'"employer": {world.own.pk}', f'"employer": {world.own.pk}.0'
    )
    assert f"{world.own.pk}.0" in body
    for key in (world.pipeline_key, world.employer_key):
        result = post(client, CHECK, body, key).json()["results"][0]
        assert (result["allowed"], result["reason"]) == (True, "granted")


def test_wrong_types_in_a_batch_are_422_naming_the_first(client, world, error_schema):
    good = triple(world, world.students[0], world.own)
    for bad, field in [
        (1, "checks[1]"),
        (None, "checks[1]"),
        ([good], "checks[1]"),
        ({**good, "student": 7}, "checks[1].student"),
        ({**good, "student": "６f1c2d1e-8a4b-4c1e-9d7a-0b5e3f2a1c9d"}, "checks[1].student"),
        ({**good, "purpose": ["behaviour_analysis"]}, "checks[1].purpose"),
    ]:
        response = post(client, CHECK, {"checks": [good, bad, bad]}, world.pipeline_key)
        assert response.status_code == 422, bad
        assert error_of(response, error_schema)["field"] == field


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"since": str(2**70)}, "bad_cursor"),
        ({"since": "-1"}, "bad_cursor"),
        ({"since": "１"}, "bad_cursor"),  # a full-width digit is a digit to str.isdigit()
        ({"since": "1\x00"}, "bad_cursor"),
        ({"limit": "0"}, "bad_limit"),
        ({"cursor": "5"}, "unknown_parameter"),
        ({"since": "0", "since_id": "5"}, "unknown_parameter"),
    ],
)
def test_a_bad_query_is_400_naming_the_parameter(client, world, error_schema, query, code):
    response = client.get(CHANGES, query, headers=auth(world.pipeline_key))
    assert response.status_code == 400
    error = error_of(response, error_schema)
    assert error["code"] == code
    assert error["field"] in query


@pytest.mark.parametrize("body", [b"", b"   ", b"\xff{}", b"checks=1", b"{'checks': []}"])
def test_an_empty_or_non_json_body_is_400(client, world, error_schema, body):
    response = post(client, CHECK, body, world.pipeline_key)
    assert response.status_code == 400
    assert error_of(response, error_schema)["code"] == "malformed_json"


def test_the_content_type_is_not_needed_as_in_the_readmes_curl_example(client, world):
    # `curl -d` sends application/x-www-form-urlencoded; the body is read as JSON anyway
    # (a bearer key in a header is the credential, so no browser form can make this call).
    granted = next(g for g in world.granted if g["employer"] == world.own.pk)
    for content_type in ("application/x-www-form-urlencoded", "text/plain", ""):
        response = post(
            client, CHECK, {"checks": [granted]}, world.pipeline_key, content_type=content_type
        )
        assert response.status_code == 200, content_type
        assert response.json()["results"][0]["reason"] == "granted"
    multipart = client.post(CHECK, {"checks": "x"}, headers=auth(world.pipeline_key))
    assert multipart.status_code == 400


def test_the_rarer_answers_carry_their_documented_headers(world, schema, settings):
    # The fuzzer rarely meets these; schemathesis checks them all the same, headers included
    # (Retry-After on 429, Allow on 405, WWW-Authenticate on 401).
    changes = schema.find_operation_by_id("consentsChanges")
    settings.API_RATE_LIMIT_PER_MINUTE = 1
    statuses = []
    for headers in (auth(world.pipeline_key), auth(world.pipeline_key), auth("sdp_nope")):
        response = changes.Case(query={}).call_and_validate(headers=headers, checks=CHECKS)
        statuses.append(response.status_code)
    wrong_method = changes.Case(query={}, method="DELETE").call(headers=auth(world.other_key))
    changes.Case(query={}).validate_response(wrong_method, checks=CHECKS)

    assert statuses == [200, 429, 401]
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == ["GET"]


def test_only_the_companys_key_reaches_its_requests_and_never_anothers(client, world, error_schema):
    for key in (world.pipeline_key, world.site_key, world.other_key):
        listed = client.get(REQUESTS, headers=auth(key))
        assert listed.status_code == 403
        assert error_of(listed, error_schema)["code"] == "missing_scope"
    own = client.get(REQUESTS, {"status": "all"}, headers=auth(world.employer_key))
    assert {r["reference"] for r in own.json()["requests"]} == set(world.own_references)
    # Another company's request is the same 404 as a reference that does not exist.
    body = {"answer": "held_none", "answered_by": "HR"}
    headers = {**auth(world.employer_key), "Idempotency-Key": str(uuid.uuid4())}
    for reference in (world.other_references[0], "R-000000-0000000000"):
        response = client.post(
            f"/api/v1/requests/{reference}/answer",
            json.dumps(body),
            content_type="application/json",
            headers=headers,
        )
        assert response.status_code == 404
        assert error_of(response, error_schema)["code"] == "unknown_request"
