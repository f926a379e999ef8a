"""Celery tasks of the core app. Each loads its row by id and claims it before acting."""

import logging
import smtplib
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db.models import F, Q
from django.utils import timezone

from portal.models import EmailMessage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# A claim older than this belongs to a worker that died mid-send; the sweeper frees it.
STALE_CLAIM = timedelta(minutes=10)


def email_deliver(message: EmailMessage) -> None:
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[message.to],
    )
    if message.body_html:
        email.attach_alternative(message.body_html, "text/html")
    email.send()


@shared_task(acks_late=True, bind=True, max_retries=MAX_ATTEMPTS - 1)
def email_send(self, message_id: int) -> None:
    # Claim first, then send: a redelivered or duplicated task finds nothing to claim, so
    # a message is never sent twice by two workers. A worker that dies between claim and
    # send leaves a stale claim, which the sweeper returns to the queue.
    now = timezone.now()
    claimed = EmailMessage.objects.filter(pk=message_id, status=EmailMessage.Status.QUEUED).update(
        status=EmailMessage.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return
    message = EmailMessage.objects.get(pk=message_id)
    try:
        email_deliver(message)
    except (smtplib.SMTPException, OSError) as exc:
        final = message.attempts >= MAX_ATTEMPTS
        EmailMessage.objects.filter(pk=message_id).update(
            status=EmailMessage.Status.FAILED if final else EmailMessage.Status.QUEUED,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        log.warning("email %s attempt %s failed: %s", message_id, message.attempts, exc)
        if not final:
            raise self.retry(
                exc=exc, countdown=min(30 * 2 ** (message.attempts - 1), 3600)
            ) from exc
        return
    EmailMessage.objects.filter(pk=message_id).update(
        status=EmailMessage.Status.SENT, sent_at=timezone.now(), last_error=""
    )


@shared_task
def email_sweep() -> int:
    """Re-queue emails that are due and unclaimed, so a broker outage only delays them."""
    now = timezone.now()
    EmailMessage.objects.filter(
        status=EmailMessage.Status.SENDING, claimed_at__lt=now - STALE_CLAIM
    ).update(status=EmailMessage.Status.QUEUED)
    due = EmailMessage.objects.filter(
        Q(status=EmailMessage.Status.QUEUED),
        Q(created_at__lt=now - timedelta(minutes=1)),
    ).values_list("pk", flat=True)[:500]
    ids = list(due)
    for message_id in ids:
        email_send.delay(message_id)
    return len(ids)
