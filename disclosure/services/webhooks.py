"""A company's webhook: each task passed on to the company is POSTed to it, signed as the
data-source calls are (disclosure/signing.py), tried again with a backoff, and failures shown
to staff, who may deliver it again (docs/api.md, "Webhooks: a new task, pushed").

A delivery is made where the task is sent (`recipient_task_send`), in the transaction that
claims it, and queued on commit; the Celery task `disclosure.tasks.webhook_deliver` claims one
attempt with a conditional UPDATE and makes the POST outside any transaction."""

import json
from datetime import datetime

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _

from disclosure import enqueue, signing
from disclosure.models import RecipientTask, Webhook, WebhookDelivery
from disclosure.services.task_items import task_item, task_items_provisions
from portal.shared.logs import redact
from portal.shared.queueing import lease

EVENT_HEADER = "X-Portal-Event-Id"
EVENT_TYPE = "request.passed_on"
# The first retry waits this long, each next one twice as long (2, 4, 8, 16, 32 s).
BACKOFF_SECONDS = 2
# Answers that mean "try later" although they are not 5xx.
RETRY_STATUSES = {408, 429}


def webhook_backoff(attempt: int) -> int:
    """Seconds to wait after failed attempt number `attempt` (1, 2, ...)."""
    return BACKOFF_SECONDS * 2 ** (attempt - 1)


def webhook_delivery_queue(task: RecipientTask, *, now: datetime) -> WebhookDelivery | None:
    """Inside the transaction that sends `task`: a delivery to its company's active webhook,
    if it has one, queued once the transaction commits. At most one per (webhook, task)."""
    webhook = Webhook.objects.filter(employer_id=task.employer_id, active=True).first()
    if webhook is None:
        return None
    delivery, made = WebhookDelivery.objects.get_or_create(
        webhook=webhook, task=task, defaults={"created_at": now, "queued_at": now}
    )
    if made:
        enqueue.webhook_deliver(delivery.pk)
    return delivery


def webhook_body(delivery: WebhookDelivery) -> bytes:
    """The event: its id, its type and the task as `GET /api/v1/requests` lists it (the
    task as it is when the POST is made), in the company's language."""
    task = delivery.task
    with translation.override(task.employer.message_language):
        provisions = task_items_provisions([task]).get(
            (task.request.student_id, task.employer_id), []
        )
        item = task_item(task, provisions)
    return json.dumps(
        {"id": str(delivery.event_id), "event": EVENT_TYPE, "request": item},
        cls=DjangoJSONEncoder,
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")


class WebhookError(Exception):
    def __init__(self, message: str, *, retry: bool, status: int | None = None):
        super().__init__(message)
        self.retry = retry
        self.status = status


def _post(delivery: WebhookDelivery, body: bytes) -> int:
    """POST the signed event; its status, or WebhookError saying whether trying again may help."""
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        EVENT_HEADER: str(delivery.event_id),
        **signing.sign(delivery.webhook.secret, body),
    }
    try:
        response = requests.post(
            delivery.webhook.endpoint,
            data=body,
            headers=headers,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.Timeout:
        raise WebhookError("timeout", retry=True) from None
    except requests.RequestException as exc:  # refused, reset, DNS, TLS
        raise WebhookError(f"{type(exc).__name__}: {exc}"[:500], retry=True) from None
    status = response.status_code
    if status >= 300:
        raise WebhookError(
            f"HTTP {status} {response.reason}",
            retry=status >= 500 or status in RETRY_STATUSES,
            status=status,
        )
    return status


def webhook_deliver(*, delivery_id: int) -> str:
    """One attempt: claimed by a conditional UPDATE on the attempt number (a second message
    for the same attempt finds nothing to claim). Returns "sent", "retry" (the caller queues
    the next attempt after webhook_backoff), "failed" or "skipped".

    The POST is made outside any transaction: a slow receiver holds no lock."""
    now = timezone.now()
    delivery = (
        WebhookDelivery.objects.filter(pk=delivery_id)
        .select_related(
            "webhook", "task__request__student", "task__request__correction", "task__employer"
        )
        .first()
    )
    if delivery is None:
        return "skipped"
    attempt = delivery.attempts + 1
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.QUEUED, attempts=delivery.attempts
    ).update(
        status=WebhookDelivery.Status.SENDING,
        attempts=attempt,
        last_attempt_at=now,
        queued_at=None,
    )
    if not claimed:
        return "skipped"
    if not delivery.webhook.active:
        WebhookDelivery.objects.filter(
            pk=delivery_id, status=WebhookDelivery.Status.SENDING
        ).update(
            status=WebhookDelivery.Status.FAILED,
            last_error="webhook inactive",
            failed_at=now,
        )
        return "failed"
    try:
        status = _post(delivery, webhook_body(delivery))
    except WebhookError as exc:
        retry = exc.retry and attempt < settings.WEBHOOK_MAX_ATTEMPTS
        done = timezone.now()
        # An error can quote the endpoint's URL or its reply: stored masked, as logged.
        fields = {"last_error": redact(str(exc))[:1000], "last_status": exc.status}
        if retry:
            fields.update(status=WebhookDelivery.Status.QUEUED, queued_at=done)
        else:
            fields.update(status=WebhookDelivery.Status.FAILED, failed_at=done)
        changed = WebhookDelivery.objects.filter(
            pk=delivery_id, status=WebhookDelivery.Status.SENDING, attempts=attempt
        ).update(**fields)
        return ("retry" if retry else "failed") if changed else "skipped"
    WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.SENDING, attempts=attempt
    ).update(
        status=WebhookDelivery.Status.SENT,
        sent_at=timezone.now(),
        last_status=status,
        last_error="",
    )
    return "sent"


def webhook_deliveries_unstick(*, now: datetime) -> int:
    """A worker killed during its POST leaves a delivery 'sending' for ever: after the lease,
    put it back in the queue (the receiver drops it if it did arrive: same event id)."""
    return WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.SENDING, last_attempt_at__lt=now - lease()
    ).update(status=WebhookDelivery.Status.QUEUED, queued_at=None)


def webhook_delivery_retry(*, delivery: WebhookDelivery) -> None:
    """Staff: deliver a failed one again, from its first attempt (the caller audits it)."""
    with transaction.atomic():
        changed = WebhookDelivery.objects.filter(
            pk=delivery.pk, status=WebhookDelivery.Status.FAILED, webhook__active=True
        ).update(
            status=WebhookDelivery.Status.QUEUED,
            attempts=0,
            queued_at=timezone.now(),
            failed_at=None,
        )
        if not changed:
            raise ValidationError(
                _("Only a failed delivery to an active webhook can be delivered again.")
            )
        enqueue.webhook_deliver(delivery.pk)
