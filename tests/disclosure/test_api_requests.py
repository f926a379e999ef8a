"""A company's requests over the API (issue 19): GET /api/v1/requests and
POST /api/v1/requests/{reference}/answer, with keys holding requests:read and
requests:answer; never another company's."""

import io
import json
import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from pypdf import PdfReader

from consent.admin.forms import ApiKeyCreateForm
from consent.api.keys import ScopeRefused, api_key_create
from consent.models import ApiClient
from consent.services import consent_grant, provision_record
from disclosure import api as disclosure_api
from disclosure.models import DataRequest, RecipientTask, RequestEvent, RequestFile
from disclosure.services import (
    recipient_task_close,
    recipient_task_remind,
    recipient_task_send,
    request_cancel,
    request_file,
)
from portal.models import EmailMessage
from tests.factories import (
    EmployerFactory,
    StaffFactory,
    UserFactory,
    accept,
    opt_in_purposes,
    published_version,
)

pytestmark = pytest.mark.django_db

LIST = "/api/v1/requests"
READ_ANSWER = ["requests:read", "requests:answer"]


def answer_url(reference):
    return f"/api/v1/requests/{reference}/answer"


@pytest.fixture(autouse=True)
def settled(monkeypatch, settings):
    """The list holds changes back a few seconds; most tests need them at once."""
    monkeypatch.setattr(disclosure_api, "REQUESTS_SETTLE", timedelta(0))
    settings.API_RATE_LIMIT_PER_MINUTE = 1_000_000


class World:
    """Two companies, students whose data went to both, requests of every kind."""

    def __init__(self):
        self.analysis, self.provision = opt_in_purposes()
        self.version = published_version(purposes=[self.analysis, self.provision])
        self.own = EmployerFactory(name="株式会社あおば")
        self.other = EmployerFactory(name="株式会社いずみ")
        self.client, self.key = api_key_create(
            name="あおば HR システム", employer=self.own, scopes=READ_ANSWER
        )
        self.other_client, self.other_key = api_key_create(
            name="いずみ HR", employer=self.other, scopes=READ_ANSWER
        )
        self.students = []

    def student(self, name="山田 花子", email=None, *, employers=None, provide=True):
        student = UserFactory(
            password=None, display_name=name, email=email or f"{uuid.uuid4().hex[:8]}@ex.jp"
        )
        accept(student, self.version)
        for employer in employers or (self.own, self.other):
            consent_grant(student=student, employer=employer, purpose=self.provision)
            if provide:
                provision_record(
                    student=student,
                    employer=employer,
                    purpose=self.provision,
                    data_items=f"閲覧履歴スコア ({employer.name})",
                )
        self.students.append(student)
        return student

    def file(self, kind="deletion", **kwargs) -> DataRequest:
        return request_file(student=self.student(**kwargs), kind=kind)


@pytest.fixture
def world():
    return World()


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def listing(client, key, **query):
    return client.get(LIST, query, headers=auth(key))


def answer(client, key, reference, body, *, idem=None, capture=None):
    headers = auth(key)
    if idem is not False:
        headers["Idempotency-Key"] = idem or str(uuid.uuid4())
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    if capture is None:
        return client.post(
            answer_url(reference), data=data, content_type="application/json", headers=headers
        )
    with capture(execute=True):
        return client.post(
            answer_url(reference), data=data, content_type="application/json", headers=headers
        )


def references(response):
    return [item["reference"] for item in response.json()["requests"]]


DELETED = {"answer": "deleted", "answered_by": "佐藤 花子, 人事部長", "attestation": True}


# --- keys and scopes ----------------------------------------------------------------------


def test_only_a_companys_key_may_hold_the_requests_scopes(world):
    for scope in READ_ANSWER:
        with pytest.raises(ScopeRefused):
            api_key_create(name="Pipeline", scopes=[scope])
    with pytest.raises(CommandError):
        call_command("create_api_key", name="Pipeline", pipeline=True, scope=["requests:read"])
    out = io.StringIO()
    call_command("create_api_key", name="HR", employer=world.own.pk, scope=READ_ANSWER, stdout=out)
    assert "requests:answer, requests:read" in out.getvalue()

    form = ApiKeyCreateForm(
        data={"name": "Pipeline", "kind": "pipeline", "scopes": ["requests:read"], "reason": "x"}
    )
    assert not form.is_valid() and "scopes" in form.errors
    form = ApiKeyCreateForm(
        data={
            "name": "HR",
            "kind": "employer",
            "employer": world.own.pk,
            "scopes": READ_ANSWER,
            "reason": "issue 19",
        }
    )
    assert form.is_valid(), form.errors


def test_a_key_without_the_scope_is_refused(client, world):
    data_request = world.file()
    consents_only = api_key_create(name="HR", employer=world.own)[1]
    read_only = api_key_create(name="HR", employer=world.own, scopes=["requests:read"])[1]
    for response in (
        listing(client, consents_only),
        answer(client, consents_only, data_request.reference, DELETED),
        answer(client, read_only, data_request.reference, DELETED),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "missing_scope"
    assert listing(client, read_only).status_code == 200


def test_a_pipeline_key_given_the_scope_behind_the_services_back_still_sees_nothing(client, world):
    client_row, key = api_key_create(name="Pipeline")
    ApiClient.objects.filter(pk=client_row.pk).update(scopes=READ_ANSWER)
    response = listing(client, key)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "out_of_scope"


# --- the list ------------------------------------------------------------------------------


def test_the_list_shows_what_the_answer_page_shows_and_only_the_companys_own(client, world):
    own_request = world.file("deletion", name="山田 花子", email="hanako@example.jp")
    world.file("cessation", employers=[world.other])  # the other company's only
    response = listing(client, world.key)
    assert response.status_code == 200
    (item,) = response.json()["requests"]
    assert item["reference"] == own_request.reference
    assert item["kind"] == "deletion"
    assert item["scope"] == "received_data"
    assert item["status"] == "open"
    assert item["student"] == {"name": "山田 花子", "email": "hanako@example.jp"}
    assert item["reminders_sent"] == 0 and item["answer"] is None
    (provision,) = item["provisions"]
    assert provision["data_items"] == "閲覧履歴スコア (株式会社あおば)"
    assert provision["purpose"] == "provision_to_employer"
    assert provision["purpose_title"] == "分析結果の企業への提供"
    # Nothing the page does not show: no public id, no message, no other company.
    text = response.content.decode()
    student = own_request.student
    for hidden in (str(student.public_id), "いずみ", str(own_request.public_id)):
        assert hidden not in text
    assert set(item) == {
        "reference",
        "kind",
        "scope",
        "status",
        "filed_at",
        "due_at",
        "reminders_sent",
        "student",
        "provisions",
        "answer",
        "correction",
        "changed_at",
    }
    # And the other company sees its two, never ours... but both requests went to it.
    assert len(references(listing(client, world.other_key))) == 2


def test_a_company_with_a_consent_but_no_data_gets_scope_consent_only(client, world):
    world.file("disclosure", provide=False)
    (item,) = listing(client, world.key).json()["requests"]
    assert item["scope"] == "consent_only" and item["provisions"] == []


def test_status_filters_and_changed_since(client, world, django_capture_on_commit_callbacks):
    first, second, third = (world.file(k) for k in ("deletion", "cessation", "disclosure"))
    task = second.tasks.get(employer=world.own)
    response = answer(
        client,
        world.key,
        second.reference,
        {"answer": "stopped", "answered_by": "HR", "attestation": True},
        capture=django_capture_on_commit_callbacks,
    )
    assert response.status_code == 200, response.json()
    staff = StaffFactory()
    recipient_task_close(task=third.tasks.get(employer=world.own), by=staff, reason="gone")
    assert references(listing(client, world.key)) == [first.reference]
    assert references(listing(client, world.key, status="answered")) == [second.reference]
    assert set(references(listing(client, world.key, status="all"))) == {
        first.reference,
        second.reference,
        third.reference,
    }
    closed = [i for i in listing(client, world.key, status="all").json()["requests"] if i["status"]]
    assert {i["reference"]: i["status"] for i in closed}[third.reference] == "closed"
    task.refresh_from_db()
    since = listing(client, world.key, status="all", changed_since=task.changed_at.isoformat())
    assert set(references(since)) == {second.reference, third.reference}
    for bad in ({"status": "done"}, {"changed_since": "2026-04-01T10:00:00"}, {"page": "2"}):
        refused = listing(client, world.key, **bad)
        assert refused.status_code == 400, bad
        assert refused.json()["error"]["field"] == next(iter(bad))
    far = listing(client, world.key, changed_since="9999-12-31T23:59:59-05:00")
    assert far.status_code == 400


def test_cursor_paging_sees_every_task_once_and_a_changed_one_again(client, world):
    requests = [world.file() for _ in range(5)]
    seen, cursor = [], None
    pages = 0
    while True:
        query = {"limit": 2, "status": "all"}
        if cursor:
            query["cursor"] = cursor
        page = listing(client, world.key, **query).json()
        pages += 1
        seen += [item["reference"] for item in page["requests"]]
        cursor = page["next"]
        if pages == 1:
            # Meanwhile, a task already listed changes (a reminder goes): it comes again.
            task = requests[0].tasks.get(employer=world.own)
            RecipientTask.objects.filter(pk=task.pk).update(
                status=RecipientTask.Status.SENT, sent_at=timezone.now()
            )
            assert recipient_task_remind(task_id=task.pk, number=1)
        if not page["has_more"]:
            break
    assert sorted(set(seen)) == sorted(r.reference for r in requests)
    assert seen.count(requests[0].reference) == 2
    assert seen[-1] == requests[0].reference
    last = [i for i in listing(client, world.key).json()["requests"]]
    assert {i["reference"]: i["reminders_sent"] for i in last}[requests[0].reference] == 1
    # Nothing new: the same cursor comes back, and an empty page.
    again = listing(client, world.key, cursor=cursor, status="all").json()
    assert again == {"requests": [], "next": cursor, "has_more": False}


def test_a_cursor_is_the_keys_own_and_cannot_be_forged(client, world):
    world.file()
    world.file()
    page = listing(client, world.key, limit=1).json()
    assert page["has_more"]
    # Another key (even another key of the same company) cannot use it.
    same_company = api_key_create(name="HR 2", employer=world.own, scopes=READ_ANSWER)[1]
    for key in (world.other_key, same_company):
        refused = listing(client, key, cursor=page["next"])
        assert refused.status_code == 400
        assert refused.json()["error"]["code"] == "bad_cursor"
    forged = page["next"][:-2] + ("AA" if not page["next"].endswith("AA") else "BB")
    assert listing(client, world.key, cursor=forged).status_code == 400
    assert listing(client, world.key, cursor="x" * 201).status_code == 400


def test_a_fresh_change_waits_until_it_settled(client, world, monkeypatch):
    monkeypatch.setattr(disclosure_api, "REQUESTS_SETTLE", timedelta(seconds=5))
    data_request = world.file()
    assert references(listing(client, world.key)) == []
    with time_machine.travel(timezone.now() + timedelta(seconds=6)):
        assert references(listing(client, world.key)) == [data_request.reference]


def test_a_page_costs_the_same_queries_however_many_rows(
    client, world, django_assert_max_num_queries
):
    for _ in range(3):
        world.file()
    with django_assert_max_num_queries(4):
        assert len(references(listing(client, world.key))) == 3
    for _ in range(12):
        world.file()
    with django_assert_max_num_queries(4):
        assert len(references(listing(client, world.key))) == 15


def test_every_change_of_a_task_moves_its_changed_at(world):
    data_request = world.file()
    task = data_request.tasks.get(employer=world.own)

    def moved(step):
        before = RecipientTask.objects.get(pk=task.pk).changed_at
        with time_machine.travel(timezone.now() + timedelta(minutes=moved.minutes)):
            step()
        moved.minutes += 1
        return RecipientTask.objects.get(pk=task.pk).changed_at > before

    moved.minutes = 1
    staff = StaffFactory()
    from disclosure.services import recipient_task_resend, request_extend

    assert moved(lambda: recipient_task_send(task_id=task.pk))
    assert moved(lambda: recipient_task_remind(task_id=task.pk, number=1))
    assert moved(lambda: recipient_task_resend(task=task, by=staff, reason="new contact"))
    assert moved(lambda: request_extend(request=data_request, days=7, reason="holiday", by=staff))
    assert moved(lambda: recipient_task_close(task=task, by=staff, reason="no answer"))
    other = world.file().tasks.get(employer=world.own)
    before = other.changed_at
    request_cancel(request=other.request, reason="mistake")
    assert RecipientTask.objects.get(pk=other.pk).changed_at >= before
    assert RecipientTask.objects.get(pk=other.pk).status == RecipientTask.Status.CLOSED


# --- answering ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "body", "statement"),
    [
        ("deletion", DELETED, "学生のデータ"),
        ("deletion", {"answer": "held_none", "answered_by": "HR"}, ""),
        (
            "deletion",
            {"answer": "refused", "answered_by": "HR", "statement": "保存義務"},
            "保存義務",
        ),
        ("cessation", {"answer": "stopped", "answered_by": "HR", "attestation": True}, "利用"),
        ("cessation", {"answer": "held_none", "answered_by": "HR"}, ""),
        ("cessation", {"answer": "refused", "answered_by": "HR", "statement": "理由"}, "理由"),
        (
            "disclosure",
            {"answer": "disclosed", "answered_by": "HR", "statement": "スコア 82"},
            "82",
        ),
        ("disclosure", {"answer": "held_none", "answered_by": "HR"}, ""),
        ("disclosure", {"answer": "refused", "answered_by": "HR", "statement": "理由"}, "理由"),
    ],
)
def test_each_answer_of_each_kind_is_recorded_by_api(
    client, world, django_capture_on_commit_callbacks, kind, body, statement
):
    data_request = world.file(kind)
    response = answer(
        client,
        world.key,
        data_request.reference,
        body,
        capture=django_capture_on_commit_callbacks,
    )
    assert response.status_code == 200, response.json()
    item = response.json()["request"]
    assert item["status"] == "answered"
    assert item["answer"]["answer"] == body["answer"]
    assert item["answer"]["via"] == "api"
    assert statement in item["answer"]["statement"]
    if not statement:
        assert item["answer"]["statement"] == ""
    task = data_request.tasks.get(employer=world.own)
    assert task.answered_via == RecipientTask.Via.API
    assert task.answered_client == world.client


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("deletion", {"answer": "stopped", "answered_by": "HR", "attestation": True}, "answer"),
        ("disclosure", {"answer": "deleted", "answered_by": "HR", "attestation": True}, "answer"),
        ("deletion", {"answer": "refused", "answered_by": "HR"}, "statement"),
        ("deletion", {"answer": "refused", "answered_by": "HR", "statement": "  "}, "statement"),
        ("disclosure", {"answer": "disclosed", "answered_by": "HR"}, "statement"),
        ("deletion", {"answer": "deleted", "answered_by": "HR"}, "attestation"),
        ("deletion", {"answer": "held_none", "answered_by": "HR", "statement": "x"}, "statement"),
        ("deletion", {"answer": "held_none", "answered_by": "   "}, "answered_by"),
        ("deletion", {"answer": "held_none"}, "answered_by"),
        ("deletion", {"answer": "held_none", "answered_by": "HR\u0000"}, "answered_by"),
        (
            "deletion",
            {"answer": "refused", "answered_by": "HR", "statement": "x" * 4001},
            "statement",
        ),
        ("deletion", [], ""),
    ],
)
def test_an_answer_that_does_not_fit_is_422_and_records_nothing(client, world, kind, body, field):
    data_request = world.file(kind)
    response = answer(client, world.key, data_request.reference, body)
    assert response.status_code == 422, response.json()
    assert response.json()["error"]["field"] == field
    task = data_request.tasks.get(employer=world.own)
    assert task.answered_at is None and task.status == RecipientTask.Status.QUEUED


def test_another_companys_request_and_an_unknown_reference_are_the_same_404(client, world):
    theirs = world.file(employers=[world.other])
    for reference in (theirs.reference, "R-000000-0000000000", "x" * 300):
        response = answer(client, world.key, reference, DELETED)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "unknown_request"
    assert not theirs.tasks.filter(answered_at__isnull=False).exists()


def test_the_idempotency_key_is_required_replays_and_refuses_another_body(
    client, world, django_capture_on_commit_callbacks
):
    data_request = world.file()
    missing = answer(client, world.key, data_request.reference, DELETED, idem=False)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "missing_idempotency_key"

    first = answer(
        client,
        world.key,
        data_request.reference,
        DELETED,
        idem="k-1",
        capture=django_capture_on_commit_callbacks,
    )
    assert first.status_code == 200
    emails = EmailMessage.objects.count()
    replay = answer(client, world.key, data_request.reference, DELETED, idem="k-1")
    assert replay.status_code == 200
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.content == first.content
    assert EmailMessage.objects.count() == emails  # nothing recorded twice

    reused = answer(
        client, world.key, data_request.reference, {**DELETED, "answered_by": "X"}, idem="k-1"
    )
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    other = world.file()
    reused = answer(client, world.key, other.reference, DELETED, idem="k-1")
    assert reused.json()["error"]["code"] == "idempotency_key_reused"

    # A new key on an answered request: 409 with the answer recorded.
    again = answer(client, world.key, data_request.reference, DELETED, idem="k-2")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_answered"
    assert again.json()["request"]["answer"]["answered_by"] == DELETED["answered_by"]

    # A refusal kept nothing: the same key may be sent again once the body is fixed.
    bad = answer(client, world.key, other.reference, {"answer": "deleted"}, idem="k-3")
    assert bad.status_code == 422
    fixed = answer(client, world.key, other.reference, DELETED, idem="k-3")
    assert fixed.status_code == 200


def test_a_closed_or_cancelled_request_is_409_closed(client, world):
    staff = StaffFactory()
    closed = world.file()
    recipient_task_close(task=closed.tasks.get(employer=world.own), by=staff, reason="x")
    cancelled = world.file()
    request_cancel(request=cancelled, reason="mistake")
    for data_request in (closed, cancelled):
        response = answer(client, world.key, data_request.reference, DELETED)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "closed"
        assert response.json()["request"]["status"] == "closed"


def test_an_answer_by_api_does_what_the_page_does_and_names_the_key(
    client, world, django_capture_on_commit_callbacks, mailoutbox
):
    """Two requests alike, one answered by the link and one by the API: the same task
    state, the same student email, the request completed, the certificate made; the
    timeline and the certificate say which came by API, with the key's name."""
    student_link = world.student(employers=[world.own])
    student_api = world.student(employers=[world.own])
    with django_capture_on_commit_callbacks(execute=True):
        by_link = request_file(student=student_link, kind="deletion")
    with django_capture_on_commit_callbacks(execute=True):
        by_api = request_file(student=student_api, kind="deletion")
    token = None
    for mail in mailoutbox:
        if by_link.reference in mail.subject + mail.body and "/r/" in mail.body:
            token = re.search(r"/r/([A-Za-z0-9_-]+)/", mail.body).group(1)
    assert token
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        page = client.post(
            f"/r/{token}/",
            {"answer": "deleted", "attestation": "on", "answered_by": "佐藤 花子, 人事部長"},
        )
    assert page.status_code == 302
    response = answer(
        client, world.key, by_api.reference, DELETED, capture=django_capture_on_commit_callbacks
    )
    assert response.status_code == 200

    link_task = by_link.tasks.get()
    api_task = by_api.tasks.get()
    for field in ("status", "answer", "answered_by", "statement"):
        assert getattr(link_task, field) == getattr(api_task, field), field
    assert not api_task.links.filter(revoked_at=None).exists()
    for data_request in (by_link, by_api):
        data_request.refresh_from_db()
        assert data_request.status == DataRequest.Status.COMPLETED
        assert RequestFile.objects.filter(
            request=data_request, kind=RequestFile.Kind.CERTIFICATE_PDF
        ).exists()
    told = {
        ref: [m for m in mailoutbox if ref in m.body and m.to == [s.email]]
        for ref, s in ((by_link.reference, student_link), (by_api.reference, student_api))
    }
    assert len(told[by_link.reference]) == len(told[by_api.reference]) >= 1

    event = RequestEvent.objects.get(request=by_api, kind=RequestEvent.Kind.ANSWERED)
    assert event.actor == RequestEvent.Actor.COMPANY
    assert "API: あおば HR システム" in event.detail
    link_event = RequestEvent.objects.get(request=by_link, kind=RequestEvent.Kind.ANSWERED)
    assert "API" not in link_event.detail

    certificate = RequestFile.objects.get(request=by_api, kind=RequestFile.Kind.CERTIFICATE_PDF)
    text = "".join(
        "".join(page.extract_text().split())
        for page in PdfReader(io.BytesIO(bytes(certificate.content))).pages
    )
    assert "あおばHRシステム" in text


def test_every_way_a_task_is_answered_is_a_documented_via():
    """An answer by the workspace, the link, staff or a key is listed with its `via`: the
    document's enum must name each (a new way of answering added without it would make the
    list break its own schema)."""
    from consent.api.openapi import OPENAPI

    def vias(node):
        if isinstance(node, dict):
            if isinstance(node.get("via"), dict) and "enum" in node["via"]:
                yield set(node["via"]["enum"])
            for value in node.values():
                yield from vias(value)
        elif isinstance(node, list):
            for value in node:
                yield from vias(value)

    documented = list(vias(OPENAPI))
    assert documented, "no `via` enum in the document"
    assert all(enum == set(RecipientTask.Via.values) for enum in documented)
