"""Passing a request on to the companies, with Celery tasks run in this process (SQLite and
PostgreSQL): one email per company, in its language, with its own /r/<token>/ link and no
personal data; a task run twice does its work once; a task lost with the broker is picked
up by the sweeper; an SMTP server that refuses for a while loses nothing and sends nothing
twice, and one that never accepts leaves the company's task `failed`."""

import re
import smtplib
from datetime import timedelta

import pytest
from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from consent.models import ConsentEvent
from consent.services import consent_grant, provision_record
from disclosure import tasks
from disclosure.models import AnswerLink, DataRequest, RecipientTask, RequestEvent
from disclosure.services import link_lookup, recipient_task_send, request_file, requests_sweep
from portal.models import EmailMessage, Employer, User
from portal.shared.queueing import lease
from portal.tasks import MAX_ATTEMPTS, email_send, email_sweep
from tests.factories import (
    ActivityRecordFactory,
    EmployerFactory,
    opt_in_purposes,
    student_who_accepted,
)
from tests.smtp import html_of, text_of

pytestmark = pytest.mark.django_db

# secrets.token_urlsafe(32): 256 bits are 43 URL-safe base64 characters.
TOKEN = re.compile(r"/r/([A-Za-z0-9_-]{43,})/")
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


# Helpers, also used by test_reminders.py and test_worker_flow.py --------------------------
def student_with_recipients(
    languages=("ja", "en"), *, display_name="山田 花子", email="hanako.yamada@example.jp"
) -> tuple[User, list[Employer]]:
    """A student whose data went to one company per language given (a grant, a provision)."""
    analysis, provision = opt_in_purposes()
    student, _version = student_who_accepted(
        analysis, provision, display_name=display_name, email=email
    )
    employers = [EmployerFactory(language=language) for language in languages]
    for employer in employers:
        consent_grant(student=student, employer=employer, purpose=provision)
        provision_record(
            student=student, employer=employer, purpose=provision, data_items="閲覧履歴の分析結果"
        )
        ActivityRecordFactory(student=student, employer=employer)
    return student, employers


def token_of(message) -> str:
    [token] = set(TOKEN.findall(text_of(message)))
    return token


def file_deletion(student, capture, *, execute: bool = True) -> DataRequest:
    """File a deletion request. `execute=False` drops the tasks queued on commit, as a broker
    that lost them would."""
    with capture(execute=execute):
        return request_file(student=student, kind=DataRequest.Kind.DELETION)


def subject(message) -> str:
    return " ".join(str(message["Subject"]).split())


def company_rows(employer) -> list[EmailMessage]:
    return list(EmailMessage.objects.filter(to=employer.primary_contact.email).order_by("pk"))


# Filing ---------------------------------------------------------------------------------
def test_filing_sends_each_company_one_email_with_its_own_link_and_no_personal_data(
    smtp_server, django_capture_on_commit_callbacks
):
    student, employers = student_with_recipients(("ja", "en"))

    request = file_deletion(student, django_capture_on_commit_callbacks)

    tasks_by_employer = {task.employer_id: task for task in request.tasks.all()}
    assert set(tasks_by_employer) == {employer.pk for employer in employers}
    tokens = set()
    for employer in employers:
        [message] = smtp_server.received(employer.primary_contact.email)
        task = tasks_by_employer[employer.pk]
        text, html = text_of(message), html_of(message)
        token = token_of(message)
        assert f"{settings.SITE_URL}/r/{token}/" in text
        assert f"/r/{token}/" in html
        link = link_lookup(token=token)
        assert link is not None and link.task_id == task.pk
        assert token not in link.token_sha256  # only its hash is stored
        assert link.expires_at - link.created_at == timedelta(days=settings.ANSWER_LINK_DAYS)
        tokens.add(token)

        # A reference, and nothing that says who the student is.
        whole = "\n".join([message["Subject"], text, html])
        assert request.reference in message["Subject"]
        assert request.reference in text
        for personal in (student.display_name, "山田", "花子", student.email, "hanako.yamada"):
            assert personal not in whole

        [row] = company_rows(employer)
        assert row.status == EmailMessage.Status.SENT
        assert row.language == employer.primary_contact.language
        task.refresh_from_db()
        assert task.status == RecipientTask.Status.SENT
        assert task.sent_at is not None
        assert task.email_id == row.pk
        assert not task.failed
    assert len(tokens) == len(employers)
    assert RequestEvent.objects.filter(request=request, kind=RequestEvent.Kind.SENT).count() == 2


def test_each_company_email_is_in_the_companys_language(
    smtp_server, django_capture_on_commit_callbacks
):
    student, (ja_company, en_company) = student_with_recipients(("ja", "en"))

    file_deletion(student, django_capture_on_commit_callbacks)

    [en] = smtp_server.received(en_company.primary_contact.email)
    assert "Please open the link below" in text_of(en)
    assert not JAPANESE.search(en["Subject"])
    [ja] = smtp_server.received(ja_company.primary_contact.email)
    # The contact's name is Japanese in both; everything around it must be too.
    assert "Please open the link below" not in text_of(ja)
    assert JAPANESE.search(ja["Subject"]), ja["Subject"]
    assert ja["Subject"] != en["Subject"].replace(en_company.name, ja_company.name)


def test_the_student_gets_one_email_that_says_what_was_received_and_receipts_each_withdrawal(
    smtp_server, django_capture_on_commit_callbacks
):
    student, employers = student_with_recipients(("ja", "en", "ja"))

    request = file_deletion(student, django_capture_on_commit_callbacks)

    # One email, not the request's and a separate consent receipt at the same moment.
    [received] = smtp_server.received(student.email)
    assert request.reference in subject(received)
    withdrawals = ConsentEvent.objects.filter(
        student=student, action=ConsentEvent.Action.WITHDRAW
    ).select_related("employer")
    assert len(withdrawals) == len(employers)
    for body in (text_of(received), html_of(received)):
        assert "3件の同意を直ちにオフにしました" in body
        for event in withdrawals:
            assert f"/consents/receipts/{event.receipt_id}/" in body
            assert event.employer.name in body
    assert not EmailMessage.objects.filter(to=student.email, kind="consent_change").exclude(
        created_at__lt=request.submitted_at
    )


def test_a_request_that_withdraws_nothing_lists_no_receipts(django_capture_on_commit_callbacks):
    student, _employers = student_with_recipients(("ja",))
    with django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=student, kind=DataRequest.Kind.DISCLOSURE)

    received = EmailMessage.objects.get(kind=f"request_received:{request.reference}")
    assert received.status == EmailMessage.Status.SENT
    assert request.reference in received.body_text
    assert "同意を直ちにオフ" not in received.body_text
    assert "/consents/receipts/" not in received.body_text + received.body_html


# Idempotence and lost tasks ---------------------------------------------------------------
def test_running_the_send_task_twice_sends_one_email_and_makes_one_link(
    smtp_server, django_capture_on_commit_callbacks
):
    student, [employer] = student_with_recipients(("ja",))
    request = file_deletion(student, django_capture_on_commit_callbacks, execute=False)
    task = request.tasks.get()

    # A redelivered message and a sweeper's re-queue: the same task arrives twice.
    with django_capture_on_commit_callbacks(execute=True):
        first = tasks.recipient_task_send.apply(args=[task.pk])
        second = tasks.recipient_task_send.apply(args=[task.pk])
    assert (first.get(), second.get()) == (True, False)
    assert recipient_task_send(task_id=task.pk) is False

    assert len(smtp_server.received(employer.primary_contact.email)) == 1
    assert len(company_rows(employer)) == 1
    assert AnswerLink.objects.filter(task=task).count() == 1
    assert RequestEvent.objects.filter(task=task, kind=RequestEvent.Kind.SENT).count() == 1


def test_a_task_lost_with_the_broker_is_picked_up_by_the_sweeper_and_sent_once(
    smtp_server, django_capture_on_commit_callbacks, time_machine
):
    student, employers = student_with_recipients(("ja", "en"))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        request = request_file(student=student, kind=DataRequest.Kind.DELETION)
    assert callbacks  # queued on commit, and thrown away here
    assert smtp_server.attempts == 0
    task_ids = sorted(request.tasks.values_list("pk", flat=True))
    assert set(request.tasks.values_list("status", flat=True)) == {RecipientTask.Status.QUEUED}

    # A task queued a moment ago is left to the message queued for it.
    with django_capture_on_commit_callbacks(execute=True):
        assert requests_sweep()["unsent"] == []
    assert smtp_server.attempts == 0

    # Still within the lease of the lost message: the sweep trusts it is in the queue.
    with django_capture_on_commit_callbacks(execute=True):
        assert requests_sweep(now=timezone.now() + lease() / 2)["unsent"] == []
    assert smtp_server.attempts == 0

    later = timezone.now() + lease() + timedelta(minutes=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert sorted(requests_sweep(now=later)["unsent"]) == task_ids
    with django_capture_on_commit_callbacks(execute=True):
        assert requests_sweep(now=later + timedelta(minutes=5))["unsent"] == []

    for employer in employers:
        assert len(smtp_server.received(employer.primary_contact.email)) == 1
        assert len(company_rows(employer)) == 1
    assert AnswerLink.objects.filter(task__request=request).count() == 2
    assert set(request.tasks.values_list("status", flat=True)) == {RecipientTask.Status.SENT}

    # The student's "request received" email was lost the same way: the outbox sweeper sends it.
    received = EmailMessage.objects.get(kind=f"request_received:{request.reference}")
    assert received.status == EmailMessage.Status.QUEUED
    time_machine.move_to(timezone.now() + lease() + timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        email_sweep()
        email_sweep()
    received.refresh_from_db()
    assert received.status == EmailMessage.Status.SENT
    assert [m for m in smtp_server.received(student.email) if subject(m) == received.subject]
    assert len([m for m in smtp_server.messages if subject(m) == received.subject]) == 1


# SMTP down, then up -------------------------------------------------------------------------
def sent_but_undelivered(student, employer, capture) -> RecipientTask:
    """The task is claimed and its email row committed, but no email task ran yet."""
    request = file_deletion(student, capture, execute=False)
    task = request.tasks.get()
    with capture(execute=False):
        assert recipient_task_send(task_id=task.pk)
    return RecipientTask.objects.select_related("email").get(pk=task.pk)


def test_smtp_refusing_then_accepting_delivers_the_company_email_once(
    smtp_server, django_capture_on_commit_callbacks, time_machine
):
    student, [employer] = student_with_recipients(("ja",))
    task = sent_but_undelivered(student, employer, django_capture_on_commit_callbacks)
    message = task.email
    smtp_server.data_replies = ["451 4.3.0 try later", "421 4.7.0 too busy"]

    # Each call is one worker's attempt; it would schedule a retry, which the broker loses.
    for attempt, code in ((1, "451"), (2, "421")):
        with pytest.raises(smtplib.SMTPDataError):
            email_send(message.pk)
        message.refresh_from_db()
        assert message.status == EmailMessage.Status.QUEUED
        assert message.attempts == attempt
        assert code in message.last_error
        assert message.sent_at is None
        assert not RecipientTask.objects.select_related("email").get(pk=task.pk).failed
    assert smtp_server.messages == []

    # Its retry is not due yet: the sweeper leaves it.
    with django_capture_on_commit_callbacks(execute=True):
        email_sweep()
    assert smtp_server.received(employer.primary_contact.email) == []

    # The server is back, and the retry is overdue: the sweeper sends it, once.
    time_machine.move_to(timezone.now() + timedelta(minutes=10))
    with django_capture_on_commit_callbacks(execute=True):
        email_sweep()
        email_sweep()
        email_send.apply(args=[message.pk])

    [delivered] = smtp_server.received(employer.primary_contact.email)
    assert link_lookup(token=token_of(delivered)).task_id == task.pk
    message.refresh_from_db()
    assert message.status == EmailMessage.Status.SENT
    assert message.attempts == 3
    assert message.last_error == ""
    task = RecipientTask.objects.select_related("email").get(pk=task.pk)
    assert task.status == RecipientTask.Status.SENT
    assert not task.failed


def test_the_email_task_retries_a_refusal_and_every_email_of_the_filing_goes_once(
    smtp_server, django_capture_on_commit_callbacks
):
    student, employers = student_with_recipients(("ja", "en"))
    smtp_server.data_replies = ["451 4.3.0 try later", "421 4.7.0 too busy"]
    before = EmailMessage.objects.aggregate(last=Max("pk"))["last"] or 0

    file_deletion(student, django_capture_on_commit_callbacks)

    for employer in employers:
        assert len(smtp_server.received(employer.primary_contact.email)) == 1
        [row] = company_rows(employer)
        assert row.status == EmailMessage.Status.SENT
    rows = EmailMessage.objects.filter(pk__gt=before)  # everything the filing queued
    assert set(rows.values_list("status", flat=True)) == {EmailMessage.Status.SENT}
    assert len(smtp_server.messages) == rows.count()
    assert smtp_server.attempts == len(smtp_server.messages) + 2


def test_after_the_last_failed_attempt_the_company_task_is_failed(
    smtp_server, django_capture_on_commit_callbacks
):
    student, [employer] = student_with_recipients(("ja",))
    task = sent_but_undelivered(student, employer, django_capture_on_commit_callbacks)
    smtp_server.data_replies = ["451 4.3.0 try later"] * MAX_ATTEMPTS

    with django_capture_on_commit_callbacks(execute=True):
        email_send.apply(args=[task.email_id])

    assert smtp_server.attempts == MAX_ATTEMPTS
    assert smtp_server.messages == []
    task = RecipientTask.objects.select_related("email").get(pk=task.pk)
    assert task.email.status == EmailMessage.Status.FAILED
    assert "451" in task.email.last_error
    assert task.failed
    assert RecipientTask.objects.filter(pk=task.pk, status=RecipientTask.Status.SENT).exists()
    # Failed stays failed (staff decide): the sweepers do not try again.
    with django_capture_on_commit_callbacks(execute=True):
        email_sweep()
        requests_sweep(now=timezone.now() + timedelta(minutes=5))
    assert smtp_server.attempts == MAX_ATTEMPTS
