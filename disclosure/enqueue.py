"""The work services put in the queue: on commit, or at once for a sweep's claimed rows.

Each function names a task of `disclosure.tasks` (which imports the services; this module
imports neither) and the rows whose `queued_at` says a message for them is in the queue:
the caller has set it (in the same transaction, or by portal.shared.queueing.claim_due). If the
broker cannot take the message, the row's `queued_at` is cleared and the next sweep queues
it (services.requests_sweep).
"""

from disclosure.models import DataRequest, RecipientTask, SourceTask, WebhookDelivery
from portal.models import EmailMessage
from portal.shared.queueing import (
    on_commit_publish,
    on_commit_publish_for,
    on_commit_publish_many,
    publish_rows,
)

SEND = "disclosure.tasks.recipient_task_send"
SEND_MANY = "disclosure.tasks.recipient_tasks_send"
EMAILS_SEND = "portal.tasks.emails_send"
# A request's companies go in messages of at most this many tasks, each passed on in turn
# by one worker: 38 companies cost a request one message instead of 38.
SEND_BATCH = 50
REMIND = "disclosure.tasks.recipient_task_remind"
REPORT = "disclosure.tasks.disclosure_build_report"
FINISH = "disclosure.tasks.request_finish"
SOURCE_CALL = "disclosure.tasks.source_call"
WEBHOOK_DELIVER = "disclosure.tasks.webhook_deliver"


def task_send(task_id: int) -> None:
    on_commit_publish(SEND, RecipientTask, task_id)


def tasks_send_on_commit(
    task_ids: list[int], *, emails: list[EmailMessage] = (), source_task_ids: list[int] = ()
) -> None:
    """The companies' tasks of a request just filed, in as few messages as SEND_BATCH
    allows, the first carrying `emails` (queued in the same transaction and held back from
    the broker: portal.shared.emails.emails_held) for the worker to send first, and the
    site's own systems' calls (`source_task_ids`), which the worker queues one by one
    before anything else (`sources_call`; each call is claimed once, so a redelivered
    message queuing them again calls nothing twice): the filing hands the broker one
    message, not one a source. If the broker refuses a message, its rows wait for the
    sweeps."""
    email_ids = [email.pk for email in emails if not email.failed]
    if not task_ids:
        if email_ids:
            on_commit_publish_many(EMAILS_SEND, EmailMessage, email_ids)
        for source_task_id in source_task_ids:
            source_call(source_task_id)
        return
    for start in range(0, len(task_ids), SEND_BATCH):
        batch = task_ids[start : start + SEND_BATCH]
        if start == 0:
            sources = list(source_task_ids)
            args = (batch, email_ids, sources) if sources else (batch, email_ids)
            rows = [(RecipientTask, batch), (EmailMessage, email_ids), (SourceTask, sources)]
        else:
            args, rows = (batch, []), [(RecipientTask, batch)]
        on_commit_publish_for(SEND_MANY, args, rows)


def source_call(source_task_id: int) -> None:
    on_commit_publish(SOURCE_CALL, SourceTask, source_task_id)


def webhook_deliver(delivery_id: int) -> None:
    on_commit_publish(WEBHOOK_DELIVER, WebhookDelivery, delivery_id)


def report_build(request_id: int) -> None:
    on_commit_publish(REPORT, DataRequest, request_id)


def request_finish(request_id: int) -> None:
    on_commit_publish(FINISH, DataRequest, request_id)


# For rows a sweep claimed: queued now, each returns how many the broker took.


def tasks_send(task_ids: list[int]) -> int:
    return publish_rows(SEND, RecipientTask, task_ids)


def tasks_remind(task_ids: list[int], number: int) -> int:
    return publish_rows(REMIND, RecipientTask, task_ids, number)


def reports_build(request_ids: list[int]) -> int:
    return publish_rows(REPORT, DataRequest, request_ids)


def requests_finish(request_ids: list[int]) -> int:
    return publish_rows(FINISH, DataRequest, request_ids)


def sources_call(source_task_ids: list[int]) -> int:
    return publish_rows(SOURCE_CALL, SourceTask, source_task_ids)


def webhooks_deliver(delivery_ids: list[int]) -> int:
    return publish_rows(WEBHOOK_DELIVER, WebhookDelivery, delivery_ids)
