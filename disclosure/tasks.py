"""Celery tasks for requests: each receives ids and calls one service, which claims its row."""

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction

from disclosure import enqueue, services
from disclosure.models import RecipientTask
from portal.models import EmailMessage
from portal.shared.emails import emails_held
from portal.tasks import DATABASE_DOWN, emails_send_now, emails_send_queued

# The database gone for a moment: the step's transaction rolled back, so trying again is safe.
# No jitter: 2, 4, 8 ... s (Celery's default would draw each from 0 up to that).
RETRY = {
    "autoretry_for": DATABASE_DOWN,
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": False,
}

log = logging.getLogger(__name__)


def _deliver_now(task_ids: list[int], sent: list[int], made: list[EmailMessage]) -> None:
    """After the commit, deliver the emails just made, at once, over this worker's kept
    SMTP connection (`email_send` used to be queued for each and read it back).

    A task of `task_ids` this call did not send was claimed by an earlier run of the same
    message, which died between its commit and the delivery (or by another worker): the
    email it left, never tried, is delivered now. The email's own claim makes sure it goes
    once, whoever else (a sweep's message) reaches it too."""
    left = [task_id for task_id in task_ids if task_id not in sent]
    if left:
        made = made + list(
            EmailMessage.objects.filter(
                pk__in=RecipientTask.objects.filter(pk__in=left).values("email_id"),
                status=EmailMessage.Status.QUEUED,
                claimed_at=None,
            )
        )
    transaction.on_commit(lambda: emails_send_now(made))


def _pass_on(task_id: int) -> bool:
    with emails_held() as made:
        sent = services.recipient_task_send(task_id=task_id)
    _deliver_now([task_id], [task_id] if sent else [], made)
    return sent


@shared_task(acks_late=True, max_retries=10, **RETRY)
def recipient_task_send(task_id: int) -> bool:
    return _pass_on(task_id)


@shared_task(acks_late=True, max_retries=10, **RETRY)
def recipient_tasks_send(
    task_ids: list[int], email_ids: list[int] = (), source_task_ids: list[int] = ()
) -> int:
    """A request's companies, by one message (disclosure.enqueue.tasks_send_on_commit)
    instead of one per company, passed on together (services.recipient_tasks_send), after
    the calls to the site's own systems are queued (`source_task_ids`, each its own task,
    so that a slow source waits for no company) and the emails the filing made for its
    student are sent (`email_ids`). A retry after the database went away goes through them
    all again: those sent are skipped, and a source already called is not called again. A
    batch that fails for another reason is passed on one task at a time, so one task's
    fault stops only that task."""
    if source_task_ids:
        enqueue.sources_call(list(source_task_ids))
    if email_ids:
        emails_send_queued(list(email_ids))
    try:
        with emails_held() as made:
            sent = services.recipient_tasks_send(task_ids=task_ids)
    except DATABASE_DOWN:
        raise
    except Exception:
        if len(task_ids) == 1:
            raise
        log.exception("passing on %s together failed: one task at a time", task_ids)
        return _pass_on_one_by_one(task_ids)
    _deliver_now(task_ids, sent, made)
    return len(sent)


def _pass_on_one_by_one(task_ids: list[int]) -> int:
    sent, failure = 0, None
    for task_id in task_ids:
        try:
            sent += _pass_on(task_id)
        except DATABASE_DOWN:
            raise
        except Exception as exc:  # noqa: BLE001 - raised below, once the others went
            failure = failure or exc
    if failure is not None:
        raise failure
    return sent


@shared_task(acks_late=True, max_retries=10, **RETRY)
def recipient_task_remind(task_id: int, number: int) -> bool:
    return services.recipient_task_remind(task_id=task_id, number=number)


@shared_task(bind=True, acks_late=True, max_retries=10, **RETRY)
def source_call(self, source_task_id: int) -> str:
    outcome = services.source_task_call(task_id=source_task_id)
    if outcome == "retry":
        # The service put the task back in QUEUED with queued_at set (the retry message is
        # in the queue); the next attempt claims it again. Backoff 2, 4, 8, 16 s.
        attempts = services.SourceTask.objects.get(pk=source_task_id).attempts
        raise self.retry(countdown=2**attempts, max_retries=services.SOURCE_MAX_ATTEMPTS)
    return outcome


@shared_task(bind=True, acks_late=True, max_retries=10, **RETRY)
def webhook_deliver(self, delivery_id: int) -> str:
    outcome = services.webhook_deliver(delivery_id=delivery_id)
    if outcome == "retry":
        # The service put the delivery back in QUEUED with queued_at set (the retry message
        # is in the queue); the next attempt claims it again. Backoff 2, 4, 8, 16, 32 s; the
        # service stops at WEBHOOK_MAX_ATTEMPTS.
        attempts = services.WebhookDelivery.objects.get(pk=delivery_id).attempts
        raise self.retry(
            countdown=services.webhook_backoff(attempts), max_retries=settings.WEBHOOK_MAX_ATTEMPTS
        )
    return outcome


@shared_task(acks_late=True, max_retries=10, **RETRY)
def workspace_links_send(email: str, ip: str | None) -> None:
    # Returns nothing: whether the address belongs to a contact must not reach the logs.
    services.workspace_links_request(email=email, ip=ip)


@shared_task
def requests_sweep() -> dict:
    return services.requests_sweep()


@shared_task(
    acks_late=True,
    autoretry_for=(OSError, *DATABASE_DOWN),
    retry_backoff=2,
    retry_jitter=False,
    max_retries=5,
)
def disclosure_build_report(request_id: int) -> bool:
    from disclosure.reports import disclosure_report_files

    if services.DataRequest.objects.filter(pk=request_id, portal_done_at__isnull=False).exists():
        return False
    return services.request_report_store(
        request_id=request_id, files=disclosure_report_files(request_id=request_id)
    )


@shared_task(
    acks_late=True,
    autoretry_for=(OSError, *DATABASE_DOWN),
    retry_backoff=2,
    retry_jitter=False,
    max_retries=5,
)
def request_finish(request_id: int) -> bool:
    from disclosure.reports import certificate_pdf, disclosure_report_files

    request = services.DataRequest.objects.get(pk=request_id)
    if (
        request.kind == services.Kind.DISCLOSURE
        and not request.files.filter(kind="certificate_pdf").exists()
    ):
        # The companies' answers are part of what the student is told: rebuild the report.
        services.request_report_replace(
            request_id=request_id, files=disclosure_report_files(request_id=request_id)
        )
    pdf, name = certificate_pdf(request_id=request_id)
    return services.request_certificate_store(request_id=request_id, pdf=pdf, name=name)
