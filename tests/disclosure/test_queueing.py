"""The `queued_at` claims: work is queued once per unit, lost work is queued again after the
lease, a broker that refuses costs one attempt, and a lost report or certificate is rebuilt.

The broker is replaced here only where a real one cannot refuse on cue in-process; the
fault suite (tests/faults) does the same against a real redis-server it stops and flushes.
"""

from datetime import timedelta

import pytest
from celery import current_app
from django.utils import timezone
from kombu.exceptions import OperationalError

from disclosure import services
from disclosure.models import DataRequest, RecipientTask, RequestFile
from disclosure.services import request_file, requests_sweep
from portal.models import EmailMessage
from portal.shared import queueing
from portal.shared.queueing import claim_due, lease, publish_rows
from tests.disclosure.test_dispatch import file_deletion, student_with_recipients

pytestmark = pytest.mark.django_db


class Refusing:
    """The broker as a task's apply_async sees it when it is down; counts the attempts."""

    def __init__(self) -> None:
        self.attempts = 0

    def __call__(self, *args, **kwargs):
        self.attempts += 1
        raise OperationalError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")


@pytest.fixture
def broker_down(monkeypatch):
    refusing = Refusing()
    monkeypatch.setattr(queueing, "_broker_down_until", 0.0)
    # Not Celery's own setting: changing it here would outlive the test in the real-broker
    # tests that follow in the same process.
    monkeypatch.setattr(queueing, "_in_process", lambda: False)
    for name in (
        "portal.tasks.email_send",
        "disclosure.tasks.recipient_task_send",
        "disclosure.tasks.recipient_tasks_send",
    ):
        monkeypatch.setattr(current_app.tasks[name], "apply_async", refusing)
    return refusing


def test_with_the_broker_down_filing_tries_the_broker_once_and_leaves_every_row_to_the_sweep(
    broker_down, django_capture_on_commit_callbacks
):
    student, employers = student_with_recipients(("ja", "en", "ja"))

    request = file_deletion(student, django_capture_on_commit_callbacks)

    # Three company tasks and the student's email: one connection attempt, not four.
    assert broker_down.attempts == 1
    assert set(request.tasks.values_list("queued_at", flat=True)) == {None}
    received = EmailMessage.objects.get(kind=f"request_received:{request.reference}")
    assert received.queued_at is None
    assert received.status == EmailMessage.Status.QUEUED
    # So the next sweep queues every one of them, without waiting for a lease.
    queueing._broker_down_until = 0.0
    assert len(requests_sweep()["unsent"]) == 3


def test_the_sweep_claims_each_unit_once_and_again_only_after_the_lease(
    django_capture_on_commit_callbacks,
):
    student, _ = student_with_recipients(("ja", "en"))
    request = file_deletion(student, django_capture_on_commit_callbacks, execute=False)
    unsent = RecipientTask.objects.filter(status=RecipientTask.Status.QUEUED)
    now = timezone.now() + lease() + timedelta(seconds=1)

    first = claim_due(unsent, now=now, limit=1)
    second = claim_due(unsent, now=now, limit=10)  # a second beat, at the same moment

    assert len(first) == 1
    assert set(first) | set(second) == set(request.tasks.values_list("pk", flat=True))
    assert not set(first) & set(second)
    assert claim_due(unsent, now=now + lease() / 2, limit=10) == []
    assert sorted(claim_due(unsent, now=now + lease() * 2, limit=10)) == sorted(first + second)


def test_rows_the_broker_would_not_take_are_unclaimed_and_the_rest_stay_claimed(broker_down):
    student, _ = student_with_recipients(("ja", "en"))
    request = request_file(student=student, kind=DataRequest.Kind.DELETION)
    ids = sorted(request.tasks.values_list("pk", flat=True))

    assert publish_rows("disclosure.tasks.recipient_task_send", RecipientTask, ids) == 0

    assert set(RecipientTask.objects.filter(pk__in=ids).values_list("queued_at", flat=True)) == {
        None
    }


def test_a_disclosure_report_lost_with_the_queue_is_built_by_the_sweep(
    django_capture_on_commit_callbacks, smtp_server
):
    student, _ = student_with_recipients(("ja",))
    with django_capture_on_commit_callbacks(execute=False):
        request = request_file(student=student, kind=DataRequest.Kind.DISCLOSURE)
    request.refresh_from_db()
    assert request.portal_done_at is None and request.queued_at is not None

    assert requests_sweep()["reports"] == []  # its message is trusted to be in the queue
    with django_capture_on_commit_callbacks(execute=True):
        result = requests_sweep(now=timezone.now() + lease() + timedelta(minutes=1))

    assert result["reports"] == [request.pk]
    request.refresh_from_db()
    assert request.portal_done_at is not None
    assert request.queued_at is None
    assert request.files.filter(kind=RequestFile.Kind.REPORT_PDF).exists()


def test_a_certificate_lost_with_the_queue_is_built_by_the_sweep_once(
    django_capture_on_commit_callbacks, smtp_server
):
    student, _ = student_with_recipients(("ja",))
    request = file_deletion(student, django_capture_on_commit_callbacks)
    task = request.tasks.get()
    with django_capture_on_commit_callbacks(execute=False):  # the certificate's task is lost
        services.recipient_task_answer(task=task, answer="deleted", answered_by="人事部 田中")
    request.refresh_from_db()
    assert request.status == DataRequest.Status.COMPLETED
    certificates = request.files.filter(kind=RequestFile.Kind.CERTIFICATE_PDF)
    assert not certificates.exists()

    later = timezone.now() + lease() + timedelta(minutes=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert requests_sweep(now=later)["certificates"] == [request.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert requests_sweep(now=later + lease() * 2)["certificates"] == []

    assert certificates.count() == 1
