"""Passing a request on in fewer messages, tasks and queries, with every guarantee kept:
filing queues one message for all the request's companies; the worker's task claims each
company's task and sends its email itself, right after the commit, instead of queueing an
`email_send` for it; a redelivered message sends what its first run left unsent; a refused
attempt goes back to `email_send`'s backoff; withdrawing 38 grants costs a fixed number of
queries. Tasks run in this process (SQLite and PostgreSQL)."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import portal.tasks
from consent.models import Consent, ConsentEvent, Purpose
from consent.services import consent_grant
from disclosure import enqueue, services, tasks
from disclosure.models import (
    AnswerLink,
    DataRequest,
    DataSource,
    RecipientTask,
    RequestEvent,
    Webhook,
    WebhookDelivery,
)
from portal.models import EmailMessage, Employer, PrivacyContact
from portal.shared import queueing
from portal.shared.emails import emails_held
from portal.tasks import retry_delay
from tests.disclosure.test_dispatch import (
    company_rows,
    file_deletion,
    student_with_recipients,
    token_of,
)
from tests.disclosure.test_dispatch import subject as subject_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    """Every message this process hands to the broker: (task name, args, countdown). With
    `published.hold`, they are noted and not run (as a broker that holds them)."""

    class Published(list):
        hold = False

        def names(self) -> list[str]:
            return [name for name, _args, _countdown in self]

    notes = Published()
    real = queueing.publish

    def publish(task_name, *args, countdown=None):
        notes.append((task_name, args, countdown))
        return True if notes.hold else real(task_name, *args, countdown=countdown)

    monkeypatch.setattr(queueing, "publish", publish)
    monkeypatch.setattr(portal.tasks, "publish", publish)
    return notes


def test_filing_queues_one_message_for_all_the_companies(
    published, django_capture_on_commit_callbacks
):
    student, employers = student_with_recipients(("ja", "en", "ja", "en"))
    published.hold = True

    request = file_deletion(student, django_capture_on_commit_callbacks)

    # One message in all: the companies' tasks, and the student's email with them (the
    # request received, with the receipts of the consents it withdrew).
    [(name, (task_ids, email_ids), _countdown)] = published
    assert name == enqueue.SEND_MANY
    assert sorted(task_ids) == sorted(request.tasks.values_list("pk", flat=True))
    assert len(task_ids) == len(employers)
    [received] = EmailMessage.objects.filter(pk__in=email_ids)
    assert received.kind == f"request_received:{request.reference}"
    assert not EmailMessage.objects.filter(
        kind="consent_change", created_at__gte=request.submitted_at
    )


def test_the_worker_sends_the_students_emails_and_then_the_companies(
    smtp_server, published, django_capture_on_commit_callbacks
):
    student, employers = student_with_recipients(("ja", "en"))
    published.hold = True
    request = file_deletion(student, django_capture_on_commit_callbacks)
    [(_name, args, _countdown)] = published

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.recipient_tasks_send.apply(args=args).get() == 2
        assert tasks.recipient_tasks_send.apply(args=args).get() == 0  # redelivered

    received = [subject_of(m) for m in smtp_server.received(student.email)]
    assert len(received) == 1
    assert all(len(smtp_server.received(e.primary_contact.email)) == 1 for e in employers)
    assert not EmailMessage.objects.exclude(status=EmailMessage.Status.SENT).filter(
        to__in=[student.email, *(e.primary_contact.email for e in employers)],
        created_at__gte=request.submitted_at,
    )


def test_a_request_to_no_company_sends_its_students_emails_by_one_message(
    published, django_capture_on_commit_callbacks, mailoutbox
):
    student, _ = student_with_recipients(())
    published.hold = True
    request = file_deletion(student, django_capture_on_commit_callbacks)

    # (With no company to ask, the request is complete: its certificate is queued too.)
    assert published.names() == [enqueue.EMAILS_SEND, enqueue.FINISH]
    [(name, (email_ids,), _countdown), _finish] = published
    [received] = EmailMessage.objects.filter(pk__in=email_ids)
    assert received.kind == f"request_received:{request.reference}"
    published.hold = False
    with django_capture_on_commit_callbacks(execute=True):
        queueing.publish(name, email_ids)
    assert [m.to for m in mailoutbox] == [[student.email]]


def test_a_large_request_is_split_into_messages_of_a_batch_each(
    published, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(enqueue, "SEND_BATCH", 2)
    student, _ = student_with_recipients(("ja", "en", "ja", "en", "ja"))
    published.hold = True

    request = file_deletion(student, django_capture_on_commit_callbacks)

    batches = [args[0] for name, args, _c in published if name == enqueue.SEND_MANY]
    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert sorted(sum(batches, [])) == sorted(request.tasks.values_list("pk", flat=True))


def test_the_worker_sends_each_company_email_itself_once(
    smtp_server, published, django_capture_on_commit_callbacks
):
    student, employers = student_with_recipients(("ja", "en", "ja"))
    published.hold = True
    request = file_deletion(student, django_capture_on_commit_callbacks)
    task_ids = list(request.tasks.values_list("pk", flat=True))
    published.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.recipient_tasks_send.apply(args=[task_ids]).get() == len(task_ids)
    # Twice, as a redelivered message: nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.recipient_tasks_send.apply(args=[task_ids]).get() == 0

    assert "portal.tasks.email_send" not in published.names()  # no second task per company
    for employer in employers:
        [message] = smtp_server.received(employer.primary_contact.email)
        [row] = company_rows(employer)
        assert row.status == EmailMessage.Status.SENT
        assert row.attempts == 1
        assert row.queued_at is None
        task = RecipientTask.objects.get(request=request, employer=employer)
        assert services.link_lookup(token=token_of(message)).task_id == task.pk
        assert task.status == RecipientTask.Status.SENT
    assert AnswerLink.objects.filter(task__request=request).count() == len(employers)
    assert RequestEvent.objects.filter(request=request, kind=RequestEvent.Kind.SENT).count() == len(
        employers
    )


def test_a_redelivered_message_sends_the_email_its_first_run_left(
    smtp_server, published, django_capture_on_commit_callbacks
):
    """The first run committed the claim, the link and the email row, and died before the
    email went: the message comes back, finds the task claimed, and sends the email."""
    student, [employer] = student_with_recipients(("ja",))
    published.hold = True
    request = file_deletion(student, django_capture_on_commit_callbacks)
    task = request.tasks.get()
    with django_capture_on_commit_callbacks(execute=True), emails_held() as left:
        assert services.recipient_task_send(task_id=task.pk)
    [row] = left
    row.refresh_from_db()
    assert row.status == EmailMessage.Status.QUEUED
    assert not smtp_server.received(employer.primary_contact.email)

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.recipient_task_send.apply(args=[task.pk]).get() is False
        assert tasks.recipient_tasks_send.apply(args=[[task.pk]]).get() == 0

    [message] = smtp_server.received(employer.primary_contact.email)
    assert services.link_lookup(token=token_of(message)).task_id == task.pk
    row.refresh_from_db()
    assert (row.status, row.attempts) == (EmailMessage.Status.SENT, 1)
    assert AnswerLink.objects.filter(task=task).count() == 1


def test_a_refused_email_waits_for_the_email_tasks_backoff(
    smtp_server, published, django_capture_on_commit_callbacks
):
    student, [employer] = student_with_recipients(("ja",))
    published.hold = True
    request = file_deletion(student, django_capture_on_commit_callbacks)
    task = request.tasks.get()
    published.clear()
    smtp_server.data_replies = ["451 4.3.0 try again later"]

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.recipient_tasks_send.apply(args=[[task.pk]]).get() == 1

    [row] = company_rows(employer)
    assert (row.status, row.attempts) == (EmailMessage.Status.QUEUED, 1)
    assert "451" in row.last_error
    assert row.queued_at is not None  # the retry below is its message in the queue
    assert published == [("portal.tasks.email_send", (row.pk,), retry_delay(1).total_seconds())]
    assert not smtp_server.received(employer.primary_contact.email)
    # A redelivered message does not send it before its backoff: it was tried already.
    with django_capture_on_commit_callbacks(execute=True):
        tasks.recipient_tasks_send.apply(args=[[task.pk]])
    assert smtp_server.attempts == 1

    published.hold = False
    with django_capture_on_commit_callbacks(execute=True):
        queueing.publish("portal.tasks.email_send", row.pk)  # the retry, when it is due
    [message] = smtp_server.received(employer.primary_contact.email)
    row.refresh_from_db()
    assert (row.status, row.attempts) == (EmailMessage.Status.SENT, 2)


def test_a_retry_the_broker_refuses_is_left_to_the_sweep(
    smtp_server, published, django_capture_on_commit_callbacks, monkeypatch
):
    student, [employer] = student_with_recipients(("ja",))
    published.hold = True
    request = file_deletion(student, django_capture_on_commit_callbacks)
    smtp_server.data_replies = ["421 4.7.0 too busy"]
    monkeypatch.setattr(portal.tasks, "publish", lambda *args, **kwargs: False)

    with django_capture_on_commit_callbacks(execute=True):
        tasks.recipient_tasks_send.apply(args=[[request.tasks.get().pk]])

    [row] = company_rows(employer)
    assert (row.status, row.attempts, row.queued_at) == (EmailMessage.Status.QUEUED, 1, None)


def test_filing_to_more_companies_costs_no_more_queries(django_capture_on_commit_callbacks):
    """The withdrawals of the student's grants are one INSERT and one UPDATE, whatever the
    number of companies; so is every other step of filing."""
    counts = []
    for number, languages in enumerate((("ja", "en"), ("ja", "en") * 4)):
        student, _ = student_with_recipients(languages, email=f"student{number}@example.jp")
        with CaptureQueriesContext(connection) as queries:
            with django_capture_on_commit_callbacks(execute=False):
                request = services.request_file(student=student, kind=DataRequest.Kind.DELETION)
        counts.append(len(queries))
        assert request.tasks.count() == len(languages)
        # Each state row points at its own new withdrawal, as the ledger says.
        for state in Consent.objects.filter(student=student).select_related("event"):
            assert state.granted is False
            assert state.event.action == ConsentEvent.Action.WITHDRAW
            assert state.event.employer_id == state.employer_id
            assert state.event.purpose_id == state.purpose_id
            assert state.event.student_id == student.pk
    assert counts[0] == counts[1], counts


SECRET_TAG = re.compile(r"· [0-9a-f]{8}\]")


def passed_on(request) -> dict:
    """What passing the request on left for each company, the request's reference blanked."""

    def blank(text: str) -> str:
        # A secret's placeholder names it by a random tag (portal/shared/sealing.py).
        return SECRET_TAG.sub("·", text.replace(request.reference, "R-…"))

    result = {}
    for task in request.tasks.select_related("email", "employer").order_by("employer__pk"):
        email = task.email
        result[task.employer.pk] = {
            "status": task.status,
            "sent": task.sent_at is not None,
            "queued_at": task.queued_at,
            "links": AnswerLink.objects.filter(task=task).count(),
            "email": email
            and (
                email.to,
                email.cc,
                email.language,
                email.status,
                email.last_error,
                blank(email.kind),
                blank(email.subject),
                blank(email.body_text),
                blank(email.body_html),
                bool(email.sealed_secrets),
            ),
            "events": sorted(
                RequestEvent.objects.filter(task=task).values_list("kind", "actor", "detail")
            ),
            "webhook deliveries": WebhookDelivery.objects.filter(task=task).count(),
        }
    return result


def test_passing_on_a_batch_leaves_what_passing_on_each_task_leaves(
    published, django_capture_on_commit_callbacks
):
    """The batch service and `recipient_task_send` agree, company by company: a company in
    Japanese, one in English with a second contact in Cc, one with no primary contact (its
    email stored failed, with the reason), one with a webhook; and a company on each other
    way of being told, with and without a webhook: an hourly and a daily digest (claimed,
    no email, no link, sent_at left for the digest) and the API alone (sent, an event, no
    email)."""
    Delivery = Employer.Delivery
    deliveries = [
        Delivery.EACH,
        Delivery.EACH,
        Delivery.EACH,
        Delivery.EACH,
        Delivery.HOURLY,
        Delivery.DAILY,
        Delivery.API,
        Delivery.HOURLY,
        Delivery.DAILY,
        Delivery.API,
    ]
    student, employers = student_with_recipients(("ja", "en") * 5)
    other, _ = student_with_recipients(("ja",) * 0, email="other@example.jp")
    for employer, delivery in zip(employers, deliveries, strict=True):
        Employer.objects.filter(pk=employer.pk).update(request_delivery=delivery)
        for purpose in Purpose.objects.filter(code="provision_to_employer"):
            consent_grant(student=other, employer=employer, purpose=purpose)
    PrivacyContact.objects.create(
        employer=employers[1], name="Legal", email="legal@example.co.jp", language="en"
    )
    PrivacyContact.objects.filter(employer=employers[2]).delete()
    for employer in (employers[3], *employers[7:]):
        Webhook.objects.create(
            employer=employer, endpoint="https://hooks.example.jp/portal", secret="s" * 32
        )
    published.hold = True
    one_by_one = file_deletion(student, django_capture_on_commit_callbacks)
    together = file_deletion(other, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True), emails_held() as held:
        for task in one_by_one.tasks.order_by("pk"):
            services.recipient_task_send(task_id=task.pk)
        sent = services.recipient_tasks_send(
            task_ids=list(together.tasks.values_list("pk", flat=True))
        )

    assert sorted(sent) == sorted(together.tasks.values_list("pk", flat=True))
    expected = passed_on(one_by_one)
    assert passed_on(together) == expected
    assert expected[employers[2].pk]["email"][3] == EmailMessage.Status.FAILED
    assert expected[employers[3].pk]["webhook deliveries"] == 1
    assert expected[employers[1].pk]["email"][1] == ["legal@example.co.jp"]
    # Each way of being told, as recipient_task_send leaves it (so the batch too).
    for employer, delivery in zip(employers[4:], deliveries[4:], strict=True):
        left = expected[employer.pk]
        assert (left["status"], left["email"], left["links"]) == (
            RecipientTask.Status.SENT,
            None,
            0,
        )
        assert left["sent"] is (delivery == Delivery.API)
        assert left["events"] == (
            [(RequestEvent.Kind.SENT, "system", f"{employer.name} (API)")]
            if delivery == Delivery.API
            else []
        )
        assert left["webhook deliveries"] == (employer in employers[7:])
    # The emails held for the worker to send: the four companies told by email (one
    # without a contact, stored failed) twice, the digest and API companies none.
    told = [employer.primary_contact.email for employer in employers[:2] + employers[3:4]]
    contacts = {e.primary_contact.email for e in employers if e is not employers[2]}
    assert sorted(m.to for m in held if m.to in contacts) == sorted(told * 2)


def test_a_batch_closes_the_tasks_of_a_request_closed_meanwhile_and_skips_sent_ones(
    published, django_capture_on_commit_callbacks
):
    student, _ = student_with_recipients(("ja", "en"))
    published.hold = True
    request = file_deletion(student, django_capture_on_commit_callbacks)
    first, second = request.tasks.order_by("pk")
    with django_capture_on_commit_callbacks(execute=True), emails_held():
        assert services.recipient_tasks_send(task_ids=[first.pk]) == [first.pk]
        DataRequest.objects.filter(pk=request.pk).update(status=DataRequest.Status.CANCELLED)

        assert services.recipient_tasks_send(task_ids=[first.pk, second.pk]) == []

    second.refresh_from_db()
    assert second.status == RecipientTask.Status.CLOSED
    assert not AnswerLink.objects.filter(task=second).exists()
    first.refresh_from_db()
    assert first.status == RecipientTask.Status.SENT
    assert AnswerLink.objects.filter(task=first).count() == 1


def shown(message) -> dict:
    """What the company reads: the secrets put back (or, for a message stored as failed,
    their placeholders without the message's own nonce)."""
    from portal.shared.sealing import reveal, unseal

    if not message.sealed_secrets:
        return {
            "subject": message.subject,
            "text": SECRET_TAG.sub("]", message.body_text),
            "html": SECRET_TAG.sub("]", message.body_html),
        }
    values = unseal(message.sealed_secrets)
    return {
        "subject": message.subject,
        "text": reveal(message.body_text, values),
        "html": reveal(message.body_html, values, html=True),
    }


@pytest.mark.parametrize("kind", [DataRequest.Kind.DELETION, DataRequest.Kind.CORRECTION])
def test_a_requests_company_emails_rendered_once_are_each_what_rendering_each_gives(kind):
    # The batch renders a request's email once per language and puts each company's contact
    # name and link in (portal/shared/emails.py, emails_compose_to_companies). What each
    # company receives must be what its own rendering gives, byte for byte: names that HTML
    # escapes, both languages, a company with no primary contact (stored as failed).
    from django.utils import timezone

    from portal.shared.emails import email_compose_to_company, emails_compose_to_companies
    from tests.factories import EmployerFactory, PrivacyContactFactory, UserFactory

    names = ['A&B "株式会社" <総務>', "O'Brien & Sons", "山田 太郎", "Plain"]
    employers = []
    for n, name in enumerate(names):
        employer = EmployerFactory(language=("ja", "en")[n % 2])
        employer.contacts.update(name=name)
        employers.append(Employer.objects.get(pk=employer.pk))
    nobody = EmployerFactory(primary=None, name="窓口なし <株式会社>")
    PrivacyContactFactory(employer=nobody, is_primary=False, email="cc@example.co.jp")
    employers.append(Employer.objects.get(pk=nobody.pk))
    request = DataRequest.objects.create(
        reference="R-261206-ABCDEF0123",
        student=UserFactory(),
        kind=kind,
        submitted_at=timezone.now(),
        due_at=timezone.now() + timezone.timedelta(days=30),
    )
    context = {"request": request, "link_days": 14}
    urls = [f"https://portal.example/r/token-{n}&x=<{n}>/" for n in range(len(employers))]

    batch = emails_compose_to_companies(
        employers=employers,
        template="company_request",
        context=context,
        secrets_each=[{"answer_url": url} for url in urls],
        kind="company_request:R",
    )
    for employer, url, together in zip(employers, urls, batch, strict=True):
        alone = email_compose_to_company(
            employer=employer,
            template="company_request",
            context={**context, "answer_url": url},
            kind="company_request:R",
            secrets=("answer_url",),
        )
        assert shown(together) == shown(alone), employer.name
        for field in ("to", "cc", "status", "last_error", "kind", "language"):
            assert getattr(together, field) == getattr(alone, field), field
        assert url not in together.body_text + together.body_html  # sealed, never stored
    assert batch[-1].status == EmailMessage.Status.FAILED
    assert "&amp;B &quot;株式会社&quot; &lt;総務&gt;" in batch[0].body_html
    assert "O&#x27;Brien &amp; Sons" in batch[1].body_html


def test_the_sites_own_systems_go_in_the_filings_one_message_and_the_worker_queues_each(
    published, django_capture_on_commit_callbacks, monkeypatch
):
    sources = [
        DataSource.objects.create(
            name=f"source {n}", holds="応募履歴", endpoint=f"https://s{n}.example.jp/", secret="s"
        )
        for n in range(2)
    ]
    student, employers = student_with_recipients(("ja", "en"))
    published.hold = True

    request = file_deletion(student, django_capture_on_commit_callbacks)

    # One message: the companies' tasks, the student's email and both sources' calls.
    source_tasks = sorted(request.source_tasks.values_list("pk", flat=True))
    assert len(source_tasks) == len(sources)
    [(name, (task_ids, email_ids, source_task_ids), _countdown)] = published
    assert name == enqueue.SEND_MANY
    assert len(task_ids) == len(employers) and len(email_ids) == 1
    assert sorted(source_task_ids) == source_tasks

    # The worker queues each call, one message each, before anything else; run again (a
    # redelivered message), each call is still claimed once.
    published.clear()
    with django_capture_on_commit_callbacks(execute=True):
        tasks.recipient_tasks_send.apply(args=(task_ids, email_ids, source_task_ids)).get()
    calls = [args for name, args, _countdown in published if name == enqueue.SOURCE_CALL]
    assert sorted(task_id for (task_id,) in calls) == source_tasks
    assert published.names()[: len(sources)] == [enqueue.SOURCE_CALL] * len(sources)
    called = []

    class Accepted:
        status_code, reason = 202, "Accepted"

    def post(url, **_kwargs):
        called.append(url)
        return Accepted()

    monkeypatch.setattr("disclosure.services.sources.requests.post", post)
    for (task_id,) in calls * 2:
        services.source_task_call(task_id=task_id)
    assert sorted(called) == sorted(s.endpoint for s in sources)


def test_a_refused_filing_message_leaves_the_sources_calls_to_the_sweep(
    monkeypatch, django_capture_on_commit_callbacks
):
    DataSource.objects.create(name="s", holds="h", endpoint="https://s.example.jp/", secret="s")
    student, _employers = student_with_recipients(("ja",))
    monkeypatch.setattr(queueing, "publish", lambda *args, **kwargs: False)

    request = file_deletion(student, django_capture_on_commit_callbacks)

    [source_task] = request.source_tasks.all()
    assert source_task.queued_at is None  # due: the next sweep queues it
    assert not request.tasks.exclude(queued_at=None).exists()
