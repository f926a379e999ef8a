"""The sweeper's faults: two beat processes at once (scenario 5), and the worker away for
ten simulated days while beat goes on (scenario 7). Either way each company gets each
reminder once, in order, and each overdue task is escalated to staff once."""

import re
import time

import pytest
from django.conf import settings

from disclosure.models import RecipientTask, RequestEvent
from portal.models import EmailMessage
from tests.faults.flows import (
    advance,
    assert_each_company_once,
    file_by_form,
    signed_in,
    staff_rows,
    student_and_companies,
    student_sees,
)
from tests.faults.harness import (
    SWEEPS,
    QueueSampler,
    discarded_sweeps,
    mails_by_kind,
    wait_until,
)
from tests.workers import REAL_WORKER_MARKS

pytestmark = [*REAL_WORKER_MARKS, pytest.mark.faults]

SWEEP = 2  # seconds between sweeps (REQUESTS_SWEEP_SECONDS, EMAIL_SWEEP_SECONDS)


def kinds_of(smtp, addresses) -> dict[str, list[str]]:
    return mails_by_kind(smtp, addresses)


def wait_for_kinds(smtp, addresses, expected: list[str], what: str, stack) -> None:
    wait_until(
        lambda: all(k == expected for k in kinds_of(smtp, addresses).values()),
        what,
        processes=tuple(stack.processes_running()),
        details=lambda: f"received {sorted(set(map(tuple, kinds_of(smtp, addresses).values())))}",
    )


def escalations(smtp, filed) -> list:
    return [
        m for m in smtp.received(settings.SUPPORT_EMAIL) if filed.reference in str(m["Subject"])
    ]


def remind_tasks_received(stack) -> int:
    """How many reminder tasks the workers took from the queue, from their logs."""
    pattern = re.compile(r"Task disclosure\.tasks\.recipient_task_remind\[[^\]]+\] received")
    return sum(p.reader.count(pattern) for p in stack.processes if p.name.startswith("worker"))


def assert_reminded_in_order(
    filed, employers, smtp, addresses, *, second_with_escalation: bool = False
) -> None:
    """Request, first reminder, second reminder: each once, in that order, for every
    company; and one escalation to staff per company, after the due date."""
    expected = ["company_request", "company_reminder", "company_reminder"]
    assert kinds_of(smtp, addresses) == dict.fromkeys(addresses, expected)
    for task in RecipientTask.objects.filter(request=filed):
        assert task.reminders_sent == 2
        assert task.overdue and task.escalated_at is not None
        events = list(
            RequestEvent.objects.filter(task=task)
            .order_by("at", "pk")
            .values_list("kind", flat=True)
        )
        if second_with_escalation:
            # Both fell due at the same sweep: the escalation is written by the sweep itself,
            # the reminder by the task it queued, a moment later.
            assert events[:2] == ["sent", "reminded"], events
            assert sorted(events[2:]) == ["overdue", "reminded"], events
        else:
            assert events == ["sent", "reminded", "reminded", "overdue"], events
    assert len(escalations(smtp, filed)) == len(employers)
    assert EmailMessage.objects.filter(kind=f"task_overdue:{filed.reference}").count() == len(
        employers
    )


def test_two_beats_at_once_remind_and_escalate_once(stack, smtp, staff_client):
    student, employers, addresses = student_and_companies()
    worker = stack.worker()
    beats = [stack.beat(), stack.beat()]
    client = signed_in(student)
    filed, _html = file_by_form(client, student)
    wait_for_kinds(smtp, addresses, ["company_request"], "every company's request", stack)
    assert_each_company_once(smtp, filed, addresses)

    with QueueSampler(stack.broker) as queue:
        advance(3.01)  # the first reminder is due
        wait_for_kinds(
            smtp, addresses, ["company_request", "company_reminder"], "the first reminders", stack
        )
        time.sleep(3 * SWEEP)  # both beats sweep again: nothing more is due
        assert kinds_of(smtp, addresses) == dict.fromkeys(
            addresses, ["company_request", "company_reminder"]
        )
        advance(4.01)  # day 7: the second
        wait_for_kinds(
            smtp,
            addresses,
            ["company_request", "company_reminder", "company_reminder"],
            "the second reminders",
            stack,
        )
        advance(7.01)  # day 14: past due, escalated to staff
        wait_until(
            lambda: len(escalations(smtp, filed)) >= len(employers),
            "an escalation per company",
            processes=(worker, *beats),
        )
        time.sleep(3 * SWEEP)

    for beat in beats:  # both really swept
        assert beat.has_printed("Sending due task requests-sweep"), beat.output()
    assert_reminded_in_order(filed, employers, smtp, addresses)
    # Each reminder queued once, though two beats looked for due work at every tick.
    assert remind_tasks_received(stack) == 2 * len(employers)
    print(f"queue peak {queue.peak} messages")

    cards = student_sees(client, filed)
    assert all("2 reminders sent." in c and "Overdue" in c for c in cards.values()), cards
    rows = staff_rows(staff_client, filed)
    assert all(re.search(r" 2 ", row) for row in rows.values()), rows


def test_the_worker_away_for_ten_simulated_days(stack, smtp, staff_client):
    student, employers, addresses = student_and_companies()
    worker = stack.worker()
    beat = stack.beat()
    client = signed_in(student)
    filed, _html = file_by_form(client, student)
    wait_for_kinds(smtp, addresses, ["company_request"], "every company's request", stack)
    worker.stop()

    # Ten days without a worker; beat goes on queueing its sweeps, which nobody runs.
    away_since = time.monotonic()
    with QueueSampler(stack.broker) as away:
        for _day in range(10):
            advance(1)
            time.sleep(SWEEP + 0.2)
    waiting = stack.broker.queued_tasks()
    sweeps_waiting = sum(waiting.values())
    # Only beat's sweeps, one per entry per interval: no work was queued meanwhile.
    assert set(waiting) <= SWEEPS, waiting
    assert sweeps_waiting <= 2 * ((time.monotonic() - away_since) / SWEEP + 2), waiting
    assert kinds_of(smtp, addresses) == dict.fromkeys(addresses, ["company_request"])

    # The worker returns: the first reminder only (the second waits its four days; the
    # due date is day 14), once each, however many sweeps were waiting for it.
    with QueueSampler(stack.broker) as back:
        stack.worker()
        wait_for_kinds(
            smtp, addresses, ["company_request", "company_reminder"], "the first reminders", stack
        )
        time.sleep(3 * SWEEP)
        assert kinds_of(smtp, addresses) == dict.fromkeys(
            addresses, ["company_request", "company_reminder"]
        )
        assert not escalations(smtp, filed)

        advance(4.01)  # day 14: the second reminder and the escalation, once each
        wait_for_kinds(
            smtp,
            addresses,
            ["company_request", "company_reminder", "company_reminder"],
            "the second reminders",
            stack,
        )
        wait_until(
            lambda: len(escalations(smtp, filed)) >= len(employers),
            "an escalation per company",
            processes=(beat,),
        )
        time.sleep(3 * SWEEP)

    # The first reminder came late (day 10), so the second, four days after it, is due on
    # the due date, with the escalation.
    assert_reminded_in_order(filed, employers, smtp, addresses, second_with_escalation=True)
    assert remind_tasks_received(stack) == 2 * len(employers), "reminders queued twice"
    # The sweeps that piled up while it was away were dropped, but for the newest ones.
    assert discarded_sweeps(stack.processes) >= sweeps_waiting - 4, stack.logs()
    # No flood: the queue held the waiting sweeps and at most one message per company for
    # each step due (on day 14: its second reminder, and the escalation's email to staff).
    assert back.peak <= sweeps_waiting + 2 * len(employers) + 4, (back.peak, sweeps_waiting)
    print(f"queue: {away.peak} while away, peak {back.peak} after the return")

    cards = student_sees(client, filed)
    assert all("2 reminders sent." in c and "Overdue" in c for c in cards.values()), cards
    rows = staff_rows(staff_client, filed)
    assert all(re.search(r" 2 ", row) for row in rows.values()), rows
