"""The broker fails: down when the student files (scenario 1), flushed with the tasks still
queued (scenario 2). The request is kept either way and, once the broker is back, the
sweepers send every company its email exactly once."""

import time

import pytest

from tests.faults.flows import (
    assert_each_company_once,
    file_by_form,
    lease_passes,
    signed_in,
    staff_rows,
    student_and_companies,
    student_received,
    student_states,
    task_states,
)
from tests.faults.harness import received_counts, wait_until
from tests.workers import REAL_WORKER_MARKS

pytestmark = [*REAL_WORKER_MARKS, pytest.mark.faults]

WAITING = "Waiting to be sent"
SENT = "Sent; waiting for the company's answer"


def test_broker_down_when_the_student_files(stack, smtp, staff_client):
    student, employers, addresses = student_and_companies()
    client = signed_in(student)
    stack.broker.stop()

    started = time.monotonic()
    filed, html = file_by_form(client, student)
    filing = time.monotonic() - started

    # The request is kept and the portal's part done; nothing could be queued.
    assert filing < 15, f"filing took {filing:.1f} s with the broker down"
    assert "is filed" in html
    assert task_states(filed) == {"queued": len(employers)}
    assert student_states(client, filed) == {WAITING: len(employers)}
    rows = staff_rows(staff_client, filed)
    assert all(row.split()[0] == "queued" for row in rows.values()), rows

    # The broker comes back (empty: it lost nothing it ever held); a worker and beat run.
    stack.broker.start()
    worker = stack.worker()
    beat = stack.beat()
    lease_passes()
    wait_until(
        lambda: (
            len(received_counts(smtp, addresses)) == len(addresses)
            and task_states(filed) == {"sent": len(employers)}
        ),
        "every company's email after the broker returned",
        processes=(worker, beat),
        details=lambda: f"{task_states(filed)}; received {received_counts(smtp, addresses)}",
    )
    wait_until(
        lambda: student_received(smtp, student, filed.reference) >= 1,
        "the student's receipt email",
        processes=(worker, beat),
    )
    time.sleep(5)  # two more sweeps of each kind: nothing is sent again

    assert_each_company_once(smtp, filed, addresses)
    assert student_received(smtp, student, filed.reference) == 1
    assert student_states(client, filed) == {SENT: len(employers)}
    rows = staff_rows(staff_client, filed)
    assert all(row.split()[0] == "sent," for row in rows.values()), rows


def test_broker_flushed_with_the_tasks_queued(stack, smtp, staff_client):
    student, employers, addresses = student_and_companies()
    client = signed_in(student)
    # No worker yet: the tasks wait in the queue.
    filed, _html = file_by_form(client, student)
    queued = stack.broker.queue_length()
    assert queued >= len(employers), queued
    assert student_states(client, filed) == {WAITING: len(employers)}

    stack.broker.flush()
    assert stack.broker.queue_length() == 0
    worker = stack.worker()
    beat = stack.beat()
    time.sleep(3)  # sweeps run: the rows were queued moments ago, so they leave them be
    assert task_states(filed) == {"queued": len(employers)}
    assert not received_counts(smtp, addresses)

    lease_passes()  # the lease on the lost messages runs out: the sweepers queue them again
    wait_until(
        lambda: (
            len(received_counts(smtp, addresses)) == len(addresses)
            and task_states(filed) == {"sent": len(employers)}
        ),
        "every company's email after the flush",
        processes=(worker, beat),
        details=lambda: f"{task_states(filed)}; received {received_counts(smtp, addresses)}",
    )
    wait_until(
        lambda: student_received(smtp, student, filed.reference) >= 1,
        "the student's receipt email",
        processes=(worker, beat),
    )
    time.sleep(5)

    assert_each_company_once(smtp, filed, addresses)
    assert student_received(smtp, student, filed.reference) == 1
    assert student_states(client, filed) == {SENT: len(employers)}
    rows = staff_rows(staff_client, filed)
    assert all(row.split()[0] == "sent," for row in rows.values()), rows
