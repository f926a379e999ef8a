"""A company's workspace (issue 19): asking for a link, opening it, the list, answers in bulk
and one by one, and the per-request link's limits."""

import hashlib
import re
from datetime import timedelta
from html import unescape

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEntry
from disclosure.models import (
    DataRequest,
    RecipientTask,
    RequestEvent,
    WorkspaceEvent,
    WorkspaceLink,
    token_hash,
)
from disclosure.services import workspace_link_revoke, workspace_sign_in
from disclosure.services.workspace import BATCH_SIZE  # noqa: F401  (documented batch size)
from portal.models import EmailMessage, PrivacyContact
from portal.shared.logs import redact
from tests.factories import EmployerFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r"/company/w/([A-Za-z0-9_-]+)/")
ASK = reverse("disclosure:workspace_request")
LIST = reverse("disclosure:workspace")
ANSWER = reverse("disclosure:workspace_answer")


def opening(token: str) -> str:
    return reverse("disclosure:workspace_open", args=[token])


def make_task(employer, *, kind="deletion", student=None, status="sent", days_ago=1, **extra):
    student = student or UserFactory()
    now = timezone.now()
    number = DataRequest.objects.count() + RecipientTask.objects.count() + 1
    data_request = DataRequest.objects.create(
        reference=f"R-{number:06d}-{student.pk}",
        student=student,
        kind=kind,
        language="ja",
        submitted_at=now - timedelta(days=days_ago),
        due_at=now - timedelta(days=days_ago) + timedelta(days=14),
    )
    return RecipientTask.objects.create(
        request=data_request,
        employer=employer,
        status=status,
        created_at=now - timedelta(days=days_ago),
        sent_at=now - timedelta(days=days_ago),
        **extra,
    )


@pytest.fixture
def ask(client, mailoutbox, django_capture_on_commit_callbacks):
    """Ask for a link for `email`; return the tokens mailed for it."""

    def run(email):
        mailoutbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(ASK, {"email": email})
        assert response.status_code == 302
        assert response.url == reverse("disclosure:workspace_request_sent")
        return [TOKEN.search(m.body).group(1) for m in mailoutbox if TOKEN.search(m.body)]

    return run


@pytest.fixture
def signed_in(client, ask):
    """A company with a contact, signed in to its workspace; returns (employer, link, token)."""

    def run(employer=None):
        employer = employer or EmployerFactory(contact_email="dpo@acme.example.jp")
        (token,) = ask(employer.primary_contact.email)
        response = client.post(opening(token))  # the button of the link's page
        assert response.status_code == 302 and response.url == LIST
        link = WorkspaceLink.objects.get(token_sha256=token_hash(token))
        return employer, link, token

    return run


# --- asking for a link --------------------------------------------------------------------


def test_the_request_page_answers_the_same_and_sends_only_to_contacts(client, ask, mailoutbox):
    employer = EmployerFactory(contact_email="dpo@acme.example.jp")
    assert client.get(ASK).status_code == 200
    assert ask("nobody@else.example.jp") == []
    assert not WorkspaceLink.objects.exists()
    (token,) = ask("DPO@acme.example.jp")  # any case
    assert mailoutbox[-1].to == ["dpo@acme.example.jp"]
    link = WorkspaceLink.objects.get()
    assert link.employer == employer and link.email == "dpo@acme.example.jp"
    assert link.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    assert link.expires_at - link.created_at == timedelta(days=7)
    # The token is in the email handed to SMTP only: no column of the link or the outbox.
    for row in WorkspaceLink.objects.values():
        assert token not in str(row)
    for row in EmailMessage.objects.values():
        assert token not in str(row)
    assert WorkspaceEvent.objects.filter(kind="sent").count() == 1


def test_the_request_page_does_the_same_work_whatever_is_typed(
    client, monkeypatch, django_assert_num_queries, mailoutbox
):
    """The links are sent by a queued task: a known address and an unknown one cost the page
    the same queries (none: only the cache's rate limits), so its answer time does not tell
    an address of a contact from another."""
    import sys

    from disclosure import tasks

    views = sys.modules["disclosure.views.workspace"]  # the module, not the view of that name

    EmployerFactory(contact_email="dpo@acme.example.jp")
    queued = []
    monkeypatch.setattr(views, "publish", lambda name, *args: queued.append((name, args)) or True)
    for email in ("dpo@acme.example.jp", "nobody@else.example.jp"):
        with django_assert_num_queries(0):
            response = client.post(ASK, {"email": email})
        assert response.status_code == 302
    assert [args[0] for _name, args in queued] == ["dpo@acme.example.jp", "nobody@else.example.jp"]
    assert not WorkspaceLink.objects.exists()
    for name, args in queued:  # the worker's part
        assert name == "disclosure.tasks.workspace_links_send"
        assert tasks.workspace_links_send(*args) is None
    link = WorkspaceLink.objects.get()
    assert link.email == "dpo@acme.example.jp"
    assert link.events.get().ip == "127.0.0.1"


def test_a_contact_of_two_companies_gets_one_link_each(ask):
    first = EmployerFactory(contact_email="shared@group.example.jp")
    second = EmployerFactory()
    PrivacyContact.objects.create(employer=second, name="HR", email="shared@group.example.jp")
    assert len(ask("shared@group.example.jp")) == 2
    assert set(WorkspaceLink.objects.values_list("employer", flat=True)) == {first.pk, second.pk}


def test_asking_is_rate_limited_by_address_silently(client, ask):
    EmployerFactory(contact_email="dpo@acme.example.jp")
    sent = [len(ask("dpo@acme.example.jp")) for _ in range(4)]
    assert sent == [1, 1, 1, 0]


def test_tokens_are_masked_in_logs():
    assert redact("GET /company/w/abcDEF_123/ 302") == "GET /company/w/[hidden]/ 302"


# --- opening it ---------------------------------------------------------------------------


def test_the_link_opens_only_its_companys_tasks_and_is_recorded(client, signed_in):
    employer, link, _token = signed_in()
    mine = make_task(employer, student=UserFactory(display_name="山田 花子"))
    theirs = make_task(EmployerFactory(), student=UserFactory(display_name="佐藤 次郎"))
    page = client.get(LIST)
    assert page.status_code == 200
    html = page.content.decode()
    assert mine.request.reference in html and "山田 花子" in html
    assert theirs.request.reference not in html and "佐藤 次郎" not in html
    assert client.session["workspace_link_id"] == link.pk
    assert WorkspaceEvent.objects.filter(link=link, kind="signed_in").count() == 1
    assert AuditEntry.objects.filter(name="disclosure.workspace_sign_in").count() == 1
    task_url = reverse("disclosure:workspace_task", args=[theirs.pk])
    assert client.get(task_url).status_code == 404
    link.refresh_from_db()
    assert link.used_at is not None


def test_opening_the_link_shows_a_button_and_neither_signs_in_nor_spends_it(client, ask):
    """Link scanners fetch the address: a GET changes nothing; only the button's POST, with
    the page's CSRF token, signs in."""
    employer = EmployerFactory(contact_email="dpo@acme.example.jp", name="株式会社エイコー")
    (token,) = ask(employer.primary_contact.email)
    for _ in range(2):
        page = client.get(opening(token))
        assert page.status_code == 200
        html = page.content.decode()
        assert "ワークスペースを開く" in html and "株式会社エイコー" in html
        assert '<form method="post"' in html and "csrfmiddlewaretoken" in html
        assert 'name="robots" content="noindex' in html
        assert client.get(LIST).status_code == 403
    assert "workspace_link_id" not in client.session
    link = WorkspaceLink.objects.get()
    assert link.used_at is None
    assert not WorkspaceEvent.objects.filter(kind="signed_in").exists()
    assert not AuditEntry.objects.filter(name="disclosure.workspace_sign_in").exists()
    english = Client(headers={"Accept-Language": "en"})
    english.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    assert "Open the workspace" in english.get(opening(token)).content.decode()

    # The button's POST needs the page's CSRF token.
    strict = Client(enforce_csrf_checks=True)
    page = strict.get(opening(token))
    assert strict.post(opening(token)).status_code == 403
    link.refresh_from_db()
    assert link.used_at is None
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    opened = strict.post(opening(token), {"csrfmiddlewaretoken": csrf.group(1)})
    assert opened.status_code == 302 and opened.url == LIST
    assert strict.get(LIST).status_code == 200


def test_a_link_signs_in_once_and_a_second_browser_is_told_it_was_used(client, signed_in):
    employer, link, token = signed_in()
    for other in (Client(), Client()):
        for method in (other.post, other.get):
            again = method(opening(token))
            assert again.status_code == 410
            assert "すでに使われています" in again.content.decode()
            assert "新しいリンク" in again.content.decode()
        assert other.get(LIST).status_code == 403
    link.refresh_from_db()
    assert link.used_at is not None
    assert WorkspaceEvent.objects.filter(link=link, kind="signed_in").count() == 1
    # The browser it signed in keeps its session (for as long as the link has not expired),
    # and the link from the email again takes it back to the list.
    assert client.get(LIST).status_code == 200
    back = client.post(opening(token))
    assert back.status_code == 302 and back.url == LIST


def test_of_two_sign_ins_that_found_the_link_unused_at_once_one_wins(ask):
    """Two POSTs at once both read the link unused; the conditional UPDATE lets one in."""
    employer = EmployerFactory(contact_email="dpo@acme.example.jp")
    ask(employer.primary_contact.email)
    first, second = WorkspaceLink.objects.get(), WorkspaceLink.objects.get()
    assert workspace_sign_in(link=first) is True
    assert workspace_sign_in(link=second) is False
    assert WorkspaceEvent.objects.filter(kind="signed_in").count() == 1
    assert AuditEntry.objects.filter(name="disclosure.workspace_sign_in").count() == 1


def test_unknown_expired_and_revoked_links_say_what_to_do(client, signed_in):
    assert client.get(opening("nope")).status_code == 404
    assert client.post(opening("nope")).status_code == 404
    employer, link, token = signed_in()
    # A session opened before the link expired ends with it.
    assert client.get(LIST).status_code == 200
    WorkspaceLink.objects.filter(pk=link.pk).update(expires_at=timezone.now())
    assert client.get(LIST).status_code == 410
    # The link is spent: it does not sign in again, even once its time is given back.
    WorkspaceLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() + timedelta(days=1))
    assert client.post(opening(token)).status_code == 410
    assert client.get(LIST).status_code == 403
    employer, link, token = signed_in(employer)
    assert client.get(LIST).status_code == 200
    workspace_link_revoke(link=link, by=StaffFactory())
    revoked = client.get(LIST)  # the session is signed out at once
    assert revoked.status_code == 410 and "無効にされました" in revoked.content.decode()
    assert client.get(LIST).status_code == 403
    for method in (client.get, client.post):
        assert method(opening(token)).status_code == 410
    assert AuditEntry.objects.filter(name="disclosure.revoke_workspace_link").count() == 1


def test_an_expired_link_says_to_ask_for_a_new_one(client, ask):
    employer = EmployerFactory(contact_email="dpo@acme.example.jp")
    (token,) = ask(employer.primary_contact.email)
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        for method in (client.get, client.post):
            response = method(opening(token))
            assert response.status_code == 410
            assert "新しいリンク" in response.content.decode()
    assert not WorkspaceEvent.objects.filter(kind="signed_in").exists()


def test_the_per_request_link_does_not_open_the_workspace_but_can_send_one(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    from disclosure.services import recipient_task_send

    employer = EmployerFactory(contact_email="dpo@acme.example.jp")
    task = make_task(employer, status="queued")
    RecipientTask.objects.filter(pk=task.pk).update(sent_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        recipient_task_send(task_id=task.pk)
    answer_token = re.search(r"/r/([A-Za-z0-9_-]+)/", mailoutbox[-1].body).group(1)
    answer_url = reverse("disclosure:answer", args=[answer_token])
    page = client.get(answer_url)
    assert page.status_code == 200
    assert "workspace-link/" in page.content.decode()
    assert client.get(LIST).status_code == 403
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(answer_url + "workspace-link/")
    assert response.status_code == 200
    assert [m.to for m in mailoutbox] == [["dpo@acme.example.jp"]]
    assert TOKEN.search(mailoutbox[0].body)
    assert client.get(LIST).status_code == 403  # still only the email opens it


# --- answers in bulk ----------------------------------------------------------------------


def bulk(client, ids=(), **data):
    form = {"answer": "deleted", "attestation": "on", "name": "佐藤 花子", "role": "人事部長"}
    form.update(data)
    return client.post(ANSWER, {**form, "task": [str(i) for i in ids]})


def test_bulk_answer_answers_each_task_once_and_skips_the_rest(client, signed_in):
    employer, link, _ = signed_in()
    deletions = [make_task(employer) for _ in range(2)]
    cessation = make_task(employer, kind="cessation")
    answered = make_task(
        employer, status="answered", answer="held_none", answered_at=timezone.now()
    )
    others = make_task(EmployerFactory())
    ids = [t.pk for t in [*deletions, cessation, answered, others]]
    response = bulk(client, ids)
    assert response.status_code == 200
    html = response.content.decode()
    assert cessation.request.reference in html and answered.request.reference in html
    for task in deletions:
        task.refresh_from_db()
        assert task.answer == "deleted" and task.answered_via == "workspace"
        assert task.answered_by == "佐藤 花子 (人事部長)"
        assert task.statement  # the attestation, as on the answer page
        assert RequestEvent.objects.filter(task=task, kind="answered").count() == 1
        assert EmailMessage.objects.filter(
            to=task.request.student.email, kind__startswith="request_answered"
        ).exists()
    cessation.refresh_from_db()
    others.refresh_from_db()
    assert cessation.answered_at is None and others.answered_at is None
    assert WorkspaceEvent.objects.get(kind="answered").tasks.count() == 2
    assert AuditEntry.objects.filter(name="disclosure.workspace_answer").count() == 1
    # The same post again: nothing answered twice.
    events = RequestEvent.objects.count()
    again = bulk(client, ids)
    assert again.status_code == 200
    assert RequestEvent.objects.count() == events
    assert "already answered" in again.content.decode() or "回答済み" in again.content.decode()


def test_a_bulk_answer_records_what_one_answer_does_in_a_few_queries_a_task(
    client, signed_in, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    """The batch path (disclosure.services.recipient_tasks_answer) against the single one:
    the same rows for each task, its links spent, each request completed once its last
    company answered (a certificate queued), and one query a task (its student's email), not ~18."""
    from disclosure.models import AnswerLink

    employer, _link, _ = signed_in()
    alone = [make_task(employer) for _ in range(60)]
    shared = make_task(employer)  # a request another company has not answered yet
    RecipientTask.objects.create(
        request=shared.request, employer=EmployerFactory(), status="sent", sent_at=timezone.now()
    )
    for task in [*alone, shared]:
        AnswerLink.objects.create(
            task=task, token_sha256=f"{task.pk:064d}", expires_at=timezone.now() + timedelta(days=9)
        )
    with django_assert_max_num_queries(61 + 30), django_capture_on_commit_callbacks() as queued:
        response = bulk(client, [t.pk for t in [*alone, shared]])
    assert response.status_code == 200
    assert RecipientTask.objects.filter(employer=employer, answer="deleted").count() == 61
    assert RequestEvent.objects.filter(kind="answered", task__employer=employer).count() == 61
    assert EmailMessage.objects.filter(kind__startswith="request_answered").count() == 61
    assert not AnswerLink.objects.filter(task__employer=employer, revoked_at=None).exists()
    completed = DataRequest.objects.filter(status="completed")
    assert set(completed.values_list("pk", flat=True)) == {t.request_id for t in alone}
    assert RequestEvent.objects.filter(kind="completed").count() == 60
    assert DataRequest.objects.get(pk=shared.request_id).is_open
    assert len(queued) >= 60  # the certificates (and the students' emails) queued on commit


def test_held_none_fits_every_kind_and_deleted_needs_the_tick(client, signed_in):
    employer, _link, _ = signed_in()
    tasks = [make_task(employer, kind=k) for k in ("deletion", "cessation", "disclosure")]
    assert bulk(client, [t.pk for t in tasks], attestation="").status_code == 400
    assert not RecipientTask.objects.filter(answered_at__isnull=False).exists()
    assert (
        bulk(client, [t.pk for t in tasks], answer="held_none", attestation="").status_code == 200
    )
    assert RecipientTask.objects.filter(answer="held_none").count() == 3


def test_all_matching_the_filter_needs_the_count_confirmed(client, signed_in):
    employer, _link, _ = signed_in()
    tasks = [make_task(employer) for _ in range(3)]
    make_task(employer, kind="cessation")
    data = {"all_matching": "1", "filter": "kind=deletion"}
    assert bulk(client, expected="2", **data).status_code == 409
    assert not RecipientTask.objects.filter(answered_at__isnull=False).exists()
    assert bulk(client, expected="3", **data).status_code == 200
    assert {t.pk for t in RecipientTask.objects.filter(answer="deleted")} == {t.pk for t in tasks}


def test_a_refusal_is_given_on_the_tasks_own_page(client, signed_in):
    employer, _link, _ = signed_in()
    task = make_task(employer)
    url = reverse("disclosure:workspace_task", args=[task.pk])
    assert client.get(url).status_code == 200
    response = client.post(
        url, {"answer": "refused", "reason": "法令上の保存義務", "answered_by": "佐藤"}
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.answer == "refused" and task.answered_via == "workspace"
    assert client.get(url).status_code == 200  # now shows the recorded answer


# --- the language switcher ------------------------------------------------------------------

SWITCHER_NEXT = re.compile(r'<input type="hidden" name="next" value="([^"]*)">')


def switch_language(client, page, language="en"):
    """Choose `language` with the page's switcher; the page it goes back to."""
    [back] = SWITCHER_NEXT.findall(page.content.decode())
    chosen = client.post(reverse("set_language"), {"language": language, "next": unescape(back)})
    assert chosen.status_code == 302
    return chosen.url, client.get(chosen.url)


def test_the_language_switcher_after_an_answer_goes_back_to_a_page_that_opens(client, signed_in):
    """The bulk answer's pages answer a POST at an address no GET opens: choosing a
    language there goes back to the list (with its filter), never to an empty 405."""
    employer, _link, _ = signed_in()
    tasks = [make_task(employer) for _ in range(2)]
    for page in (
        bulk(client, [tasks[0].pk], filter="kind=deletion"),  # the answers recorded
        bulk(client, [tasks[1].pk], name="", filter="kind=deletion"),  # the list, to correct
    ):
        assert page.request["REQUEST_METHOD"] == "POST"
        url, switched = switch_language(client, page)
        assert url == f"{LIST}?kind=deletion"
        assert switched.status_code == 200 and switched["Content-Language"] == "en"
        client.cookies.pop(settings.LANGUAGE_COOKIE_NAME)
    # Any other page goes back to where it was.
    url, switched = switch_language(client, client.get(LIST, {"status": "all", "page": "1"}))
    assert url == f"{LIST}?status=all&page=1" and switched.status_code == 200
    # An answer sent after the link ended: to the page that asks for a new one.
    WorkspaceLink.objects.update(expires_at=timezone.now())
    gone = bulk(client, [tasks[1].pk])
    assert gone.status_code == 410
    url, switched = switch_language(client, gone)
    assert url == ASK and switched.status_code == 200


def test_the_language_switcher_after_asking_from_an_answer_page_goes_back_to_it(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    from disclosure.services import recipient_task_send

    employer = EmployerFactory(contact_email="dpo@acme.example.jp")
    task = make_task(employer, status="queued")
    RecipientTask.objects.filter(pk=task.pk).update(sent_at=None)
    with django_capture_on_commit_callbacks(execute=True):
        recipient_task_send(task_id=task.pk)
    answer_token = re.search(r"/r/([A-Za-z0-9_-]+)/", mailoutbox[-1].body).group(1)
    answer_url = reverse("disclosure:answer", args=[answer_token])
    sent = client.post(answer_url + "workspace-link/")
    assert sent.status_code == 200
    url, switched = switch_language(client, sent)
    assert url == answer_url and switched.status_code == 200


# --- the list -----------------------------------------------------------------------------


def test_filters_and_search(client, signed_in):
    employer, _link, _ = signed_in()
    hanako = make_task(employer, student=UserFactory(display_name="山田 花子", email="h@x.jp"))
    old = make_task(employer, kind="cessation", days_ago=40)
    done = make_task(employer, status="answered", answer="deleted", answered_at=timezone.now())

    def shown(**params):
        html = client.get(LIST, params).content.decode()
        return {t for t in (hanako, old, done) if t.request.reference in html}

    assert shown() == {hanako, old}
    assert shown(status="all") == {hanako, old, done}
    assert shown(status="answered") == {done}
    assert shown(overdue="on") == {old}
    assert shown(kind="cessation") == {old}
    assert shown(q="花子") == {hanako}
    assert shown(q="h@x") == {hanako}
    assert shown(q=old.request.reference, status="all") == {old}
    day = (timezone.localtime() - timedelta(days=5)).date().isoformat()
    assert shown(filed_from=day) == {hanako}
    assert shown(filed_to=day) == {old}
    assert client.get(LIST, {"filed_from": "garbage", "kind": "x"}).status_code == 200


def test_a_page_runs_a_fixed_number_of_queries(client, signed_in, django_assert_max_num_queries):
    employer, _link, _ = signed_in()
    students = UserFactory.create_batch(5)
    now = timezone.now()
    requests = DataRequest.objects.bulk_create(
        DataRequest(
            reference=f"B-{n:06d}",
            student=students[n % 5],
            kind="deletion",
            language="ja",
            submitted_at=now - timedelta(hours=n),
            due_at=now + timedelta(days=14),
        )
        for n in range(200)
    )
    RecipientTask.objects.bulk_create(
        RecipientTask(request=r, employer=employer, status="sent", created_at=r.submitted_at)
        for r in requests
    )
    with django_assert_max_num_queries(12):
        response = client.get(LIST)
    assert response.status_code == 200
    with django_assert_max_num_queries(12):
        assert client.get(LIST, {"page": 4, "status": "all"}).status_code == 200


@pytest.mark.parametrize(
    ("language", "words"), [("en", "Students' requests to"), ("ja", "学生からの請求")]
)
def test_pages_in_english_and_japanese(client, signed_in, settings, language, words):
    employer, _link, _ = signed_in()
    make_task(employer)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    html = client.get(LIST).content.decode()
    assert words in html
    assert client.get(ASK).status_code == 200


def test_the_list_shows_what_the_company_received(client, signed_in):
    from consent.services import consent_grant, provision_record
    from tests.factories import opt_in_purposes, student_who_accepted

    employer, _link, _ = signed_in()
    _analysis, provision = opt_in_purposes()
    now = timezone.now()
    with time_machine.travel(now - timedelta(days=30), tick=True):
        student, _version = student_who_accepted(_analysis, provision)
        consent_grant(student=student, employer=employer, purpose=provision)
    provision_record(
        student=student,
        employer=employer,
        purpose=provision,
        data_items="閲覧履歴スコア",
        provided_at=now - timedelta(days=3),
    )
    make_task(employer, student=student)
    make_task(employer)  # a student of whom nothing was given
    html = client.get(LIST).content.decode()
    assert "閲覧履歴スコア" in html
    assert "提供の記録はありません" in html


# --- staff --------------------------------------------------------------------------------


def test_support_staff_see_the_links_under_the_employer_and_revoke_one(client, signed_in):
    from django.contrib.auth.models import Group

    from backoffice.roles import SUPPORT

    employer, link, token = signed_in()
    support = StaffFactory(is_superuser=False)
    support.groups.add(Group.objects.get(name=SUPPORT))
    staff = client.__class__()
    staff.force_login(support)
    page = staff.get(reverse("admin:portal_employer_change", args=[employer.pk]))
    assert page.status_code == 200
    assert "dpo@acme.example.jp" in page.content.decode()
    changelist = reverse("admin:disclosure_workspacelink_changelist")
    listing = staff.get(changelist, {"employer__id__exact": employer.pk})
    assert listing.status_code == 200 and token not in listing.content.decode()
    detail = staff.get(reverse("admin:disclosure_workspacelink_change", args=[link.pk]))
    assert detail.status_code == 200 and token not in detail.content.decode()
    response = staff.post(changelist, {"action": "revoke", "_selected_action": [link.pk]})
    assert response.status_code == 302
    link.refresh_from_db()
    assert link.revoked_at is not None and link.revoked_by == support
    assert AuditEntry.objects.filter(
        name="disclosure.revoke_workspace_link", actor=support
    ).exists()
    assert client.get(LIST).status_code == 410
