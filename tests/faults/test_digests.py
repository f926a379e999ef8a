"""Digests under the faults the per-request emails survive (issue 19): the broker flushed
with the requests' messages in it, two beats sweeping at once, and the worker killed while
it makes the digests. Each company on the hourly digest (an "hour" of a few seconds here)
gets one digest listing each of its requests, then one with their first reminders, and no
email of its own per request."""

import time

import pytest

from consent.models import Consent
from consent.services import consent_grant, provision_record
from disclosure.models import CompanyDigest, DataRequest, DigestItem, RecipientTask
from disclosure.services import request_file
from portal.models import EmailMessage, Employer
from tests.factories import UserFactory, accept
from tests.faults.flows import advance, claims_go_stale, lease_passes, student_and_companies
from tests.faults.harness import mails_by_kind, wait_until
from tests.workers import REAL_WORKER_MARKS

pytestmark = [*REAL_WORKER_MARKS, pytest.mark.faults]

COMPANIES = 12
STUDENTS = 3
HOUR = 4  # seconds: DIGEST_HOUR_SECONDS for the workers


def students_of(first, employers, count: int) -> list:
    """`count` students whose data went to the same companies as `first`'s."""
    consent = Consent.objects.filter(student=first).select_related("purpose").first()
    version = first.policy_acceptances.latest("accepted_at").version
    students = [first]
    for n in range(1, count):
        student = UserFactory(email=f"wave{n}@example.jp")
        accept(student, version)
        for employer in employers:
            consent_grant(student=student, employer=employer, purpose=consent.purpose)
            provision_record(
                student=student,
                employer=employer,
                purpose=consent.purpose,
                data_items="閲覧履歴の分析結果",
            )
        students.append(student)
    return students


def bodies(smtp, address: str) -> list[str]:
    return [m.get_body(("plain",)).get_content() for m in smtp.received(address)]


def test_each_company_gets_each_digest_once_through_a_flush_two_beats_and_a_kill(stack, smtp):
    began = time.monotonic()
    first, employers, addresses = student_and_companies(COMPANIES)
    Employer.objects.filter(pk__in=[e.pk for e in employers]).update(
        request_delivery=Employer.Delivery.HOURLY
    )
    students = students_of(first, employers, STUDENTS)
    EmailMessage.objects.filter(status=EmailMessage.Status.QUEUED).update(
        status=EmailMessage.Status.SENT
    )

    # Filed with no worker running; the broker then loses every message it held.
    requests = [request_file(student=s, kind=DataRequest.Kind.DELETION) for s in students]
    references = {r.reference for r in requests}
    assert stack.broker.queue_length() >= STUDENTS * COMPANIES
    stack.broker.flush()
    lease_passes()  # past the queue's lease: the sweeps take the tasks again

    set_up = time.monotonic() - began
    hour = {"DIGEST_HOUR_SECONDS": str(HOUR)}
    worker = stack.worker(**hour)
    beats = [stack.beat(**hour), stack.beat(**hour)]

    # The worker is killed (SIGKILL) while the sweep makes the digests, some made, some not.
    caught = []

    def some_made() -> bool:
        made = CompanyDigest.objects.count()
        if made:
            caught.append(made)
        return bool(made)

    wait_until(some_made, "the first digest", processes=(worker, *beats), poll=0.005)
    worker.kill()
    # What the killed worker held waits for the sweepers: an email it had claimed for the
    # stale-claim sweep (ten minutes), one whose message it had taken for the queue's lease
    # (it failed CI once, a company never told, the kill landing mid-send). Those minutes
    # pass here, as they would after a real kill.
    lease_passes()
    claimed = claims_go_stale()
    print(f"worker killed with {caught[0]} of {COMPANIES} digests made, {claimed} emails claimed")
    worker = stack.worker(**hour)

    def every_company_told() -> bool:
        return all(len(smtp.received(a)) >= 1 for a in addresses)

    wait_until(
        every_company_told,
        "a digest at every company",
        processes=(worker, *beats),
        details=lambda: f"received {[len(smtp.received(a)) for a in addresses]}",
    )
    told = time.monotonic() - began
    time.sleep(2 * HOUR)  # two more periods, two beats sweeping every 2 s: nothing new

    for address in addresses:
        [body] = bodies(smtp, address)  # one email: the digest, no request of its own
        assert all(reference in body for reference in references), body
    kinds = mails_by_kind(smtp, addresses)
    assert all(k == ["company_digest"] for k in kinds.values()), kinds
    assert DigestItem.objects.filter(reason="new").count() == STUDENTS * COMPANIES
    assert not RecipientTask.objects.filter(sent_at=None).exists()
    assert not EmailMessage.objects.filter(kind__startswith="company_request:").exists()

    # Three simulated days on: one more digest each, with the first reminders, once.
    advance(3.01)
    wait_until(
        lambda: all(len(smtp.received(a)) >= 2 for a in addresses),
        "the reminders' digest at every company",
        processes=(worker, *beats),
        details=lambda: f"received {[len(smtp.received(a)) for a in addresses]}",
    )
    time.sleep(2 * HOUR)
    for address in addresses:
        _told, reminders = bodies(smtp, address)
        assert all(reference in reminders for reference in references), reminders
    assert set(RecipientTask.objects.values_list("reminders_sent", flat=True)) == {1}
    assert DigestItem.objects.filter(reason="reminder_1").count() == STUDENTS * COMPANIES
    assert CompanyDigest.objects.count() == 2 * COMPANIES
    print(
        f"set-up {set_up:.1f} s, every company's digest at {told:.1f} s, "
        f"done at {time.monotonic() - began:.1f} s"
    )
    for beat in beats:  # both really swept
        assert beat.has_printed("Sending due task requests-sweep"), beat.output()
