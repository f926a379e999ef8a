"""Scenario 3: PostgreSQL restarts while the worker is passing a request on. The database is
a private cluster the test starts (a copy of the test database): the test process, the
worker and beat all use it, and the test stops and starts it mid-dispatch. The worker
recovers by itself (nobody restarts it) and no company gets its email twice or never."""

import asyncio
import time

import pytest
from django.db import connection

from portal.models import EmailMessage
from tests.factories import StaffFactory
from tests.faults.flows import (
    assert_each_company_once,
    english_browser,
    file_by_form,
    signed_in,
    staff_rows,
    student_and_companies,
    student_received,
    student_states,
    task_states,
)
from tests.faults.harness import PrivatePostgres, Stack, received_counts, wait_until
from tests.smtp import SmtpServer
from tests.workers import REAL_WORKER_MARKS

pytestmark = [*REAL_WORKER_MARKS, pytest.mark.faults]


class SlowSmtpServer(SmtpServer):
    """Takes a moment over each recipient, as a real relay may: dispatch lasts long enough
    for the database to go away in the middle of it, some emails handed over, some not."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await asyncio.sleep(0.12)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


@pytest.fixture
def slow_smtp():
    with SlowSmtpServer() as server:
        yield server


@pytest.fixture
def private_database(transactional_db):
    """Returns a function that copies the test database to a private cluster and points this
    process's connection at it; the connection goes back to the test database after (before
    pytest-django flushes that)."""
    cluster = PrivatePostgres()
    original = {key: connection.settings_dict[key] for key in ("HOST", "PORT")}

    def move() -> PrivatePostgres:
        connection.close()
        cluster.copy_database(connection.settings_dict)
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(cluster.port))
        return cluster

    try:
        cluster.start()
        yield move
    finally:
        connection.close()
        connection.settings_dict.update(original)
        cluster.destroy()


def test_postgresql_restarts_during_dispatch(broker, slow_smtp, tmp_path, private_database):
    smtp = slow_smtp
    student, employers, addresses = student_and_companies()
    staff = StaffFactory()
    cluster = private_database()
    stack = Stack(broker=broker, smtp=smtp, directory=tmp_path)
    try:
        worker = stack.worker()
        beat = stack.beat()
        client = signed_in(student)
        filed, _html = file_by_form(client, student)

        # Some companies' emails are out, most are not: the database goes away for a while.
        wait_until(
            lambda: len(received_counts(smtp, addresses)) >= 6,
            "the first emails",
            processes=(worker,),
        )
        cluster.stop("fast")  # every connection is cut, as on a restart or a fail-over
        down_at = time.monotonic()
        sent_before = len(received_counts(smtp, addresses))
        time.sleep(3)
        cluster.start()
        connection.close()
        print(f"database down {time.monotonic() - down_at:.1f} s after {sent_before} emails")
        assert sent_before < len(addresses), "dispatch finished before the restart"

        wait_until(
            lambda: (
                len(received_counts(smtp, addresses)) == len(addresses)
                and task_states(filed) == {"sent": len(employers)}
            ),
            "every company's email after the restart",
            processes=(worker, beat),
            details=lambda: (
                f"{task_states(filed)}; company emails "
                f"{list(EmailMessage.objects.filter(to__in=addresses).exclude(status='sent').values_list('pk', 'status', 'attempts', 'queued_at', 'claimed_at'))}; "
                f"received {len(received_counts(smtp, addresses))}"
            ),
        )
        wait_until(
            lambda: student_received(smtp, student, filed.reference) >= 1,
            "the student's receipt email",
            processes=(worker, beat),
        )
        time.sleep(5)  # more sweeps: nothing is sent again
        assert worker.process.poll() is None, "the worker died instead of recovering"

        assert_each_company_once(smtp, filed, addresses)
        assert student_received(smtp, student, filed.reference) == 1
        assert student_states(client, filed) == {
            "Sent; waiting for the company's answer": len(employers)
        }
        staff_client = english_browser()
        staff_client.force_login(staff)
        rows = staff_rows(staff_client, filed)
        assert all(row.split()[0] == "sent," for row in rows.values()), rows
    finally:
        stack.stop_all()
        connection.close()
