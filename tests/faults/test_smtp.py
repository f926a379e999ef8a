"""Scenario 4: the mail relay answers 421 and 451 for a while, then 250; one company's
address gets 550. Every other company gets its email exactly once, after the retry; the
refused one is failed at once (a 5xx is not asked again), and staff and the student see
that it failed and why."""

import time

import pytest

from portal.models import EmailMessage
from tests.faults.flows import (
    file_by_form,
    signed_in,
    staff_rows,
    student_and_companies,
    student_received,
    student_sees,
    task_states,
)
from tests.faults.harness import Stack, received_counts, wait_until
from tests.smtp import SmtpServer
from tests.workers import REAL_WORKER_MARKS

pytestmark = [*REAL_WORKER_MARKS, pytest.mark.faults]

REFUSED = "550 5.1.1 <{address}>: Recipient address rejected: User unknown"


class FlakySmtpServer(SmtpServer):
    """Says "try later" (421 and 451 in turn) to every message while `try_later` is set;
    refuses the addresses in `unknown` with a 550, always."""

    def __init__(self) -> None:
        super().__init__()
        self.unknown: set[str] = set()
        self.try_later = False
        self.refused = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.unknown:
            return REFUSED.format(address=address)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server, session, envelope):
        with self._lock:
            if self.try_later:
                self.attempts += 1
                self.refused += 1
                return ("421 4.3.2 Service not available", "451 4.3.0 Try again later")[
                    self.refused % 2
                ]
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def flaky_smtp():
    with FlakySmtpServer() as server:
        yield server


def test_the_relay_says_try_later_then_accepts_and_one_address_is_unknown(
    transactional_db, broker, flaky_smtp, tmp_path, staff_client
):
    smtp = flaky_smtp
    student, employers, addresses = student_and_companies()
    unknown = employers[5]
    smtp.unknown = {unknown.primary_contact.email}
    reachable = [a for a in addresses if a != unknown.primary_contact.email]
    stack = Stack(broker=broker, smtp=smtp, directory=tmp_path)
    try:
        worker = stack.worker()
        beat = stack.beat()
        smtp.try_later = True
        client = signed_in(student)
        started = time.monotonic()
        filed, _html = file_by_form(client, student)
        wait_until(
            lambda: (
                EmailMessage.objects.filter(to=unknown.primary_contact.email).first()
                and EmailMessage.objects.get(to=unknown.primary_contact.email).status == "failed"
            ),
            "the unknown address failed",
            processes=(worker, beat),
        )
        # "Try later" until every company's email was refused once; then 250. The first
        # retry comes 30 s after the refusal (portal.tasks.retry_delay).
        company_rows = EmailMessage.objects.filter(to__in=reachable)
        wait_until(
            lambda: company_rows.filter(attempts=1, status="queued").count() == len(reachable),
            "a first attempt at every company's email",
            processes=(worker, beat),
        )
        assert not received_counts(smtp, reachable)
        smtp.try_later = False
        print(f"relay accepts again {time.monotonic() - started:.1f} s after filing")
        wait_until(
            lambda: len(received_counts(smtp, reachable)) == len(reachable),
            "every reachable company's email after the relay recovered",
            processes=(worker, beat),
            details=lambda: (
                f"{smtp.try_later} try-later replies; received {received_counts(smtp, reachable)}"
            ),
        )
        wait_until(
            lambda: student_received(smtp, student, filed.reference) >= 1,
            "the student's receipt email",
            processes=(worker, beat),
        )
        print(f"every email out {time.monotonic() - started:.1f} s after filing")
        time.sleep(4)  # more sweeps: nothing is sent again
    finally:
        stack.stop_all()

    # Every other company: exactly one email, after the retry.
    others = filed.tasks.exclude(employer=unknown)
    counts = received_counts(smtp, reachable)
    assert counts == dict.fromkeys(reachable, 1), counts
    assert not smtp.received(unknown.primary_contact.email)
    assert task_states(filed) == {"sent": len(employers)}
    rows = EmailMessage.objects.filter(kind=f"company_request:{filed.reference}")
    assert rows.filter(status="sent").count() == len(reachable)
    # Refused once, accepted at the first retry: not tried again and again.
    assert set(rows.filter(status="sent").values_list("attempts", flat=True)) == {2}
    [failed] = rows.filter(status="failed")
    assert failed.to == unknown.primary_contact.email
    assert failed.attempts == 1  # a 550 is not asked again
    assert "550" in failed.last_error and "User unknown" in failed.last_error
    assert student_received(smtp, student, filed.reference) == 1
    assert others.count() == len(reachable)

    # The student sees it failed and why; the others sent.
    cards = student_sees(client, filed)
    problem = cards[filed.tasks.get(employer=unknown).pk]
    assert "The email could not be delivered" in problem
    assert "The company's mail server refused it." in problem
    for task in others:
        assert "Sent; waiting for the company's answer" in cards[task.pk]
    # Staff see it failed, with the relay's answer.
    rows = staff_rows(staff_client, filed)
    row = rows.pop(unknown.name)
    assert "SMTPRecipientsRefused" in row and "(550," in row and "User unknown" in row, row
    assert not [r for r in rows.values() if "550" in r or "SMTP" in r], rows
