"""What a real `celery worker` keeps between tasks: its PostgreSQL connection (Celery's Django
fixup used to close it around every task) and its SMTP connection; and how it replaces
either when the other side went away meanwhile, without sending anything twice. Runs in the
suite's PostgreSQL + Redis pass."""

import subprocess
import time
from pathlib import Path

import pytest
from django.db import connection

from portal.celery import app
from portal.models import EmailMessage
from portal.shared.emails import email_queue_message
from tests.portal.test_mail_connection import CountingSmtpServer
from tests.workers import REAL_WORKER_MARKS, LogFile, start_worker

pytestmark = REAL_WORKER_MARKS

DEADLINE = 30  # seconds


class Worker:
    def __init__(self, smtp, log: Path) -> None:
        self.log = log
        self.process = start_worker(smtp, log)
        self.wait_for(lambda: LogFile(log).has_printed(" ready."), "worker start-up")

    def wait_for(self, condition, what: str) -> None:
        deadline = time.monotonic() + DEADLINE
        while not condition():
            if self.process.poll() is not None:
                pytest.fail(f"the worker exited ({self.process.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{what} not within {DEADLINE} s; worker log:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def smtp():
    with CountingSmtpServer() as server:
        yield server


@pytest.fixture
def worker(transactional_db, smtp, tmp_path):
    app.control.purge()  # nothing left by earlier tests reaches this worker
    running = Worker(smtp, tmp_path / "worker.log")
    try:
        yield running
    finally:
        running.stop()


def others() -> set[int]:
    """The backends connected to the test database other than this process's own: the
    worker's, here."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return {pid for (pid,) in cursor.fetchall()}


def send(worker: Worker, smtp: CountingSmtpServer, to: str) -> EmailMessage:
    """Queue an email (autocommit: to the broker at once) and wait until it is sent."""
    message = email_queue_message(
        to=to, subject="件名", body_text="本文", kind="test", language="ja"
    )
    worker.wait_for(
        lambda: EmailMessage.objects.get(pk=message.pk).status == EmailMessage.Status.SENT,
        f"the email to {to} sent",
    )
    return message


def test_the_worker_keeps_one_database_and_one_smtp_connection_across_tasks(worker, smtp):
    send(worker, smtp, "first@example.jp")
    kept = others()

    for n in range(4):
        send(worker, smtp, f"next{n}@example.jp")
        assert others() == kept, "the worker opened another database connection"

    assert len(kept) == 1
    assert smtp.connections == 1
    assert len(smtp.messages) == 5


def test_a_database_connection_that_died_is_replaced_and_the_task_runs_once(worker, smtp):
    send(worker, smtp, "first@example.jp")
    [dead] = others()
    with connection.cursor() as cursor:  # as PostgreSQL restarting or a fail-over would
        cursor.execute("SELECT pg_terminate_backend(%s)", [dead])

    message = send(worker, smtp, "after@example.jp")

    assert len(smtp.received("after@example.jp")) == 1
    message.refresh_from_db()
    assert message.attempts == 1  # the health check replaced it: no failed attempt, no retry
    assert "retry" not in worker.output().lower()
    assert dead not in others()


def test_an_smtp_connection_the_server_closed_is_reopened_and_the_email_sent_once(worker, smtp):
    smtp.drop_after_data = True
    send(worker, smtp, "first@example.jp")  # accepted; then the server closes the connection

    message = send(worker, smtp, "after@example.jp")

    assert len(smtp.received("after@example.jp")) == 1
    assert smtp.attempts == 2
    assert smtp.connections == 2
    message.refresh_from_db()
    assert message.attempts == 1
