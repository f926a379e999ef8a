"""The whole deletion flow with a REAL `celery worker` process, a real broker (Redis) and a
real SMTP server on loopback: filed → the portal's data erased → one email per company →
each link answered → request completed → the student emailed → a certificate PDF listing
every answer. And a worker SIGKILLed mid-dispatch, then replaced: every company still gets
its email exactly once. Runs in the suite's PostgreSQL + Redis pass."""

import asyncio
import io
import subprocess
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.db.models import F
from django.utils import translation
from pypdf import PdfReader

from consent.models import Consent, ConsentEvent, Provision
from disclosure.models import AnswerLink, DataRequest, RecipientTask, RequestEvent, RequestFile
from disclosure.services import link_lookup, recipient_task_answer, request_file
from disclosure.tasks import requests_sweep
from portal.celery import app
from portal.models import ActivityRecord, EmailMessage
from portal.shared.emails import email_queue_message
from portal.shared.queueing import lease
from portal.tasks import STALE_CLAIM, email_sweep
from tests.disclosure.test_dispatch import student_with_recipients, subject, token_of
from tests.smtp import SmtpServer
from tests.workers import REAL_WORKER_MARKS, LogFile, start_worker

pytestmark = REAL_WORKER_MARKS

DEADLINE = 60  # seconds, for every wait


# A real worker process ----------------------------------------------------------------------
def wait_until(condition, what: str, *, worker=None, smtp=None, poll: float = 0.05) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if worker is not None and worker.process.poll() is not None:
            pytest.fail(f"the worker exited ({worker.process.returncode}):\n{worker.output()}")
        if time.monotonic() > deadline:
            received = smtp.summary() if smtp is not None else "-"
            log = worker.output() if worker is not None else "-"
            pytest.fail(f"{what}: not within {DEADLINE} s\nreceived: {received}\nworker: {log}")
        time.sleep(poll)


class Worker:
    """`celery -A portal worker --pool=solo` against the test database and `smtp`."""

    def __init__(self, smtp: SmtpServer, log: Path, *, extra_env: dict | None = None) -> None:
        self.log = log
        # Appending: start reading where this worker's lines begin, not at an earlier
        # worker's " ready." in the same file.
        self.reader = LogFile(log, start=log.stat().st_size if log.exists() else 0)
        self.process = start_worker(smtp, log, mode="ab", extra_env=extra_env)
        self.wait_for(lambda: self.reader.has_printed(" ready."), "worker start-up")

    def wait_for(self, condition, what: str, *, smtp=None, poll: float = 0.05) -> None:
        wait_until(condition, what, worker=self, smtp=smtp, poll=poll)

    def output(self) -> str:
        return self.reader.tail(5000)

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no ack of the message it is working on."""
        self.process.kill()
        self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def clear_broker() -> None:
    """Drop messages left by earlier tests or runs, and the unacknowledged ones a killed
    worker held: Redis would hand those back to a worker an hour later."""
    app.control.purge()
    with app.connection_for_write() as conn:
        conn.default_channel.client.delete("unacked", "unacked_index", "unacked_mutex")


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def worker(transactional_db, smtp, tmp_path):
    clear_broker()
    running = Worker(smtp, tmp_path / "worker.log")
    try:
        yield running
    finally:
        running.stop()
        clear_broker()


def drain(worker: Worker, smtp: SmtpServer) -> None:
    """Wait until the worker has run everything queued so far: one worker, one queue, in
    order, so once a sentinel email queued now arrives, every earlier task has run."""
    to = f"sentinel-{uuid.uuid4().hex[:8]}@example.jp"
    email_queue_message(to=to, subject="sentinel", body_text="-", kind="test", language="ja")
    worker.wait_for(lambda: smtp.received(to), f"the sentinel email to {to}", smtp=smtp)


def squash(text: str) -> str:
    return "".join(text.split())


def pdf_text(content) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(bytes(content))).pages)


# The whole flow -------------------------------------------------------------------------------
def test_a_deletion_request_goes_from_filing_to_certificate_through_a_real_worker(worker, smtp):
    student, employers = student_with_recipients(("ja", "en", "ja"))
    assert ActivityRecord.objects.filter(student=student).count() == 3
    provisions = Provision.objects.filter(student=student).count()

    request = request_file(student=student, kind=DataRequest.Kind.DELETION)

    # The portal's own part is done before filing returns.
    assert request.status == DataRequest.Status.IN_PROGRESS
    assert request.portal_done_at is not None
    assert not ActivityRecord.objects.filter(student=student).exists()
    assert not Consent.objects.filter(student=student, granted=True).exists()
    assert (
        ConsentEvent.objects.filter(student=student, action=ConsentEvent.Action.WITHDRAW).count()
        == 3
    )
    assert Provision.objects.filter(student=student).count() == provisions  # kept, by law

    # The worker passes it on: one email per company, each with its own link.
    worker.wait_for(
        lambda: all(smtp.received(e.primary_contact.email) for e in employers),
        "an email to every company",
        smtp=smtp,
    )
    worker.wait_for(
        lambda: (
            not EmailMessage.objects.filter(to__in=[e.primary_contact.email for e in employers])
            .exclude(status=EmailMessage.Status.SENT)
            .exists()
        ),
        "every company email marked sent",
        smtp=smtp,
    )
    answers = {}
    for number, employer in enumerate(employers, start=1):
        [message] = smtp.received(employer.primary_contact.email)
        link = link_lookup(token=token_of(message))
        assert link is not None
        assert link.task.employer_id == employer.pk
        assert link.task.status == RecipientTask.Status.SENT
        answers[employer.pk] = (f"担当者{number}", f"Statement {number}: every copy is deleted.")
        answered_by, statement = answers[employer.pk]
        recipient_task_answer(
            task=link.task, answer="deleted", answered_by=answered_by, statement=statement
        )

    # The last answer completes the request; the worker makes the certificate and emails.
    request.refresh_from_db()
    assert request.status == DataRequest.Status.COMPLETED
    worker.wait_for(
        lambda: RequestFile.objects.filter(
            request=request, kind=RequestFile.Kind.CERTIFICATE_PDF
        ).exists(),
        "the certificate",
        smtp=smtp,
    )
    completion = EmailMessage.objects.get(kind=f"request_completed:{request.reference}")
    assert completion.to == student.email
    worker.wait_for(
        lambda: any(subject(m) == completion.subject for m in smtp.received(student.email)),
        "the student's completion email",
        smtp=smtp,
    )

    certificate = RequestFile.objects.get(request=request, kind=RequestFile.Kind.CERTIFICATE_PDF)
    assert certificate.content_type == "application/pdf"
    text = squash(pdf_text(certificate.content))
    assert squash(request.reference) in text
    with translation.override(student.language):
        deleted = squash(str(RecipientTask.Answer.DELETED.label))
    for employer in employers:
        answered_by, statement = answers[employer.pk]
        assert squash(employer.name) in text or squash(employer.name_en) in text
        assert squash(answered_by) in text
        assert squash(statement) in text
    assert text.count(deleted) >= len(employers)

    drain(worker, smtp)
    for employer in employers:  # still exactly one each: no reminder, no duplicate
        assert len(smtp.received(employer.primary_contact.email)) == 1
    assert [subject(m) for m in smtp.received(student.email)].count(completion.subject) == 1
    kinds = set(RequestEvent.objects.filter(request=request).values_list("kind", flat=True))
    assert {"submitted", "portal_done", "sent", "answered", "completed"} <= kinds


def test_a_company_answers_by_the_page_its_email_links_to(worker, smtp, client):
    student, [employer] = student_with_recipients(("ja",))
    request = request_file(student=student, kind=DataRequest.Kind.DELETION)
    worker.wait_for(
        lambda: smtp.received(employer.primary_contact.email), "the company email", smtp=smtp
    )
    [message] = smtp.received(employer.primary_contact.email)
    url = f"/r/{token_of(message)}/"

    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    for field in ('name="answer" ', 'value="deleted"', 'name="attestation"', 'name="answered_by"'):
        assert field in html
    answer = {"answer": "deleted", "attestation": "on", "answered_by": "人事部長 田中一郎"}
    response = client.post(url, answer)

    assert response.status_code == 302, response.content.decode()[:3000]
    task = request.tasks.get()
    assert task.status == RecipientTask.Status.ANSWERED, response.content.decode()[:2000]
    assert task.answer == RecipientTask.Answer.DELETED
    assert task.answered_via == RecipientTask.Via.LINK
    request.refresh_from_db()
    assert request.status == DataRequest.Status.COMPLETED
    worker.wait_for(
        lambda: RequestFile.objects.filter(
            request=request, kind=RequestFile.Kind.CERTIFICATE_PDF
        ).exists(),
        "the certificate",
        smtp=smtp,
    )
    assert squash(task.answered_by) in squash(
        pdf_text(request.files.get(kind=RequestFile.Kind.CERTIFICATE_PDF).content)
    )
    # The used link shows the recorded answer; it does not take a second one.
    again = client.get(url)
    assert again.status_code == 200
    assert task.answered_by in again.content.decode()
    assert client.post(url, {**answer, "answered_by": "someone else"}).status_code == 409
    assert RequestEvent.objects.filter(task=task, kind=RequestEvent.Kind.ANSWERED).count() == 1


# A worker killed mid-dispatch --------------------------------------------------------------------
class SlowSmtpServer(SmtpServer):
    """Takes `delay` seconds to accept each recipient, as a real relay may: a worker killed
    in that time dies before the message is handed over (DATA never starts)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await asyncio.sleep(self.delay)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


COMPANIES = 10


@pytest.mark.parametrize("kill_while", ["claiming the tasks", "delivering an email"])
def test_a_worker_killed_mid_dispatch_and_replaced_sends_every_company_one_email(
    kill_while, transactional_db, tmp_path
):
    student, employers = student_with_recipients(("ja",) * COMPANIES)
    addresses = [employer.primary_contact.email for employer in employers]
    company_rows = EmailMessage.objects.filter(to__in=addresses)

    def state() -> str:
        tasks = list(RecipientTask.objects.values_list("status", flat=True))
        rows = list(company_rows.values_list("status", flat=True))
        return f"tasks {sorted(tasks)}; company emails {sorted(rows)}"

    clear_broker()
    with SlowSmtpServer(delay=0.2) as smtp:
        first = Worker(smtp, tmp_path / "first.log")
        try:
            request = request_file(student=student, kind=DataRequest.Kind.DELETION)
            started = {
                # one task claimed and committed, the others waiting
                "claiming the tasks": RecipientTask.objects.filter(
                    request=request, status=RecipientTask.Status.SENT
                ).exists,
                # one email delivered, the next claimed and waiting for the SMTP server
                "delivering an email": lambda: (
                    company_rows.filter(status=EmailMessage.Status.SENDING).exists()
                    and company_rows.filter(status=EmailMessage.Status.SENT).exists()
                ),
            }[kill_while]
            first.wait_for(started, "the worker taking tasks", poll=0.005)
            first.kill()
        finally:
            first.stop()
        killed_at = state()
        assert (
            set(request.tasks.values_list("status", flat=True)) != {RecipientTask.Status.SENT}
            or company_rows.exclude(status=EmailMessage.Status.SENT).exists()
        ), f"the worker finished before it was killed: {killed_at}"

        # Time passes for the sweepers: what the dead worker held is now due again (the
        # sweepers re-queue work queued longer ago than the lease; the outbox sweeper frees
        # a claim older than STALE_CLAIM).
        gone = lease() + timedelta(minutes=1)
        RecipientTask.objects.filter(status=RecipientTask.Status.QUEUED).update(
            created_at=F("created_at") - gone, queued_at=F("queued_at") - gone
        )
        EmailMessage.objects.filter(status=EmailMessage.Status.QUEUED).update(
            created_at=F("created_at") - gone, queued_at=F("queued_at") - gone
        )
        EmailMessage.objects.filter(status=EmailMessage.Status.SENDING).update(
            created_at=F("created_at") - STALE_CLAIM * 2,
            claimed_at=F("claimed_at") - STALE_CLAIM - timedelta(minutes=1),
        )

        second = Worker(smtp, tmp_path / "second.log")
        try:
            requests_sweep.delay()  # as beat would
            email_sweep.delay()
            second.wait_for(
                lambda: (
                    all(smtp.received(to) for to in addresses)
                    and company_rows.count() == COMPANIES
                    and not company_rows.exclude(status=EmailMessage.Status.SENT).exists()
                ),
                f"every company's email after the restart (killed at: {killed_at})",
                smtp=smtp,
            )
            requests_sweep.delay()  # and again: nothing is left to do
            email_sweep.delay()
            for _ in range(3):  # a send queues its email task: let every chain finish
                drain(second, smtp)
        finally:
            second.stop()
            clear_broker()

    counts = {to: len(smtp.received(to)) for to in addresses}
    assert counts == dict.fromkeys(addresses, 1), f"killed at: {killed_at}"
    assert set(request.tasks.values_list("status", flat=True)) == {RecipientTask.Status.SENT}
    for task in request.tasks.all():
        assert AnswerLink.objects.filter(task=task).count() == 1
        assert RequestEvent.objects.filter(task=task, kind=RequestEvent.Kind.SENT).count() == 1
        [message] = smtp.received(task.employer.primary_contact.email)
        assert link_lookup(token=token_of(message)).task_id == task.pk
