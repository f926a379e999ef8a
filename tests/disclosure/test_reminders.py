"""Reminders and escalation, with the clock moved by time-machine: a company that has not
answered is reminded after 3 and 7 days (settings.REQUEST_REMINDER_DAYS) with a new link
that replaces the old one, never a third time; past the request's due date its task
is marked overdue and support staff are emailed once; a company that answered hears nothing."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from disclosure.models import DataRequest, RecipientTask, RequestEvent
from disclosure.services import link_lookup, recipient_task_answer, requests_sweep
from portal.models import EmailMessage
from tests.disclosure.test_dispatch import (
    file_deletion,
    student_with_recipients,
    subject,
    token_of,
)

pytestmark = pytest.mark.django_db

NOTHING = {
    "unsent": [],
    "reminders": [],
    "escalated": [],
    "reports": [],
    "certificates": [],
    "source_calls": [],
    "sources_overdue": [],
    "webhook_deliveries": [],
    "told_alone": 0,
    "digests": [],
    "corrections_erased": [],
}

START = datetime(2026, 4, 1, 10, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def clock(time_machine):
    """Time starts at START and runs on; tests move it forward with `clock.shift(...)`."""
    time_machine.move_to(START)
    return time_machine


@pytest.fixture
def sweep(django_capture_on_commit_callbacks):
    """Run the periodic sweep as beat would, and whatever it queues, in this process."""

    def run() -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            return requests_sweep()

    return run


def test_the_reminder_days_are_3_and_7():
    assert settings.REQUEST_REMINDER_DAYS == [3, 7]


def test_a_silent_company_is_reminded_after_3_and_7_days_and_never_a_third_time(
    clock, sweep, smtp_server, django_capture_on_commit_callbacks
):
    student, [employer] = student_with_recipients(("en",))
    request = file_deletion(student, django_capture_on_commit_callbacks)
    task = request.tasks.get()
    inbox = lambda: smtp_server.received(employer.primary_contact.email)  # noqa: E731
    [first] = inbox()
    first_token = token_of(first)

    clock.shift(3 * DAY - MINUTE)
    assert sweep()["reminders"] == []
    assert len(inbox()) == 1

    clock.shift(2 * MINUTE)  # 3 days and a minute
    assert sweep()["reminders"] == [task.pk]
    assert sweep()["reminders"] == []  # the next run of beat finds nothing new
    [_, reminder] = inbox()
    reminder_row = EmailMessage.objects.get(kind=f"company_reminder:{request.reference}")
    assert subject(reminder) == reminder_row.subject
    assert request.reference in subject(reminder)
    reminder_token = token_of(reminder)
    assert reminder_token != first_token
    old, new = link_lookup(token=first_token), link_lookup(token=reminder_token)
    assert old.task_id == new.task_id == task.pk
    assert old.revoked_at == new.created_at  # the reminder's link replaced it
    assert new.revoked_at is None and new.expires_at > timezone.now()
    task.refresh_from_db()
    assert task.reminders_sent == 1
    assert task.last_reminder_at is not None
    assert task.email_id == reminder_row.pk
    assert task.status == RecipientTask.Status.SENT

    clock.shift(4 * DAY - 2 * MINUTE)  # 7 days less a minute
    assert sweep()["reminders"] == []
    assert len(inbox()) == 2

    clock.shift(2 * MINUTE)  # 7 days and a minute
    assert sweep()["reminders"] == [task.pk]
    assert sweep()["reminders"] == []
    assert len(inbox()) == 3
    assert token_of(inbox()[2]) not in (first_token, reminder_token)
    assert list(task.links.filter(revoked_at=None)) == [link_lookup(token=token_of(inbox()[2]))]

    # No third reminder, however long the company stays silent.
    for _ in range(4):
        clock.shift(5 * DAY)
        assert sweep()["reminders"] == []
    assert len(inbox()) == 3
    task.refresh_from_db()
    assert task.reminders_sent == 2
    assert RequestEvent.objects.filter(task=task, kind=RequestEvent.Kind.REMINDED).count() == 2


def test_after_a_reminder_the_first_link_is_replaced_and_the_reminders_link_answers(
    client, clock, sweep, smtp_server, django_capture_on_commit_callbacks
):
    student, [employer] = student_with_recipients(("ja",))
    request = file_deletion(student, django_capture_on_commit_callbacks)
    [first] = smtp_server.received(employer.primary_contact.email)
    clock.shift(3 * DAY + MINUTE)
    sweep()
    [_, reminder] = smtp_server.received(employer.primary_contact.email)
    old_page = reverse("disclosure:answer", args=[token_of(first)])
    new_page = reverse("disclosure:answer", args=[token_of(reminder)])

    gone = client.get(old_page)
    assert gone.status_code == 410
    assert "新しいリンクに置き換えられた" in gone.content.decode()
    assert request.reference in gone.content.decode() and "山田 花子" not in gone.content.decode()
    answer = {"answer": "deleted", "attestation": "on", "answered_by": "人事部 田中"}
    assert client.post(old_page, answer).status_code == 410
    assert request.tasks.get().answered_at is None
    assert client.get(new_page).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(new_page, answer).status_code == 302

    request.refresh_from_db()
    assert request.status == DataRequest.Status.COMPLETED
    # Answered once: every link of the task is spent, and no reminder follows.
    assert not request.tasks.get().links.filter(revoked_at=None).exists()
    clock.shift(5 * DAY)
    assert sweep() == NOTHING
    assert len(smtp_server.received(employer.primary_contact.email)) == 2


def test_a_company_that_answered_gets_no_reminder(
    clock, sweep, smtp_server, django_capture_on_commit_callbacks
):
    student, (answering, silent) = student_with_recipients(("ja", "en"))
    request = file_deletion(student, django_capture_on_commit_callbacks)
    clock.shift(DAY)
    [message] = smtp_server.received(answering.primary_contact.email)
    with django_capture_on_commit_callbacks(execute=True):
        recipient_task_answer(
            task=link_lookup(token=token_of(message)).task,
            answer="held_none",
            answered_by="人事部 鈴木",
        )
    silent_task = request.tasks.get(employer=silent)

    clock.shift(2 * DAY + MINUTE)
    assert sweep()["reminders"] == [silent_task.pk]
    clock.shift(4 * DAY)
    assert sweep()["reminders"] == [silent_task.pk]
    clock.shift(8 * DAY)  # past the due date too

    result = sweep()

    assert result["escalated"] == [silent_task.pk]
    assert len(smtp_server.received(answering.primary_contact.email)) == 1
    assert len(smtp_server.received(silent.primary_contact.email)) == 3
    answered = request.tasks.get(employer=answering)
    assert (answered.reminders_sent, answered.overdue) == (0, False)


def test_a_late_sweep_sends_one_reminder_not_two_at_once(
    clock, sweep, smtp_server, django_capture_on_commit_callbacks
):
    # Beat was down from day 1 to day 8: the company gets one reminder now, not the 3-day
    # and the 7-day ones in the same minute (nor the second five minutes after the first).
    student, [employer] = student_with_recipients(("ja",))
    request = file_deletion(student, django_capture_on_commit_callbacks)

    clock.shift(8 * DAY)
    sweep()
    clock.shift(5 * MINUTE)
    sweep()

    assert len(smtp_server.received(employer.primary_contact.email)) == 2
    assert request.tasks.get().reminders_sent == 1


def test_past_the_due_date_the_task_is_overdue_and_support_is_emailed_once(
    clock, sweep, smtp_server, django_capture_on_commit_callbacks
):
    student, [employer] = student_with_recipients(("ja",))
    request = file_deletion(student, django_capture_on_commit_callbacks)
    assert request.due_at - request.submitted_at == timedelta(days=settings.REQUEST_DUE_DAYS)
    task = request.tasks.get()
    for days in (3, 7):  # beat ran on time: the reminders went out
        clock.move_to(request.submitted_at + days * DAY + MINUTE)
        sweep()

    clock.move_to(request.due_at - MINUTE)
    assert sweep()["escalated"] == []
    task.refresh_from_db()
    assert not task.overdue
    assert smtp_server.received(settings.SUPPORT_EMAIL) == []

    clock.move_to(request.due_at + MINUTE)
    result = sweep()

    assert result == {**NOTHING, "escalated": [task.pk]}
    task.refresh_from_db()
    assert task.overdue
    assert task.escalated_at is not None
    assert task.status == RecipientTask.Status.SENT  # still waiting for the company
    [event] = RequestEvent.objects.filter(task=task, kind=RequestEvent.Kind.OVERDUE)
    assert event.actor == RequestEvent.Actor.SYSTEM
    [escalation] = smtp_server.received(settings.SUPPORT_EMAIL)
    assert request.reference in subject(escalation)
    body = escalation.get_body(preferencelist=("plain",)).get_content()
    assert employer.name in body
    assert f"/admin/disclosure/datarequest/{request.pk}/change/" in body
    request.refresh_from_db()
    assert request.status == DataRequest.Status.IN_PROGRESS

    # Beat keeps running: support is not emailed again, the timeline has one entry.
    for shift in (5 * MINUTE, DAY, 10 * DAY):
        clock.shift(shift)
        assert sweep()["escalated"] == []
    assert len(smtp_server.received(settings.SUPPORT_EMAIL)) == 1
    assert RequestEvent.objects.filter(task=task, kind=RequestEvent.Kind.OVERDUE).count() == 1
    assert len(smtp_server.received(employer.primary_contact.email)) == 3  # request + 2 reminders
