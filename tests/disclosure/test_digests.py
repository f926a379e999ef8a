"""How companies are told (issue 19): each request by its own email, an hourly or a daily
digest at 09:00 Japan time, or the API alone with an email only when a request goes overdue;
reminders and overdue escalations gathered per company; told exactly once."""

import hashlib
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from backoffice.roles import SUPPORT
from disclosure.models import (
    CompanyDigest,
    DataRequest,
    DigestItem,
    RecipientTask,
    RequestEvent,
    WorkspaceEvent,
    WorkspaceLink,
)
from disclosure.services import recipient_task_send, requests_sweep
from disclosure.services.digests import LIST_LIMIT, company_digest_send, digest_period
from portal.models import EmailMessage, Employer
from tests.factories import EmployerFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKYO = ZoneInfo("Asia/Tokyo")
DAY = datetime(2026, 12, 7, tzinfo=TOKYO)  # a Monday
WORKSPACE_LINK = re.compile(r"/company/w/([A-Za-z0-9_-]+)/")


def at(hour: int, minute: int = 0, *, days: int = 0) -> datetime:
    return DAY + timedelta(days=days, hours=hour, minutes=minute)


def queued_tasks(employer, count: int, *, filed: datetime, kind="deletion") -> list[RecipientTask]:
    """`count` requests from different students, each passed to `employer` only, queued
    (not yet sent) as filing leaves them."""
    students = UserFactory.create_batch(min(count, 20))
    start = DataRequest.objects.count()
    requests = DataRequest.objects.bulk_create(
        DataRequest(
            reference=f"D-{start + n:06d}",
            student=students[n % len(students)],
            kind=kind,
            language="ja",
            submitted_at=filed,
            due_at=filed + timedelta(days=14),
        )
        for n in range(count)
    )
    return RecipientTask.objects.bulk_create(
        RecipientTask(request=r, employer=employer, created_at=filed, changed_at=filed)
        for r in requests
    )


def send_all(tasks) -> None:
    for task in tasks:
        assert recipient_task_send(task_id=task.pk)


def company_emails(employer) -> list[EmailMessage]:
    return list(EmailMessage.objects.filter(to=employer.primary_contact.email).order_by("pk"))


def digest_company(delivery) -> Employer:
    return EmployerFactory(request_delivery=delivery, contact_email="dpo@wave.example.jp")


def test_the_daily_digest_period_begins_at_nine_in_tokyo():
    assert digest_period("daily", at(8, 59)) == ("daily:2026-12-06", at(9, days=-1))
    assert digest_period("daily", at(9)) == ("daily:2026-12-07", at(9))
    assert digest_period("daily", at(23, 59)) == ("daily:2026-12-07", at(9))
    key, start = digest_period("hourly", at(10, 30))
    assert start == at(10) and key == "hourly:2026-12-07T01:00:00+00:00"


def test_five_hundred_new_requests_on_the_daily_digest_make_one_email_at_nine():
    company = digest_company(Employer.Delivery.DAILY)
    with time_machine.travel(at(7), tick=False):
        tasks = queued_tasks(company, 500, filed=at(7))
        send_all(tasks[:5])  # the worker claims them: no email, "waiting for the digest"
        RecipientTask.objects.filter(pk__in=[t.pk for t in tasks[5:]]).update(status="sent")
    assert company_emails(company) == []
    assert not RecipientTask.objects.filter(employer=company, sent_at__isnull=False).exists()

    assert requests_sweep(now=at(8, 55))["digests"] == []  # not yet nine
    made = requests_sweep(now=at(9, 2))["digests"]
    assert len(made) == 1
    [email] = company_emails(company)
    assert email.kind.startswith(f"company_digest:{company.pk}:daily:2026-12-07")
    body = email.body_text
    assert "500" in body and body.count("D-") == LIST_LIMIT  # 100 listed, the rest counted
    assert "400" in body
    # One workspace link, sealed in the row: only SMTP sees it (tests/security).
    assert not WORKSPACE_LINK.search(body) and "[secret 1" in body
    assert WorkspaceLink.objects.filter(employer=company).count() == 1
    assert not RecipientTask.objects.filter(employer=company, sent_at=None).exists()
    assert RequestEvent.objects.filter(kind="sent", task__employer=company).count() == 500

    # Later sweeps the same day tell nothing again, even a request filed meanwhile.
    with time_machine.travel(at(10), tick=False):
        send_all(queued_tasks(company, 1, filed=at(10)))
    assert requests_sweep(now=at(10, 5))["digests"] == []
    assert requests_sweep(now=at(23))["digests"] == []
    assert len(company_emails(company)) == 1
    # ... until nine the next day, with that one only.
    assert len(requests_sweep(now=at(9, 1, days=1))["digests"]) == 1
    latest = company_emails(company)[-1]
    assert latest.body_text.count("D-") == 1
    assert DigestItem.objects.filter(reason="new").count() == 501


def test_a_request_sent_in_the_digest_reaches_the_company_by_its_link(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    company = digest_company(Employer.Delivery.HOURLY)
    with time_machine.travel(at(10, 10), tick=False):
        [task] = queued_tasks(company, 1, filed=at(10, 10))
        send_all([task])
    student = Client(headers={"Accept-Language": "en"})
    student.force_login(task.request.student)
    page = reverse("disclosure:request_detail", args=[task.request.reference])
    assert "next summary email" in student.get(page).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        requests_sweep(now=at(11, 1))
    assert "Sent; waiting for the company" in student.get(page).content.decode()
    [message] = [m for m in mailoutbox if m.to == ["dpo@wave.example.jp"]]
    token = WORKSPACE_LINK.search(message.body).group(1)
    assert task.request.reference in message.body
    opened = client.post(reverse("disclosure:workspace_open", args=[token]))
    assert opened.status_code == 302
    page = client.get(opened.url)
    assert task.request.reference in page.content.decode()


def test_a_digests_link_replaces_the_earlier_digest_links_nobody_used(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    """An hourly digest leaves one unused link in the mailbox, not one an hour. A link
    already used keeps its session, and a link the contact asked for is left alone."""
    company = digest_company(Employer.Delivery.HOURLY)
    opened_in, unused, newest = Client(), Client(), Client()

    def digest_at(hour: int) -> str:
        with time_machine.travel(at(hour, 10), tick=False):
            send_all(queued_tasks(company, 1, filed=at(hour, 10)))
        mailoutbox.clear()
        with django_capture_on_commit_callbacks(execute=True):
            assert len(requests_sweep(now=at(hour + 1, 1))["digests"]) == 1
        [message] = [m for m in mailoutbox if m.to == ["dpo@wave.example.jp"]]
        return WORKSPACE_LINK.search(message.body).group(1)

    def opening(token: str) -> str:
        return reverse("disclosure:workspace_open", args=[token])

    first = digest_at(10)
    assert opened_in.post(opening(first)).status_code == 302  # used: its session goes on
    second = digest_at(11)
    with django_capture_on_commit_callbacks(execute=True):  # the contact asks for one
        client.post(reverse("disclosure:workspace_request"), {"email": "dpo@wave.example.jp"})
    asked = WorkspaceLink.objects.latest("pk")
    third = digest_at(12)

    # The replaced link says so; the newest opens; the used one's session goes on.
    gone = unused.post(opening(second))
    assert gone.status_code == 410 and "新しいまとめメール" in gone.content.decode()
    assert unused.get(opening(second)).status_code == 410
    assert newest.post(opening(third)).url == reverse("disclosure:workspace")
    assert opened_in.get(reverse("disclosure:workspace")).status_code == 200

    links = {
        name: WorkspaceLink.objects.get(token_sha256=hashlib.sha256(token.encode()).hexdigest())
        for name, token in (("first", first), ("second", second), ("third", third))
    }
    assert {name: link.origin for name, link in links.items()} == dict.fromkeys(links, "digest")
    assert links["second"].revoked_at == at(13, 1) and links["second"].revoked_by is None
    assert links["first"].revoked_at is None and links["third"].revoked_at is None
    assert WorkspaceLink.objects.get(pk=asked.pk).revoked_at is None
    assert list(WorkspaceEvent.objects.filter(kind="replaced").values_list("link", flat=True)) == [
        links["second"].pk
    ]


def test_reminders_are_gathered_in_the_digest_not_sent_one_by_one():
    company = digest_company(Employer.Delivery.HOURLY)
    with time_machine.travel(at(10), tick=False):
        tasks = queued_tasks(company, 3, filed=at(10))
        send_all(tasks)
    requests_sweep(now=at(11, 1))
    assert len(company_emails(company)) == 1
    # Three days after the digest that told them (11:01), in the next hour's digest: the
    # first reminder of all three, in one email.
    assert requests_sweep(now=at(11, 30, days=3))["digests"] == []
    made = requests_sweep(now=at(12, 1, days=3))["digests"]
    assert len(made) == 1
    assert requests_sweep(now=at(12, 2, days=3))["reminders"] == []
    emails = company_emails(company)
    assert [e.kind.split(":")[0] for e in emails] == ["company_digest", "company_digest"]
    assert "Reminder" in emails[-1].body_text or "督促" in emails[-1].body_text
    assert set(RecipientTask.objects.values_list("reminders_sent", flat=True)) == {1}
    # Day 7: the second, once.
    assert len(requests_sweep(now=at(12, 1, days=7))["digests"]) == 1
    assert requests_sweep(now=at(13, 1, days=7))["digests"] == []
    assert set(RecipientTask.objects.values_list("reminders_sent", flat=True)) == {2}
    assert RequestEvent.objects.filter(kind="reminded").count() == 6


def test_an_api_only_company_is_emailed_only_when_requests_go_overdue():
    company = digest_company(Employer.Delivery.API)
    with time_machine.travel(at(10), tick=False):
        tasks = queued_tasks(company, 4, filed=at(10))
        send_all(tasks)
    # Listed by the API at once: sent, no email, no reminders.
    assert RecipientTask.objects.filter(employer=company, sent_at__isnull=False).count() == 4
    assert RequestEvent.objects.filter(kind="sent", detail__endswith="(API)").count() == 4
    for days in (1, 3, 8, 13):
        summary = requests_sweep(now=at(11, days=days))
        assert summary["digests"] == [] and summary["reminders"] == []
    assert company_emails(company) == []
    # Overdue: one email to the company, one to staff, listing all four.
    summary = requests_sweep(now=at(11, days=15))
    assert len(summary["digests"]) == 1 and len(summary["escalated"]) == 4
    [to_company] = company_emails(company)
    assert to_company.kind.startswith(f"company_digest:{company.pk}:api:")
    assert all(t.request.reference in to_company.body_text for t in tasks)
    [to_staff] = EmailMessage.objects.filter(kind__startswith="tasks_overdue:")
    assert all(t.request.reference in to_staff.body_text for t in tasks)
    assert "4" in to_staff.subject
    # Nothing twice.
    summary = requests_sweep(now=at(12, days=15))
    assert summary["digests"] == [] and summary["escalated"] == []
    assert len(company_emails(company)) == 1
    assert EmailMessage.objects.filter(kind__startswith="tasks_overdue:").count() == 1


def test_the_same_digest_made_twice_tells_once():
    """Two sweeps at once (or one run again after its worker died): the second finds the
    period told, or the items taken (their unique constraint), and sends nothing."""
    company = digest_company(Employer.Delivery.DAILY)
    with time_machine.travel(at(7), tick=False):
        send_all(queued_tasks(company, 3, filed=at(7)))
    assert company_digest_send(employer_id=company.pk, now=at(9, 1)) is not None
    assert company_digest_send(employer_id=company.pk, now=at(9, 1)) is None
    assert company_digest_send(employer_id=company.pk, now=at(9, 2)) is None
    # A new period with nothing new to tell sends nothing either.
    assert company_digest_send(employer_id=company.pk, now=at(9, 1, days=1)) is None
    assert CompanyDigest.objects.count() == 1 and len(company_emails(company)) == 1


def test_a_company_back_on_its_own_emails_gets_the_waiting_requests_one_by_one():
    company = digest_company(Employer.Delivery.DAILY)
    with time_machine.travel(at(10), tick=False):
        tasks = queued_tasks(company, 2, filed=at(10))
        send_all(tasks)
    Employer.objects.filter(pk=company.pk).update(request_delivery=Employer.Delivery.EACH)
    summary = requests_sweep(now=at(10, 5))
    assert summary["told_alone"] == 2 and summary["digests"] == []
    kinds = [e.kind for e in company_emails(company)]
    assert sorted(kinds) == sorted(f"company_request:{t.request.reference}" for t in tasks)
    assert requests_sweep(now=at(10, 10))["told_alone"] == 0
    assert len(company_emails(company)) == 2


def test_the_contact_changes_the_delivery_in_the_workspace(
    client, mailoutbox, django_capture_on_commit_callbacks
):
    company = EmployerFactory(contact_email="dpo@acme.example.jp")
    from tests.disclosure.test_workspace import ASK, TOKEN

    with django_capture_on_commit_callbacks(execute=True):
        client.post(ASK, {"email": "dpo@acme.example.jp"})
    token = TOKEN.search(mailoutbox[-1].body).group(1)
    client.post(reverse("disclosure:workspace_open", args=[token]))
    page = client.get(reverse("disclosure:workspace")).content.decode()
    assert 'name="delivery" value="each"' in page and "checked" in page

    url = reverse("disclosure:workspace_delivery")
    bad = client.post(url, {"delivery": "weekly"})
    assert bad.status_code == 400 and "delivery-error" in bad.content.decode()
    assert Employer.objects.get(pk=company.pk).request_delivery == "each"

    saved = client.post(url, {"delivery": "daily"}, follow=True)
    assert Employer.objects.get(pk=company.pk).request_delivery == "daily"
    text = saved.content.decode()
    assert "daily" in text or "毎日" in text
    event = WorkspaceEvent.objects.get(kind="delivery")
    assert event.detail == "each → daily"
    assert AuditEntry.objects.filter(name="disclosure.workspace_delivery").count() == 1
    client.post(url, {"delivery": "daily"})
    assert WorkspaceEvent.objects.filter(kind="delivery").count() == 1


def test_staff_see_the_digests_and_set_the_delivery(client):
    company = digest_company(Employer.Delivery.DAILY)
    with time_machine.travel(at(7), tick=False):
        send_all(queued_tasks(company, 2, filed=at(7)))
    requests_sweep(now=at(9, 1))
    support = StaffFactory(is_superuser=False)
    support.groups.add(Group.objects.get(name=SUPPORT))
    client.force_login(support)
    listing = client.get(reverse("admin:disclosure_companydigest_changelist"))
    assert listing.status_code == 200 and company.name in listing.content.decode()
    assert client.get(reverse("admin:disclosure_webhookdelivery_changelist")).status_code == 200
    employers = client.get(
        reverse("admin:portal_employer_changelist"), {"request_delivery": "daily"}
    )
    assert company.name in employers.content.decode()


def test_the_digest_period_boundary_is_by_the_created_time_not_the_sweep_time():
    """A request filed after nine waits for the next day even if no digest went today."""
    company = digest_company(Employer.Delivery.DAILY)
    with time_machine.travel(at(10), tick=False):
        send_all(queued_tasks(company, 1, filed=at(10)))
    assert requests_sweep(now=at(10, 5))["digests"] == []
    assert requests_sweep(now=at(8, 59, days=1))["digests"] == []
    assert len(requests_sweep(now=at(9, 0, days=1))["digests"]) == 1


def test_a_digest_when_the_company_has_no_contact_is_stored_failed_for_staff():
    company = EmployerFactory(request_delivery=Employer.Delivery.DAILY, primary=None)
    with time_machine.travel(at(7), tick=False):
        send_all(queued_tasks(company, 1, filed=at(7)))
    [made] = requests_sweep(now=at(9, 1))["digests"]
    digest = CompanyDigest.objects.get(pk=made)
    assert digest.email.status == "failed" and "primary" in digest.email.last_error.lower()
    # The failed email is the staff's signal, as for a single request; no link was made.
    assert not WorkspaceLink.objects.filter(employer=company).exists()
