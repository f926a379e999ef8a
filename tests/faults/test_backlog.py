"""Scenario 8: 1,000 requests filed at once while a worker and a quick beat run. Every task
is dispatched and no email sent twice; and the queue never holds more than one message per
unit of due work: the sweeper, running every two seconds through a backlog that lasts
minutes, leaves alone work whose message is still waiting in the queue (the "queued at"
claim and its lease), instead of queueing it again and again.

The size: 1,000 requests to FAULTS_BACKLOG_COMPANIES companies each (2 by default; the
issue's 38 means 38,000 company emails, about an hour for one solo worker on two cores,
see the README). FAULTS_BACKLOG_REQUESTS and FAULTS_BACKLOG_COMPANIES set other sizes.
"""

import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.utils import timezone

from consent.models import ConsentEvent, ConsentScreen, Provision
from disclosure.models import DataRequest, RecipientTask
from disclosure.services import request_file
from portal.models import EmailMessage, User
from tests.factories import PASSWORD, EmployerFactory, opt_in_purposes, published_version
from tests.faults.flows import due_units, signed_in, staff_rows, student_states
from tests.faults.harness import SWEEPS, discarded_sweeps, wait_until
from tests.workers import REAL_WORKER_MARKS

pytestmark = [*REAL_WORKER_MARKS, pytest.mark.faults]

REQUESTS = int(os.environ.get("FAULTS_BACKLOG_REQUESTS", "1000"))
COMPANIES = int(os.environ.get("FAULTS_BACKLOG_COMPANIES", "1"))
FILERS = 4  # threads filing at once, as web processes would
SLACK = 10  # messages taken by the worker between the two halves of one sample


def students_whose_data_went_to(employers, count: int) -> list[User]:
    """`count` students, each with a provision to every company (bulk: the services would
    take longer than the scenario itself)."""
    _analysis, provision = opt_in_purposes()
    version = published_version(purposes=[provision])
    now = timezone.now()
    students = User.objects.bulk_create(
        [
            User(email=f"backlog{n}@example.jp", display_name=f"学生 {n}", language="ja")
            for n in range(count)
        ]
    )
    grants = ConsentEvent.objects.bulk_create(
        [
            ConsentEvent(
                student=student,
                employer=employer,
                purpose=provision,
                action=ConsentEvent.Action.GRANT,
                screen=ConsentScreen.CONSENT_PAGE,
                policy_version=version,
                language="ja",
                actor=ConsentEvent.Actor.STUDENT,
                occurred_at=now,
            )
            for student in students
            for employer in employers
        ]
    )
    Provision.objects.bulk_create(
        [
            Provision(
                student=grant.student,
                employer=grant.employer,
                purpose=provision,
                consent_event=grant,
                data_items="閲覧履歴の分析結果",
                provided_at=now,
            )
            for grant in grants
        ]
    )
    return students


class DueSampler:
    """Samples, in a thread with its own database connection, the queue's messages for work
    (everything but the sweeps themselves) and then the units of due work (unsent tasks and
    emails): the excess of the first over the second is what was queued twice."""

    def __init__(self, broker, *, interval: float = 0.2) -> None:
        self.broker = broker
        self.interval = interval
        self.samples: list[tuple[int, int]] = []  # (messages for work, units of due work)
        self.sweeps = 0  # the most sweep messages the queue held at once
        self.total = 0  # the longest the queue was
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                held = self.broker.queued_tasks()
                work = sum(n for name, n in held.items() if name not in SWEEPS)
                self.samples.append((work, due_units()))
                self.sweeps = max(self.sweeps, sum(held[name] for name in SWEEPS))
                self.total = max(self.total, sum(held.values()))
                self._stop.wait(self.interval)
        finally:
            connection.close()

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def worst_excess(self) -> tuple[int, int, int]:
        """(length - due, length, due) at the sample where the queue most exceeded the work."""
        return max(((length - due, length, due) for length, due in self.samples), default=(0, 0, 0))


def test_a_thousand_requests_filed_at_once(stack, smtp, staff_client):
    started = time.monotonic()
    employers = [EmployerFactory(language="ja") for _ in range(COMPANIES)]
    addresses = [e.primary_contact.email for e in employers]
    students = students_whose_data_went_to(employers, REQUESTS)
    set_up = time.monotonic() - started

    # A quick sweeper through a backlog that lasts minutes: today's sweep would queue the
    # waiting work again at every tick.
    worker = stack.worker(REQUESTS_SWEEP_SECONDS="2", EMAIL_SWEEP_SECONDS="2")
    beat = stack.beat(REQUESTS_SWEEP_SECONDS="2", EMAIL_SWEEP_SECONDS="2")

    def file(chunk: list[User]) -> int:
        try:
            for student in chunk:
                request_file(student=student, kind=DataRequest.Kind.DELETION, language="ja")
            return len(chunk)
        finally:
            connection.close()

    with DueSampler(stack.broker) as sampler:
        filing_started = time.monotonic()
        with ThreadPoolExecutor(FILERS) as pool:
            filed = sum(pool.map(file, [students[i::FILERS] for i in range(FILERS)]))
        filing = time.monotonic() - filing_started
        assert filed == REQUESTS
        tasks = RecipientTask.objects.filter(request__student__in=students)
        company_rows = EmailMessage.objects.filter(to__in=addresses)
        total = REQUESTS * COMPANIES

        wait_until(
            lambda: (
                tasks.filter(status="sent").count() == total
                and company_rows.filter(status="sent").count() == total
                and not EmailMessage.objects.filter(status="queued").exists()
            ),
            "every request dispatched and every email sent",
            timeout=900,
            poll=1,
            processes=(worker, beat),
            details=lambda: (
                f"tasks {Counter(tasks.values_list('status', flat=True))}; "
                f"company emails {Counter(company_rows.values_list('status', flat=True))}"
            ),
        )
        dispatch = time.monotonic() - filing_started
        time.sleep(4)  # two more sweeps with nothing due
    print(
        f"\n{REQUESTS} requests x {COMPANIES} companies: set-up {set_up:.1f} s, filing "
        f"{filing:.1f} s, all sent {dispatch:.1f} s after filing began; queue peak "
        f"{sampler.total} messages, {sampler.sweeps} of them sweeps at most; worst (work "
        f"messages - due units, work messages, due units) {sampler.worst_excess}; "
        f"{len(sampler.samples)} samples; {discarded_sweeps(stack.processes)} stale sweeps "
        "dropped unrun"
    )

    # All dispatched, none twice: one email per request per company, one per student.
    assert tasks.count() == total
    assert company_rows.count() == total
    with smtp._lock:
        received = Counter((m["To"], str(m["Subject"])) for m in smtp.messages)
    assert len(received) == total + REQUESTS
    assert set(received.values()) == {1}, [k for k, v in received.items() if v > 1][:5]
    # The queue never held more than one message per unit of due work.
    excess, length, due = sampler.worst_excess
    assert excess <= SLACK, f"the queue held {length} messages for {due} units of due work"

    # One of the thousand, as its student and staff see it.
    student = students[0]
    student.set_password(PASSWORD)
    student.save(update_fields=["password"])
    one = DataRequest.objects.get(student=student)
    assert student_states(signed_in(student), one) == {
        "Sent; waiting for the company's answer": COMPANIES
    }
    rows = staff_rows(staff_client, one)
    assert all(row.split()[0] == "sent," for row in rows.values()), rows
