"""What a scenario does and checks: file on the real form, read the student's and the staff's
request pages, move simulated time, count what each company received."""

import re
from collections import Counter
from datetime import timedelta

from django.db.models import F
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from disclosure.models import AnswerLink, DataRequest, RecipientTask, RequestEvent
from disclosure.services import link_lookup
from portal.models import EmailMessage
from portal.tasks import STALE_CLAIM
from tests.disclosure.test_dispatch import student_with_recipients, token_of
from tests.factories import PASSWORD
from tests.faults.harness import mails_by_kind
from tests.smtp import SmtpServer

COMPANIES = 38  # the figure: one student's data went to 38 companies


def student_and_companies(count: int = COMPANIES):
    """A student whose data went to `count` companies; returns them and their addresses."""
    student, employers = student_with_recipients(
        ("ja", "en") * (count // 2) + ("ja",) * (count % 2)
    )
    # The receipts of the set-up's consents went out long ago: the worker need not send
    # them now (their queued tasks find nothing to claim).
    EmailMessage.objects.filter(status=EmailMessage.Status.QUEUED).update(
        status=EmailMessage.Status.SENT, sent_at=timezone.now() - timedelta(days=30)
    )
    return student, employers, [e.primary_contact.email for e in employers]


def english_browser() -> Client:
    """A browser asking for English pages: the tests read the states' words in English (the
    portal's default, Japanese, is what a browser asking for nothing gets)."""
    return Client(headers={"Accept-Language": "en"})


# The student ---------------------------------------------------------------------------------
def signed_in(student) -> Client:
    """The student's browser, signed in and reauthenticated (the filing form asks for it)."""
    client = english_browser()
    client.force_login(student)
    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert response.status_code == 302
    return client


FORM = {"kind": "deletion", "scope": "all", "delivery_format": "pdf_json", "message": ""}


def file_by_form(client: Client, student) -> tuple[DataRequest, str]:
    """The student files a deletion request to every company on the real form; returns the
    request and the page they land on."""
    response = client.post(reverse("disclosure:request_new"), FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    filed = DataRequest.objects.get(student=student, kind="deletion")
    assert response["Location"] == reverse("disclosure:request_detail", args=[filed.reference])
    page = client.get(response["Location"])
    assert page.status_code == 200
    return filed, page.content.decode()


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&#x27;", "'").split())


def task_cards(html: str, data_request: DataRequest) -> dict[int, str]:
    """Each company's card on the student's request page, as text, by task id."""
    return {
        task_id: text(html.split(f'id="task-{task_id}"')[1].split("</li>")[0])
        for task_id in data_request.tasks.values_list("pk", flat=True)
    }


def student_sees(client: Client, data_request: DataRequest) -> dict[int, str]:
    response = client.get(reverse("disclosure:request_detail", args=[data_request.reference]))
    assert response.status_code == 200
    return task_cards(response.content.decode(), data_request)


def student_states(client: Client, data_request: DataRequest) -> Counter:
    """How many company cards say each state, e.g. {"Waiting to be sent": 38}."""
    states = Counter()
    for card in student_sees(client, data_request).values():
        for words in (
            "Waiting to be sent",
            "Sent; waiting for the company's answer",
            "The email could not be delivered",
        ):
            if words in card:
                states[words] += 1
    return states


# Staff ---------------------------------------------------------------------------------------
def staff_sees(client: Client, data_request: DataRequest) -> str:
    """The admin's request page, as text (its company rows and timeline)."""
    url = reverse("admin:disclosure_datarequest_change", args=[data_request.pk])
    response = client.get(url)
    assert response.status_code == 200, response
    return text(response.content.decode())


def staff_rows(client: Client, data_request: DataRequest) -> dict[str, str]:
    """The admin page's row of each company (its name and the cells after it), by name."""
    page = staff_sees(client, data_request)
    names = sorted(
        data_request.tasks.values_list("employer__name", flat=True), key=len, reverse=True
    )
    rows = {}
    for name in names:
        after = page.split(f" {name} ", 1)[1]
        rows[name] = after.split("Resend the link")[0]
    return rows


# Time ----------------------------------------------------------------------------------------
def advance(days: float) -> None:
    """Simulated days pass for the requests: every business time in the database moves
    `days` back, so "now" is that much later for the sweeper. The queue's own times
    (queued_at, an email's claim) are left alone: the broker lives in real time."""
    by = timedelta(days=days)
    DataRequest.objects.update(
        submitted_at=F("submitted_at") - by,
        due_at=F("due_at") - by,
        portal_done_at=F("portal_done_at") - by,
        completed_at=F("completed_at") - by,
    )
    RecipientTask.objects.update(
        created_at=F("created_at") - by,
        sent_at=F("sent_at") - by,
        last_reminder_at=F("last_reminder_at") - by,
        escalated_at=F("escalated_at") - by,
    )
    AnswerLink.objects.update(created_at=F("created_at") - by, expires_at=F("expires_at") - by)
    RequestEvent.objects.update(at=F("at") - by)
    EmailMessage.objects.update(created_at=F("created_at") - by, sent_at=F("sent_at") - by)


def has_field(model, name: str) -> bool:
    return any(f.name == name for f in model._meta.get_fields())


def lease_passes(minutes: float = 20) -> None:
    """Real minutes pass for what is waiting to be sent: past the sweepers' grace for a new
    row and past the queue lease (QUEUE_LEASE_SECONDS, 15 min), so the sweepers take it."""
    by = timedelta(minutes=minutes)
    for model, status in ((RecipientTask, "queued"), (EmailMessage, "queued")):
        rows = model.objects.filter(status=status)
        rows.update(created_at=F("created_at") - by)
        if has_field(model, "queued_at"):
            rows.exclude(queued_at=None).update(queued_at=F("queued_at") - by)
    if has_field(DataRequest, "queued_at"):
        DataRequest.objects.exclude(queued_at=None).update(queued_at=F("queued_at") - by)


def claims_go_stale() -> int:
    """Real minutes pass for the emails a killed worker had claimed ("sending"): past
    STALE_CLAIM, so the outbox sweeper returns them to the queue, as it would ten minutes
    after the kill. How many there were."""
    by = STALE_CLAIM + timedelta(minutes=1)
    return EmailMessage.objects.filter(status=EmailMessage.Status.SENDING).update(
        created_at=F("created_at") - by, claimed_at=F("claimed_at") - by
    )


# Counting ------------------------------------------------------------------------------------
def assert_each_company_once(smtp: SmtpServer, data_request: DataRequest, addresses: list[str]):
    """Exactly one request email per company, with its own working link, and every task
    sent once (one link, one "sent" event)."""
    kinds = mails_by_kind(smtp, addresses)
    requests = {to: k.count("company_request") for to, k in kinds.items()}
    assert requests == dict.fromkeys(addresses, 1), requests
    tasks = list(RecipientTask.objects.filter(request=data_request).select_related("employer"))
    assert len(tasks) == len(addresses)
    assert {t.status for t in tasks} == {RecipientTask.Status.SENT}
    assert (
        EmailMessage.objects.filter(kind=f"company_request:{data_request.reference}")
        .exclude(status=EmailMessage.Status.SENT)
        .count()
        == 0
    )
    for task in tasks:
        [message] = [
            m
            for m in smtp.received(task.employer.primary_contact.email)
            if data_request.reference in str(m["Subject"])
        ]
        assert link_lookup(token=token_of(message)).task_id == task.pk
    events = Counter(
        RequestEvent.objects.filter(request=data_request, kind="sent").values_list(
            "task", flat=True
        )
    )
    assert events == Counter({t.pk: 1 for t in tasks}), events


def student_received(smtp: SmtpServer, student, template_subject_part: str) -> int:
    return sum(template_subject_part in str(m["Subject"]) for m in smtp.received(student.email))


def task_states(data_request: DataRequest) -> dict[str, int]:
    return dict(
        Counter(RecipientTask.objects.filter(request=data_request).values_list("status", flat=True))
    )


def due_units() -> int:
    """Units of work waiting for the queue: tasks not yet sent and emails not yet sent."""
    return (
        RecipientTask.objects.filter(
            status=RecipientTask.Status.QUEUED, request__status__in=DataRequest.OPEN
        ).count()
        + EmailMessage.objects.filter(status=EmailMessage.Status.QUEUED).count()
    )
