"""The IDOR sweep, generated from the URLconf (issue 10).

Every URL pattern the project serves is listed by walking `get_resolver()` through every
include, and must be classified below: either student-facing (how to fill its converters
with student A's objects) or exempt, with the reason. Signed in as student B, every URL
holding one of A's objects answers 404 to GET and POST; a student page without an object of
A's shows B's own rows and none of A's, and a POST there changes nothing of A's. Anonymous,
every student-facing URL answers the login redirect with `next`. A pattern added to the
project without a line here fails `test_every_url_pattern_is_classified` by name.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from consent.api.keys import api_key_create
from consent.models import Consent, ConsentEvent, PolicyAcceptance, Provision
from consent.services import consent_grant, consent_withdraw, provision_record
from disclosure.models import DataRequest, RecipientTask, RequestFile
from disclosure.services import request_file
from inferences.models import Inference, InferenceDispute, InferenceObjection
from tests.factories import (
    EmployerFactory,
    inference_model,
    opt_in_purposes,
    student_who_accepted,
)
from tests.inferences.conftest import send

pytestmark = pytest.mark.django_db


# --- the URLconf, walked --------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    name: str  # "namespace:name", or the route itself for an unnamed pattern
    namespace: str
    route: str
    converters: tuple[str, ...]
    module: str  # where the view is defined


def _routes(resolver: URLResolver, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            inner = ":".join(part for part in (namespace, entry.namespace) if part)
            yield from _routes(entry, route, inner)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            converters = tuple(sorted(getattr(entry.pattern, "converters", {}) or {}))
            yield Route(name or route, namespace, route, converters, entry.lookup_str)


def all_routes() -> list[Route]:
    return list(_routes(get_resolver()))


# --- the classification ---------------------------------------------------------------------


@dataclass(frozen=True)
class Owned:
    """The URL names one of A's objects: B gets 404 for GET and POST, whatever the view
    does with either. `fillings` returns the kwargs to try, each naming one of A's objects."""

    fillings: Callable[[SimpleNamespace], list[dict]]


@dataclass(frozen=True)
class OwnRows:
    """The URL names nothing of A's (or only a public id, such as an employer's): B is
    served B's own rows and none of A's, and a POST by B changes nothing of A's."""

    kwargs: Callable[[SimpleNamespace], dict] = field(default=lambda world: {})
    get_status: int = 200  # 405 for a view that takes only POST
    takes_post: bool = False


STUDENT_FACING: dict[str, Owned | OwnRows] = {
    "dashboard": OwnRows(),
    "staff_looks": OwnRows(),
    # B closing an account closes B's own (and only after B re-authenticates).
    "disclosure:account_close": OwnRows(takes_post=True),
    "consent:policy_list": OwnRows(),
    "consent:accept": OwnRows(takes_post=True),
    "consent:acceptance_detail": Owned(lambda w: [{"receipt_id": w.a.acceptance.receipt_id}]),
    "consent:acceptance_diff": Owned(lambda w: [{"receipt_id": w.a.acceptance.receipt_id}]),
    "consent:receipt_pdf": Owned(lambda w: [{"receipt_id": w.a.acceptance.receipt_id}]),
    "consent:receipt_json": Owned(lambda w: [{"receipt_id": w.a.acceptance.receipt_id}]),
    "consent:consent_list": OwnRows(),
    "consent:withdraw_all": OwnRows(get_status=405, takes_post=True),
    # An employer id and a purpose code are not secret: B's grant or withdrawal is B's own.
    "consent:grant": OwnRows(
        lambda w: {"employer_id": w.employer.pk, "purpose_code": w.purpose.code},
        get_status=405,
        takes_post=True,
    ),
    "consent:withdraw": OwnRows(
        lambda w: {"employer_id": w.employer.pk, "purpose_code": w.purpose.code},
        get_status=405,
        takes_post=True,
    ),
    "consent:timeline": OwnRows(lambda w: {"employer_id": w.employer.pk}),
    "consent:event_receipt": Owned(lambda w: [{"receipt_id": r} for r in w.a.event_receipts]),
    "consent:event_receipt_pdf": Owned(lambda w: [{"receipt_id": r} for r in w.a.event_receipts]),
    "consent:event_receipt_json": Owned(lambda w: [{"receipt_id": r} for r in w.a.event_receipts]),
    "inferences:list": OwnRows(),
    # A model's code is not secret: B's objection is B's own.
    "inferences:object": OwnRows(lambda w: {"code": w.model.code}, get_status=405, takes_post=True),
    "disclosure:inference_dispute": Owned(lambda w: [{"pk": pk} for pk in w.a.inference_ids]),
    "disclosure:request_list": OwnRows(),
    "disclosure:request_new": OwnRows(takes_post=True),
    "disclosure:request_correction": OwnRows(takes_post=True),
    "disclosure:request_detail": Owned(lambda w: [{"reference": w.a.request.reference}]),
    "disclosure:file": Owned(
        lambda w: [
            *({"reference": w.a.request.reference, "file_id": pk} for pk in w.a.file_ids),
            # A's file under B's own reference: the file must belong to the request named.
            *({"reference": w.b.request.reference, "file_id": pk} for pk in w.a.file_ids),
        ]
    ),
}

EXEMPT: dict[str, str] = {
    "disclosure:source_callback": "a data source's server-to-server callback: authenticated by "
    "its HMAC signature over the body (disclosure/signing.py), not by a session",
    "home": "the public front page; it holds no one's data",
    "favicon": "a redirect to the static icon",
    "healthz": "the load balancer's health check; database and broker state only",
    "set_language": "the language switcher; it changes only the caller's own choice",
    "consent:version_text": "a published policy's text, public on purpose (receipts link it)",
    # allauth.socialaccount's old addresses, each a plain redirect to its /3rdparty/ page.
    **dict.fromkeys(
        (
            "accounts/social/login/cancelled/",
            "accounts/social/login/error/",
            "accounts/social/signup/",
            "accounts/social/connections/",
        ),
        "allauth's redirect from an old address of its own third-party pages",
    ),
    "disclosure:answer": "the company answer page, authorised by its token, not a session: "
    "tests/security/test_answer_tokens.py and tests/disclosure/test_answer_page.py",
    "disclosure:answer_workspace_link": "emails a workspace link to the company of an answer "
    "link's task, authorised by that token: tests/disclosure/test_workspace.py",
    # A company's workspace: no student account; each page is authorised by the workspace
    # link signed in to this session and answers only that company's tasks
    # (tests/disclosure/test_workspace.py).
    **dict.fromkeys(
        (
            "disclosure:workspace_request",
            "disclosure:workspace_request_sent",
            "disclosure:workspace_open",
            "disclosure:workspace",
            "disclosure:workspace_answer",
            "disclosure:workspace_csv",
            "disclosure:workspace_csv_upload",
            "disclosure:workspace_csv_confirm",
            "disclosure:workspace_delivery",
            "disclosure:workspace_task",
            "disclosure:workspace_sign_out",
        ),
        "a company's workspace, authorised by its emailed link (no student account): "
        "tests/disclosure/test_workspace.py",
    ),
}


def exemption(route: Route) -> str | None:
    """Why a pattern is outside the student sweep, or None if it is not exempt."""
    if route.name in EXEMPT:
        return EXEMPT[route.name]
    if route.namespace == "admin":
        return "the admin: staff only, covered by tests/backoffice and test_admin_forged.py"
    if route.namespace == "api":
        return "the consent API: API-key auth, covered by tests/consent/test_api*.py"
    if route.module.startswith("allauth."):
        return "allauth's account pages: the caller's own account only"
    return None


def test_every_url_pattern_is_classified():
    unclassified = [
        f"{r.name} ({r.route})"
        for r in all_routes()
        if r.name not in STUDENT_FACING and exemption(r) is None
    ]
    assert not unclassified, (
        "URL patterns neither swept nor exempt; add each to STUDENT_FACING or EXEMPT in "
        f"tests/security/test_idor.py: {unclassified}"
    )


def test_the_table_names_only_patterns_that_exist_and_fills_every_converter(world):
    routes = {r.name: r for r in all_routes()}
    assert set(STUDENT_FACING) <= set(routes), set(STUDENT_FACING) - set(routes)
    assert set(EXEMPT) <= set(routes), set(EXEMPT) - set(routes)
    for name, how in STUDENT_FACING.items():
        fillings = how.fillings(world) if isinstance(how, Owned) else [how.kwargs(world)]
        assert fillings, name
        for kwargs in fillings:
            assert tuple(sorted(kwargs)) == routes[name].converters, name
            reverse(name, kwargs=kwargs)  # the values fit the converters


# --- the two students -------------------------------------------------------------------------


def _student(email: str, employer, purposes, capture, pipeline) -> SimpleNamespace:
    """A student with an acceptance, a grant and a withdrawal (two consent receipts), a
    provision to `employer`, a result of the decline-likelihood model made for it, and a
    filed disclosure request whose report files are made."""
    analysis, provision = purposes
    student, _version = student_who_accepted(analysis, provision, email=email)
    granted = consent_grant(student=student, employer=employer, purpose=provision)
    provision_record(student=student, employer=employer, purpose=provision, data_items=email)
    withdrawn = consent_withdraw(student=student, employer=employer, purpose=provision)
    consent_grant(student=student, employer=employer, purpose=analysis)
    made = send(pipeline, student, employer, id=f"{email}-1", output=50, at=timezone.now())
    assert made.result == "stored", made
    with capture(execute=True):
        data_request = request_file(student=student, kind="disclosure")
    file_ids = list(RequestFile.objects.filter(request=data_request).values_list("pk", flat=True))
    assert len(file_ids) >= 2  # the report's PDF and JSON
    return SimpleNamespace(
        user=student,
        acceptance=PolicyAcceptance.objects.get(student=student),
        event_receipts=[granted.receipt_id, withdrawn.receipt_id],
        request=data_request,
        file_ids=file_ids,
        inference_ids=list(student.inferences.values_list("pk", flat=True)),
    )


@pytest.fixture
def world(django_capture_on_commit_callbacks):
    purposes = opt_in_purposes()
    employer = EmployerFactory()  # both students' data went to the same company
    model = inference_model(purpose=purposes[0])
    pipeline = api_key_create(name="Analytics pipeline", scopes=["inferences:write"])[0]
    capture = django_capture_on_commit_callbacks
    a = _student("a-student@example.jp", employer, purposes, capture, pipeline)
    b = _student("b-student@example.jp", employer, purposes, capture, pipeline)
    return SimpleNamespace(a=a, b=b, employer=employer, purpose=purposes[1], model=model)


def _markers(student: SimpleNamespace) -> list[str]:
    """Strings that appear only on pages about this student."""
    return [
        student.user.email,
        str(student.acceptance.receipt_id),
        *(str(r) for r in student.event_receipts),
        student.request.reference,
    ]


def _rows_of(student) -> dict:
    """Everything of the student's that a request could change."""
    user = student.user
    return {
        "acceptances": list(PolicyAcceptance.objects.filter(student=user).values().order_by("pk")),
        "events": list(ConsentEvent.objects.filter(student=user).values().order_by("pk")),
        "consents": list(Consent.objects.filter(student=user).values().order_by("pk")),
        "provisions": list(Provision.objects.filter(student=user).values().order_by("pk")),
        "requests": list(DataRequest.objects.filter(student=user).values().order_by("pk")),
        "tasks": list(RecipientTask.objects.filter(request__student=user).values().order_by("pk")),
        "files": list(
            RequestFile.objects.filter(request__student=user)
            .values("pk", "kind", "sha256", "name")
            .order_by("pk")
        ),
        "inferences": list(Inference.objects.filter(student=user).values().order_by("pk")),
        "objections": list(InferenceObjection.objects.filter(student=user).values().order_by("pk")),
        "disputes": list(InferenceDispute.objects.filter(student=user).values().order_by("pk")),
    }


def _expect_login_redirect(response, path: str) -> None:
    assert response.status_code == 302, path
    location = urlsplit(response["Location"])
    assert location.path == reverse("account_login"), path
    assert parse_qs(location.query)[REDIRECT_FIELD_NAME] == [path]


def _swept() -> list[tuple[str, Owned | OwnRows]]:
    return [(r.name, STUDENT_FACING[r.name]) for r in all_routes() if r.name in STUDENT_FACING]


# --- the sweep ----------------------------------------------------------------------------------


def test_another_students_objects_answer_404_and_their_rows_never_show(world, client):
    client.force_login(world.b.user)
    a_before = _rows_of(world.a)
    requests_made = 0
    for name, how in _swept():
        if isinstance(how, Owned):
            for kwargs in how.fillings(world):
                path = reverse(name, kwargs=kwargs)
                for method in (client.get, client.post):
                    response = method(path)
                    requests_made += 1
                    assert response.status_code == 404, (name, method.__name__, path)
                    for marker in _markers(world.a):
                        assert marker not in response.content.decode(errors="replace"), path
            continue
        path = reverse(name, kwargs=how.kwargs(world))
        response = client.get(path)
        requests_made += 1
        assert response.status_code == how.get_status, (name, path)
        page = response.content.decode()
        for marker in _markers(world.a):
            assert marker not in page, (name, marker)
        if how.takes_post:
            response = client.post(path)
            requests_made += 1
            assert response.status_code in (200, 302), (name, response.status_code)
            assert _rows_of(world.a) == a_before, name
    assert _rows_of(world.a) == a_before
    # The number the issue's closing note reports.
    assert requests_made == _sweep_request_count(world)


def _sweep_request_count(world) -> int:
    total = 0
    for _name, how in _swept():
        if isinstance(how, Owned):
            total += 2 * len(how.fillings(world))
        else:
            total += 2 if how.takes_post else 1
    return total


def test_the_sweep_reaches_the_real_pages_with_the_owners_own_objects(world, client):
    """The control: the same URLs filled with B's own objects answer B (so the 404s above
    come from the ownership check, not from a wrong URL)."""
    client.force_login(world.b.user)
    own = SimpleNamespace(
        a=world.b, b=world.b, employer=world.employer, purpose=world.purpose, model=world.model
    )
    for name, how in _swept():
        if not isinstance(how, Owned):
            continue
        for kwargs in how.fillings(own):
            response = client.get(reverse(name, kwargs=kwargs))
            assert response.status_code == 200, name


def test_the_employer_timeline_shows_only_the_signed_in_students_events(world, client):
    client.force_login(world.b.user)
    page = client.get(reverse("consent:timeline", args=[world.employer.pk])).content.decode()
    b_events = ConsentEvent.objects.filter(student=world.b.user, employer=world.employer)
    a_events = ConsentEvent.objects.filter(student=world.a.user, employer=world.employer)
    assert a_events.exists() and b_events.exists()
    for event in b_events:
        assert str(event.receipt_id) in page
    for event in a_events:
        assert str(event.receipt_id) not in page
    assert "a-student@example.jp" not in page  # A's provision's data items


def test_anonymous_gets_the_login_redirect_with_next_on_every_student_page(world):
    anonymous = Client()
    for name, how in _swept():
        fillings = how.fillings(world) if isinstance(how, Owned) else [how.kwargs(world)]
        for kwargs in fillings:
            path = reverse(name, kwargs=kwargs)
            _expect_login_redirect(anonymous.get(path), path)
            _expect_login_redirect(anonymous.post(path), path)
