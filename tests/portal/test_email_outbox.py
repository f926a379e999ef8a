"""The outbox: every email is a row first, sent once by a task that claims it, retried on a
temporary failure, and swept up when its task was lost. Delivery is to a real SMTP server."""

import os
import re
import smtplib
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings as django_settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation

from portal.models import EmailMessage
from portal.shared.emails import email_queue_message, email_queue_template
from portal.shared.queueing import lease
from portal.tasks import MAX_ATTEMPTS, STALE_CLAIM, email_send, email_sweep
from tests.factories import PASSWORD
from tests.ports import free_port
from tests.smtp import html_of, text_of

pytestmark = pytest.mark.django_db

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def queue(**overrides) -> EmailMessage:
    fields = {
        "to": "hanako@example.jp",
        "subject": "開示請求を受け付けました",
        "body_text": "本文です。",
        "body_html": "<p>本文です。</p>",
        "kind": "test",
        "language": "ja",
    }
    return email_queue_message(**{**fields, **overrides})


def unsent(*, ago: timedelta = timedelta(minutes=5), **fields) -> EmailMessage:
    """A row with no task in flight (its task was lost with the broker, or never queued)."""
    return EmailMessage.objects.create(
        to=fields.pop("to", "taro@example.jp"),
        subject="件名",
        body_text="本文",
        kind="test",
        language="ja",
        created_at=timezone.now() - ago,
        **fields,
    )


def test_queueing_stores_the_message_and_sends_it_after_commit(
    smtp_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        message = queue()
        assert EmailMessage.objects.get(pk=message.pk).status == EmailMessage.Status.QUEUED
        assert smtp_server.attempts == 0

    [received] = smtp_server.received("hanako@example.jp")
    assert received["Subject"] == "開示請求を受け付けました"
    assert received["From"] == django_settings.DEFAULT_FROM_EMAIL
    assert text_of(received).strip() == "本文です。"
    assert html_of(received).strip() == "<p>本文です。</p>"
    message.refresh_from_db()
    assert message.status == EmailMessage.Status.SENT
    assert message.sent_at is not None
    assert message.attempts == 1


def test_nothing_is_sent_when_the_transaction_rolls_back(
    smtp_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            queue()
            raise RuntimeError("the request failed after queueing")

    assert callbacks == []
    assert not EmailMessage.objects.exists()
    assert smtp_server.attempts == 0


def test_it_sends_once_when_run_twice(smtp_server):
    message = queue()

    email_send.apply(args=[message.pk])
    email_send.apply(args=[message.pk])

    assert len(smtp_server.received("hanako@example.jp")) == 1
    message.refresh_from_db()
    assert message.status == EmailMessage.Status.SENT
    assert message.attempts == 1


def test_a_task_finds_nothing_to_do_while_another_worker_holds_the_claim(smtp_server):
    message = unsent(status=EmailMessage.Status.SENDING, claimed_at=timezone.now(), attempts=1)

    email_send.apply(args=[message.pk])
    assert email_sweep() == 0

    assert smtp_server.attempts == 0
    message.refresh_from_db()
    assert message.status == EmailMessage.Status.SENDING


def test_a_message_whose_worker_died_mid_send_is_requeued_by_the_sweeper_and_sent(smtp_server):
    crashed = unsent(
        ago=STALE_CLAIM * 2,
        status=EmailMessage.Status.SENDING,
        claimed_at=timezone.now() - STALE_CLAIM - timedelta(seconds=1),
        attempts=1,
    )

    assert email_sweep() == 1

    assert len(smtp_server.received("taro@example.jp")) == 1
    crashed.refresh_from_db()
    assert crashed.status == EmailMessage.Status.SENT
    assert crashed.attempts == 2


def test_a_message_whose_every_attempt_died_with_its_worker_is_marked_failed(smtp_server):
    crashed = unsent(
        ago=STALE_CLAIM * 2,
        status=EmailMessage.Status.SENDING,
        claimed_at=timezone.now() - STALE_CLAIM - timedelta(seconds=1),
        attempts=MAX_ATTEMPTS,
    )

    assert email_sweep() == 0

    assert smtp_server.attempts == 0
    crashed.refresh_from_db()
    assert crashed.status == EmailMessage.Status.FAILED
    assert crashed.last_error


def test_the_sweeper_sends_what_is_due_and_leaves_what_has_a_task_coming(smtp_server):
    now = timezone.now()
    never_queued = unsent(to="lost@example.jp")
    retry_overdue = unsent(
        to="overdue@example.jp", attempts=1, claimed_at=now - timedelta(minutes=3)
    )
    retry_pending = unsent(
        to="pending@example.jp", attempts=1, claimed_at=now - timedelta(seconds=20)
    )
    just_queued = unsent(
        to="new@example.jp", ago=timedelta(seconds=5), queued_at=now - timedelta(seconds=5)
    )
    # Queued longer ago than the lease: the message was lost with the queue (flushed).
    lost_in_queue = unsent(to="flushed@example.jp", queued_at=now - lease() - timedelta(minutes=1))
    already_sent = unsent(to="sent@example.jp", status=EmailMessage.Status.SENT, sent_at=now)

    assert email_sweep() == 3
    assert email_sweep() == 0  # each is queued once

    assert sorted(to for to, _ in smtp_server.summary()) == [
        "flushed@example.jp",
        "lost@example.jp",
        "overdue@example.jp",
    ]
    statuses = dict(EmailMessage.objects.values_list("pk", "status"))
    assert statuses == {
        never_queued.pk: EmailMessage.Status.SENT,
        retry_overdue.pk: EmailMessage.Status.SENT,
        retry_pending.pk: EmailMessage.Status.QUEUED,
        just_queued.pk: EmailMessage.Status.QUEUED,
        lost_in_queue.pk: EmailMessage.Status.SENT,
        already_sent.pk: EmailMessage.Status.SENT,
    }


def test_a_temporary_refusal_keeps_the_message_queued_with_the_error(smtp_server):
    smtp_server.data_replies = ["451 4.3.0 try later"]
    message = queue()

    # Called directly the task makes one attempt and re-raises instead of scheduling a retry.
    with pytest.raises(smtplib.SMTPDataError):
        email_send(message.pk)

    message.refresh_from_db()
    assert message.status == EmailMessage.Status.QUEUED
    assert message.attempts == 1
    assert "451" in message.last_error
    assert "try later" in message.last_error
    assert message.sent_at is None
    assert smtp_server.messages == []


def test_a_refused_connection_keeps_the_message_queued_with_the_error(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()
    message = queue()

    with pytest.raises(ConnectionRefusedError):
        email_send(message.pk)

    message.refresh_from_db()
    assert message.status == EmailMessage.Status.QUEUED
    assert message.attempts == 1
    assert message.last_error.startswith("ConnectionRefusedError")


def test_it_retries_until_the_server_accepts(smtp_server):
    smtp_server.data_replies = ["451 4.3.0 try later", "421 4.7.0 too busy"]
    message = queue()

    email_send.apply(args=[message.pk])

    assert smtp_server.attempts == 3
    assert len(smtp_server.received("hanako@example.jp")) == 1
    message.refresh_from_db()
    assert message.status == EmailMessage.Status.SENT
    assert message.attempts == 3
    assert message.last_error == ""


def test_it_gives_up_after_max_attempts(smtp_server):
    smtp_server.data_replies = ["451 4.3.0 try later"] * (MAX_ATTEMPTS + 1)
    message = queue()

    email_send.apply(args=[message.pk])

    assert smtp_server.attempts == MAX_ATTEMPTS
    message.refresh_from_db()
    assert message.status == EmailMessage.Status.FAILED
    assert message.attempts == MAX_ATTEMPTS
    assert "451" in message.last_error
    assert message.sent_at is None
    # A failed message stays failed: staff decide what happens to it.
    assert email_sweep() == 0
    assert smtp_server.messages == []


def test_a_permanent_refusal_fails_at_once(smtp_server):
    smtp_server.rcpt_replies = ["550 5.1.1 no such user"]
    message = queue(to="nobody@example.jp")

    email_send.apply(args=[message.pk])

    message.refresh_from_db()
    assert message.status == EmailMessage.Status.FAILED
    assert message.attempts == 1
    assert "550" in message.last_error
    assert smtp_server.rcpt_replies == []  # asked once, not five times


def test_a_template_email_is_rendered_in_the_recipients_language(smtp_server, settings):
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [*settings.TEMPLATES[0]["DIRS"], TEMPLATES_DIR]}
    ]
    context = {"name": "Hanako"}

    with translation.override("en"):
        ja = email_queue_template(
            to="ja@example.jp", template="outbox_test", context=context, kind="t", language="ja"
        )
        assert translation.get_language() == "en"
    en = email_queue_template(
        to="en@example.jp", template="outbox_test", context=context, kind="t", language="en"
    )

    assert (ja.subject, ja.body_text.strip()) == (
        "パスワード: Hanako",
        "ja 有効なメールアドレスを入力してください。",
    )
    assert (en.subject, en.body_text.strip()) == (
        "Password: Hanako",
        "en Enter a valid email address.",
    )
    assert ja.body_html.strip() == "<p>はい, Hanako</p>"
    assert (ja.language, en.language) == ("ja", "en")

    email_send.apply(args=[ja.pk])
    [received] = smtp_server.received("ja@example.jp")
    assert received["Subject"] == "パスワード: Hanako"
    assert text_of(received).strip() == "ja 有効なメールアドレスを入力してください。"


def test_signup_delivers_the_verification_link_through_the_outbox(
    client, smtp_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("account_signup"),
            {
                "email": "hanako@example.jp",
                "display_name": "山田 花子",
                "password1": PASSWORD,
                "password2": PASSWORD,
            },
        )
    assert response.status_code == 302

    row = EmailMessage.objects.get(to="hanako@example.jp")
    assert row.kind == "email_confirmation_signup"
    assert row.status == EmailMessage.Status.SENT
    [received] = smtp_server.received("hanako@example.jp")
    match = re.search(r"https?://testserver(/accounts/confirm-email/[^/\s]+/)", text_of(received))
    assert match, text_of(received)

    # The link works: following it verifies the address.
    confirm_url = match.group(1)
    assert client.get(confirm_url).status_code == 200
    client.post(confirm_url)
    assert EmailAddress.objects.get(email="hanako@example.jp").verified


def test_a_broker_outage_does_not_fail_the_caller_and_the_row_waits_for_the_sweeper(tmp_path):
    # A real process with a broker that refuses connections: the commit stands, the caller
    # carries on, and the row stays queued for email_sweep to pick up once the broker is back.
    script = textwrap.dedent(
        """
        import django
        django.setup()
        from django.db import connection, transaction
        from portal.shared.emails import email_queue_message
        from portal.models import EmailMessage

        # The outbox's table alone (no foreign keys): migrating all took most of a minute
        # on a loaded machine, against this run's timeout.
        with connection.schema_editor() as editor:
            editor.create_model(EmailMessage)
        with transaction.atomic():
            message = email_queue_message(
                to="a@example.jp", subject="s", body_text="b", kind="t", language="ja"
            )
        print("status", EmailMessage.objects.get(pk=message.pk).status)
        """
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",
    }

    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert "status queued" in result.stdout
    # The failure to queue is logged, not swallowed.
    assert "could not queue portal.tasks.email_send" in result.stderr


def claimed() -> EmailMessage:
    """A row as a sender holds it: claimed, its secret still sealed (no task queued)."""
    return EmailMessage.objects.create(
        to="hanako@example.jp",
        subject="件名",
        body_text="本文です。",
        kind="test",
        language="ja",
        status=EmailMessage.Status.SENDING,
        claimed_at=timezone.now(),
        attempts=1,
        sealed_secrets="sealed",
    )


@pytest.mark.django_db(transaction=True)
def test_a_sent_email_is_recorded_sent_with_its_secrets_erased_in_or_out_of_a_transaction():
    from portal.tasks import _record_sent

    alone, inside = claimed(), claimed()
    _record_sent(alone.pk)
    with transaction.atomic():
        _record_sent(inside.pk)

    for message in (alone, inside):
        message.refresh_from_db()
        assert (message.status, message.sealed_secrets) == (EmailMessage.Status.SENT, "")
        assert message.sent_at is not None


@pytest.mark.skipif(
    not django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="needs PostgreSQL (CI's second pass): synchronous_commit is PostgreSQL's",
)
@pytest.mark.django_db(transaction=True)
def test_recording_a_send_waits_for_no_disk_only_in_its_own_transaction():
    """The record alone commits without waiting for the disk; it never changes how the
    connection's later transactions commit, nor a caller's transaction it runs inside."""
    from django.db import connection

    from portal.tasks import _record_sent

    def synchronous_commit() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW synchronous_commit")
            return cursor.fetchone()[0]

    seen = []

    def noting(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(noting):
        _record_sent(claimed().pk)
        with transaction.atomic():
            _record_sent(claimed().pk)
            assert synchronous_commit() == "on"
    assert synchronous_commit() == "on"
    # The record alone: the setting and the UPDATE in one query (one round trip), with no
    # BEGIN or COMMIT of its own; inside the caller's transaction, the UPDATE alone.
    records = [sql for sql in seen if "UPDATE" in sql]
    assert len(records) == 2
    assert records[0].startswith("SET LOCAL synchronous_commit = off; UPDATE ")
    assert "synchronous_commit" not in records[1]
    assert [sql for sql in seen if "synchronous_commit" in sql] == [
        records[0],
        "SHOW synchronous_commit",
    ]


@pytest.mark.skipif(
    not django_settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="needs PostgreSQL (CI's second pass): the record's two statements are PostgreSQL's",
)
@pytest.mark.django_db(transaction=True)
def test_a_record_that_fails_leaves_the_connection_as_it_was():
    """The record's two statements run as one transaction of their own: when the UPDATE
    fails, both are rolled back and the connection is idle, not stuck in a failed
    transaction that would refuse the worker's next statement."""
    import psycopg
    from django.db import DataError, connection

    from portal.tasks import _record_sent

    message = claimed()
    with pytest.raises(DataError):
        _record_sent("not a number")
    assert connection.connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    _record_sent(message.pk)
    message.refresh_from_db()
    assert message.status == EmailMessage.Status.SENT
