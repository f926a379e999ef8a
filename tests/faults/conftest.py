"""Fixtures of the fault scenarios: a private broker the test process and the workers share,
the loopback SMTP server, and the processes' launcher (harness.Stack)."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from disclosure.models import DataRequest, RecipientTask
from tests.factories import PASSWORD, StaffFactory
from tests.faults.harness import PrivateRedis, Stack, point_celery_at, reset_publishing
from tests.smtp import SmtpServer

COMPANIES = 38  # the figure: one student's data went to 38 companies


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def broker(tmp_path, monkeypatch, settings):
    """A private redis-server; this process publishes to it for the test's length."""
    server = PrivateRedis(tmp_path)
    server.start()
    settings.CELERY_BROKER_URL = server.url()
    point_celery_at(server.url(), monkeypatch)
    try:
        yield server
    finally:
        server.stop()
        monkeypatch.undo()
        reset_publishing()


@pytest.fixture
def stack(transactional_db, broker, smtp, tmp_path):
    running = Stack(broker=broker, smtp=smtp, directory=tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


# What the student and staff do and see -------------------------------------------------------
def file_by_form(client: Client, student) -> tuple[DataRequest, str]:
    """The student files a deletion request to every company on the real form (after
    reauthenticating, as the form asks); returns the request and the page they land on."""
    client.force_login(student)
    assert client.post(reverse("account_reauthenticate"), {"password": PASSWORD}).status_code == 302
    response = client.post(
        reverse("disclosure:request_new"),
        {"kind": "deletion", "scope": "all", "delivery_format": "pdf_json", "message": ""},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    filed = DataRequest.objects.get(student=student, kind="deletion")
    assert response["Location"] == reverse("disclosure:request_detail", args=[filed.reference])
    page = client.get(response["Location"])
    assert page.status_code == 200
    return filed, page.content.decode()


def task_cards(html: str, data_request: DataRequest) -> dict[int, str]:
    """Each company's card on the student's request page, as text, by task id."""
    cards = {}
    for task_id in data_request.tasks.values_list("pk", flat=True):
        card = html.split(f'id="task-{task_id}"')[1].split("</li>")[0]
        cards[task_id] = " ".join(re.sub(r"<[^>]+>", " ", card).split())
    return cards


def student_sees(client: Client, data_request: DataRequest) -> dict[int, str]:
    response = client.get(reverse("disclosure:request_detail", args=[data_request.reference]))
    assert response.status_code == 200
    return task_cards(response.content.decode(), data_request)


@pytest.fixture
def staff_client(transactional_db):
    """A staff member signed in with a second factor (an authenticator app), as the admin
    demands."""
    staff = StaffFactory()
    assert staff.totp_secret
    client = Client()
    client.force_login(staff)
    return client


def staff_sees(client: Client, data_request: DataRequest) -> str:
    """The admin's request page, as text (its company rows and timeline)."""
    url = reverse("admin:disclosure_datarequest_change", args=[data_request.pk])
    response = client.get(url)
    assert response.status_code == 200, response
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def task_states(data_request: DataRequest) -> dict[str, int]:
    from collections import Counter

    return dict(
        Counter(RecipientTask.objects.filter(request=data_request).values_list("status", flat=True))
    )
