"""A real `celery worker` process, a real broker and a real SMTP server: the outbox delivers
each message once, however often its task is queued, and the sweeper sends what no task
was queued for. Runs in the suite's PostgreSQL + Redis pass."""

import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from portal.celery import app
from portal.models import EmailMessage
from portal.shared.emails import email_queue_message
from portal.tasks import email_send, email_sweep
from tests.smtp import SmtpServer
from tests.workers import REAL_WORKER_MARKS, LogFile, start_worker

pytestmark = REAL_WORKER_MARKS

DEADLINE = 30  # seconds


class Worker:
    def __init__(self, process: subprocess.Popen, log: Path) -> None:
        self.process = process
        self.log = log

    def wait_for(self, condition, what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited ({self.process.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what} not within {DEADLINE} s; worker log:\n{self.output()}")
            time.sleep(0.1)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]


@pytest.fixture(scope="module")
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture(scope="module")
def worker(django_db_setup, smtp, tmp_path_factory):
    # Messages left on the queue by earlier tests or runs would otherwise reach this worker.
    app.control.purge()
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    process = start_worker(smtp, log)
    running = Worker(process, log)
    try:
        reader = LogFile(log)
        running.wait_for(lambda: reader.has_printed(" ready."), "worker start-up")
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def queue(to: str) -> EmailMessage:
    return email_queue_message(
        to=to, subject="受付のお知らせ", body_text="本文", kind="test", language="ja"
    )


def status_of(message: EmailMessage) -> str:
    return EmailMessage.objects.values_list("status", flat=True).get(pk=message.pk)


def test_the_worker_sends_a_queued_email_once_however_often_its_task_arrives(worker, smtp):
    first = queue("first@example.jp")  # autocommit: queued to the broker at once

    worker.wait_for(lambda: smtp.received("first@example.jp"), "the first email")
    worker.wait_for(lambda: status_of(first) == EmailMessage.Status.SENT, "first marked sent")

    # A broker redelivers and a sweeper may queue again: the claim makes these no-ops.
    email_send.delay(first.pk)
    email_send.delay(first.pk)
    # One worker, one queue, in order: once the sentinel is in, both duplicates were run.
    queue("sentinel@example.jp")
    worker.wait_for(lambda: smtp.received("sentinel@example.jp"), "the sentinel email")

    assert len(smtp.received("first@example.jp")) == 1
    first.refresh_from_db()
    assert first.attempts == 1
    assert first.sent_at is not None


def test_a_message_no_task_was_queued_for_is_sent_by_the_sweeper(worker, smtp):
    # As after a broker outage: the row was committed, its task never reached the broker.
    lost = EmailMessage.objects.create(
        to="lost@example.jp",
        subject="件名",
        body_text="本文",
        kind="test",
        language="ja",
        created_at=timezone.now() - timedelta(minutes=5),
    )

    email_sweep.delay()

    worker.wait_for(lambda: smtp.received("lost@example.jp"), "the swept email")
    worker.wait_for(lambda: status_of(lost) == EmailMessage.Status.SENT, "swept marked sent")
    assert len(smtp.received("lost@example.jp")) == 1
