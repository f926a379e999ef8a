"""Fixtures of the fault scenarios: a private broker the test process and the workers share,
the loopback SMTP server, and the processes' launcher (harness.Stack)."""

import pytest

from tests.factories import StaffFactory
from tests.faults.flows import english_browser
from tests.faults.harness import PrivateRedis, Stack, point_celery_at, reset_publishing
from tests.smtp import SmtpServer


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


@pytest.fixture
def staff_client(transactional_db):
    """A staff member signed in with a second factor (an authenticator app), as the admin
    demands."""
    staff = StaffFactory()
    assert staff.totp_secret
    client = english_browser()
    client.force_login(staff)
    return client
