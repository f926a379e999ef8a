"""Celery tasks of the core app. Each loads its row by id and claims it before acting."""

import logging
import smtplib
import time
from datetime import datetime, timedelta
from typing import NamedTuple

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from portal.models import EmailMessage
from portal.shared.logs import redact
from portal.shared.mail_connection import mail_send
from portal.shared.mime import OutgoingEmail
from portal.shared.queueing import claim_due, publish, publish_rows
from portal.shared.sealing import Unreadable, reveal, unseal

# The database gone for a while (a restart, a failover): the task tries again by itself.
DATABASE_DOWN = (OperationalError, InterfaceError)

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# A claim older than this belongs to a worker that died mid-send; the sweeper frees it.
STALE_CLAIM = timedelta(minutes=10)
# A retry scheduled for a time normally runs within this after it; the sweeper waits as long.
SWEEP_GRACE = timedelta(minutes=1)


def retry_delay(attempts: int) -> timedelta:
    """How long a message waits after its `attempts`-th failed attempt: 30 s, 1, 2, 4 min…"""
    return timedelta(seconds=min(30 * 2 ** (attempts - 1), 3600))


class SecretsUnreadable(Exception):
    """The message's sealed secrets were made under a key no longer configured."""


def email_deliver(message: EmailMessage) -> None:
    """Hand the message to SMTP, its secrets revealed in this copy only
    (portal/shared/sealing.py)."""
    try:
        secrets = unseal(message.sealed_secrets)
    except Unreadable as exc:
        raise SecretsUnreadable(
            "the link or code in this message was sealed under a SECRET_KEY no longer "
            "configured; send the person a new one"
        ) from exc
    email = OutgoingEmail(
        subject=reveal(message.subject, secrets),
        body=reveal(message.body_text, secrets),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.to],
        cc=message.cc,
    )
    if message.body_html:
        email.attach_alternative(reveal(message.body_html, secrets, html=True), "text/html")
    mail_send(email)


def is_permanent(exc: Exception) -> bool:
    """A 5xx refusal of this message or its recipient: asking again gets the same answer.

    Everything else (a 4xx, a refused or dropped connection, a failed login) may pass.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPDataError | smtplib.SMTPSenderRefused):
        return exc.smtp_code >= 500
    return False


class Attempt(NamedTuple):
    """What one attempt at a message came to: "sent", "retry" (the caller queues the next
    attempt, after `retry_delay(attempts)`), "failed", or "skipped" (nothing to claim)."""

    outcome: str
    attempts: int = 0
    error: Exception | None = None


def email_attempt(*, message_id: int) -> Attempt:
    """One attempt at sending the outbox's message: claim it, hand it to SMTP, record what
    happened."""
    # Claim first, then send: a redelivered or duplicated task finds nothing to claim, so
    # a message is never sent twice by two workers. A worker that dies between claim and
    # send leaves a stale claim, which the sweeper returns to the queue.
    # The row is read before the claim, and nothing reads the database between the claim
    # and the send: a database gone right after the claim would otherwise fail the task,
    # whose retry finds the row claimed and leaves it for the stale-claim sweep, ten
    # minutes later (seen once in ten runs of the fault suite's restart scenario).
    message = EmailMessage.objects.filter(pk=message_id).first()
    if message is None or message.status != EmailMessage.Status.QUEUED:
        return Attempt("skipped")
    now = timezone.now()
    claimed = EmailMessage.objects.filter(pk=message_id, status=EmailMessage.Status.QUEUED).update(
        status=EmailMessage.Status.SENDING,
        claimed_at=now,
        attempts=F("attempts") + 1,
        queued_at=None,
    )
    if not claimed:
        return Attempt("skipped")
    # The claim added one to the stored count, which may be newer than the row read above.
    return _deliver(message, attempts=message.attempts + 1)


def _deliver(message: EmailMessage, *, attempts: int) -> Attempt:
    """Hand a message this process has claimed to SMTP, and record what happened."""
    message_id = message.pk
    try:
        email_deliver(message)
    except (smtplib.SMTPException, OSError, SecretsUnreadable) as exc:
        final = attempts >= MAX_ATTEMPTS or is_permanent(exc) or isinstance(exc, SecretsUnreadable)
        # A server's reply can quote the message (a filter naming the link it refused):
        # stored and logged masked, as every log line is.
        error = redact(f"{type(exc).__name__}: {exc}")[:2000]
        # Recording the failure waits for a database gone for a moment, as recording a
        # send does: a claim left behind would hold the message for the stale-claim sweep.
        _until_database_answers(
            lambda: EmailMessage.objects.filter(pk=message_id).update(
                status=EmailMessage.Status.FAILED if final else EmailMessage.Status.QUEUED,
                last_error=error,
                # The caller's retry is the message in the queue.
                queued_at=None if final else timezone.now(),
                # A message that will never be sent keeps no secret.
                **({"sealed_secrets": ""} if final else {}),
            )
        )
        log.warning("email %s attempt %s failed: %s", message_id, attempts, exc)
        return Attempt("failed" if final else "retry", attempts, exc)
    # Sent: recording it must not fail with the database away for a moment, or the stale
    # claim would be freed and the message sent twice.
    _until_database_answers(lambda: _record_sent(message_id))
    return Attempt("sent", attempts)


def _record_sent(message_id: int) -> None:
    """The message went: sent, and its secrets erased (they now live only in the inbox).
    One plain UPDATE, written out: it runs once per email a worker sends, and building it
    through the ORM cost the worker more than the statement costs PostgreSQL.

    On its own (not inside a caller's transaction), on PostgreSQL, the record is committed
    without waiting for the disk (`synchronous_commit = off` for this transaction only):
    the wait was about 4 ms an email, more than the rest of sending it. A worker dying
    afterwards loses nothing (PostgreSQL writes the record within a fraction of a second);
    PostgreSQL itself crashing (not a restart, which writes it) may lose the records of the
    last fraction of a second, whose emails the stale-claim sweep then sends again: the
    outbox's one case of a message sent twice, made possible by a database crash as well
    as a worker's (docs/performance.md says why it is worth it).

    The setting and the UPDATE go as one query of two statements, which PostgreSQL runs as
    one transaction of their own (an error in either rolls both back and leaves the
    connection as it was): one round trip, where BEGIN, SET, UPDATE and COMMIT took four,
    and 28% of a worker's time passing requests on (the client-side binding Django's
    PostgreSQL backend uses by default sends a query with parameters as it is, so several
    statements may go in one; with server-side binding turned on, the four are sent)."""
    table = connection.ops.quote_name(EmailMessage._meta.db_table)
    statement = (
        f"UPDATE {table} SET status = %s, sent_at = %s, last_error = '', "  # noqa: S608 - our table's name; values are parameters
        "sealed_secrets = '' WHERE id = %s"
    )
    values = [EmailMessage.Status.SENT, timezone.now(), message_id]
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute(statement, values)
    elif connection.settings_dict["OPTIONS"].get("server_side_binding"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute(statement, values)
    else:
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL synchronous_commit = off; {statement}", values)


def _claim_many(messages: list[EmailMessage]) -> dict[int, int]:
    """Claim the messages that are still queued, in one statement (one commit): the ids
    claimed, with their attempts counting this one. RETURNING says which, so nothing reads
    the database between claim and send (see email_attempt)."""
    table = connection.ops.quote_name(EmailMessage._meta.db_table)
    marks = ", ".join(["%s"] * len(messages))
    Status = EmailMessage.Status
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET status = %s, claimed_at = %s, attempts = attempts + 1, "  # noqa: S608 - our table's name; values are parameters
            f"queued_at = NULL WHERE id IN ({marks}) AND status = %s RETURNING id, attempts",
            [Status.SENDING, timezone.now(), *(m.pk for m in messages), Status.QUEUED],
        )
        return dict(cursor.fetchall())


@shared_task(
    acks_late=True,
    bind=True,
    max_retries=MAX_ATTEMPTS - 1,
    autoretry_for=DATABASE_DOWN,
    retry_backoff=2,
    retry_backoff_max=60,
    # Celery's default full jitter draws each countdown from 0..backoff: four retries could
    # all fall inside a few seconds' outage, leaving the row to wait out the queue lease.
    retry_jitter=False,
)
def email_send(self, message_id: int) -> None:
    attempt = email_attempt(message_id=message_id)
    if attempt.outcome == "retry":
        countdown = retry_delay(attempt.attempts).total_seconds()
        raise self.retry(exc=attempt.error, countdown=countdown) from attempt.error


def emails_send_now(messages: list[EmailMessage]) -> None:
    """Send messages never tried yet, here and now, as `email_send` would: a worker that
    has just made them sends them over its kept SMTP connection, right after its transaction
    committed, instead of queueing a task for each. One statement claims them all; each is
    recorded sent (or failed) on its own, so a worker dying mid-way leaves only the message
    it was sending in doubt, as `email_send` does. A refused attempt is retried by
    `email_send` after its backoff (or by the sweep, if the broker will not take the retry).

    `messages` are the rows as their caller made them (nothing is read back)."""
    if not messages:
        return
    claimed = _claim_many(messages)
    for message in messages:
        if message.pk not in claimed:
            continue  # another worker's, or no longer queued
        attempt = _deliver(message, attempts=claimed[message.pk])
        if attempt.outcome == "retry" and not publish(
            "portal.tasks.email_send",
            message.pk,
            countdown=retry_delay(attempt.attempts).total_seconds(),
        ):
            EmailMessage.objects.filter(pk=message.pk).update(queued_at=None)


@shared_task(
    acks_late=True,
    max_retries=10,
    autoretry_for=DATABASE_DOWN,
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=False,
)
def emails_send(message_ids: list[int]) -> None:
    """Messages queued together, by one message instead of one each (a filing's emails to
    its student, when it has no company to carry them: disclosure.enqueue)."""
    emails_send_queued(message_ids)


def emails_send_queued(message_ids: list[int]) -> None:
    """Send these messages as `email_send` sends each; one already tried is left to its
    own retry, one sent or claimed elsewhere is left alone."""
    emails_send_now(
        list(
            EmailMessage.objects.filter(
                pk__in=message_ids, status=EmailMessage.Status.QUEUED, claimed_at=None
            )
        )
    )


def _until_database_answers(write, *, attempts: int = 30, pause: float = 2.0):
    for attempt in range(attempts):
        try:
            return write()
        except DATABASE_DOWN:
            if attempt == attempts - 1:
                raise
            log.warning("database unavailable, trying again in %ss", pause)
            connection.close()  # the next query opens a new connection
            time.sleep(pause)


def email_due(now: datetime) -> Q:
    """Queued rows nothing else is about to send: never tried, or past their retry time.

    A row that failed waits for the retry its task scheduled; the sweeper steps in only
    when that retry is overdue (lost with the broker), so it never defeats the backoff.
    """
    waited = Q(claimed_at=None)
    for attempts in range(1, MAX_ATTEMPTS):
        waited |= Q(attempts=attempts, claimed_at__lt=now - retry_delay(attempts) - SWEEP_GRACE)
    waited |= Q(
        attempts__gte=MAX_ATTEMPTS,
        claimed_at__lt=now - retry_delay(MAX_ATTEMPTS) - SWEEP_GRACE,
    )
    return Q(status=EmailMessage.Status.QUEUED) & waited


@shared_task
def email_sweep() -> int:
    """Re-queue emails that are due and have no task in the queue, so a broker outage or a
    flushed queue only delays them. Returns how many it queued."""
    now = timezone.now()
    stale = EmailMessage.objects.filter(
        status=EmailMessage.Status.SENDING, claimed_at__lt=now - STALE_CLAIM
    )
    # A message whose every attempt died with its worker is not tried forever.
    stale.filter(attempts__gte=MAX_ATTEMPTS).update(
        status=EmailMessage.Status.FAILED,
        last_error="the worker was lost while sending",
        sealed_secrets="",
    )
    stale.update(status=EmailMessage.Status.QUEUED, queued_at=None)
    ids = claim_due(EmailMessage.objects.filter(email_due(now)), now=now, limit=500)
    return publish_rows("portal.tasks.email_send", EmailMessage, ids)
