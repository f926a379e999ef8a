"""A request passed on to its companies in one go: what `recipient_task_send` does for one
company, done for a batch of them (a request's companies, up to `enqueue.SEND_BATCH`) with a
fixed number of queries for the whole batch instead of a dozen for each company.

The worker's batch task calls it (disclosure.tasks.recipient_tasks_send); the sweep's
per-task messages still go through `recipient_task_send`. Both leave the same rows for each
way a company chose to be told (`Employer.request_delivery`): the claim, an answer link,
the company's email and the timeline event for a company told by email, the event alone for
one on the API, nothing yet for one on a digest (its digest tells it), and a webhook
delivery for any with a webhook (tests/disclosure/test_dispatch_batching.py compares them).
"""

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from disclosure.models import AnswerLink, RecipientTask, RequestEvent, Webhook, token_hash
from disclosure.services._common import Actor, Event
from disclosure.services.companies import DIGESTED, _answer_url
from disclosure.services.webhooks import webhook_delivery_queue
from portal.models import EmailMessage, Employer
from portal.shared.bulk import insert_rows
from portal.shared.emails import emails_compose_to_companies, emails_store


def _digested(task: RecipientTask) -> bool:
    """Whether the company hears of the task in its next digest (sent_at stays empty)."""
    return task.employer.request_delivery in DIGESTED


def _told_by_email_now(task: RecipientTask) -> bool:
    """Whether the company is sent this task by its own email now, in the batch: only a
    company that chose each request by email (`Employer.request_delivery`). One on a digest
    waits for it; one on the API alone finds the task in the API's list (and its webhook)."""
    return task.employer.request_delivery == Employer.Delivery.EACH


def recipient_tasks_send(*, task_ids: list[int]) -> list[int]:
    """Pass each company its request, once, the way it chose to be told: claim the tasks
    still queued; for a company told by email, make each an answer link and its email and
    note it on the timeline; for one on the API alone, note it on the timeline; for one on a
    digest, leave sent_at empty for its digest; queue a webhook delivery for each. All in one
    transaction. Returns the ids of the tasks this call passed on.

    As with `recipient_task_send`: a worker that dies before the commit leaves every task
    unclaimed; one that dies after has left email rows the outbox delivers. A task already
    claimed (by an earlier run of the same message, or another worker) is left alone; one
    whose request closed meanwhile is closed.
    """
    now = timezone.now()
    with transaction.atomic():
        # The rows this call may claim, locked until it commits: a concurrent claimer waits,
        # and finds them claimed.
        tasks = list(
            RecipientTask.objects.select_for_update(of=("self",))
            .select_related("request", "employer")
            .prefetch_related("employer__contacts")
            .filter(pk__in=task_ids, status=RecipientTask.Status.QUEUED, sent_at=None)
            .order_by("pk")
        )
        if not tasks:
            return []
        for digested in (False, True):
            ids = [task.pk for task in tasks if _digested(task) == digested]
            if ids:
                RecipientTask.objects.filter(pk__in=ids).update(
                    status=RecipientTask.Status.SENT,
                    sent_at=None if digested else now,
                    queued_at=None,
                    changed_at=now,
                )
        closed = [task.pk for task in tasks if not task.request.is_open]
        if closed:
            RecipientTask.objects.filter(pk__in=closed).update(
                status=RecipientTask.Status.CLOSED, changed_at=timezone.now()
            )
        tasks = [task for task in tasks if task.request.is_open]
        for task in tasks:
            task.status = RecipientTask.Status.SENT
            task.sent_at = None if _digested(task) else now
        _tell_by_email([task for task in tasks if _told_by_email_now(task)], now=now)
        at = timezone.now()
        RequestEvent.objects.bulk_create(
            RequestEvent(
                request=task.request,
                task=task,
                kind=Event.SENT,
                actor=Actor.SYSTEM,
                detail=f"{task.employer.name} (API)",
                at=at,
            )
            for task in tasks
            if task.employer.request_delivery == Employer.Delivery.API
        )
        # The companies' webhooks hear of their tasks here, as in recipient_task_send,
        # whichever way the company is told.
        hooked = set(
            Webhook.objects.filter(
                employer_id__in={task.employer_id for task in tasks}, active=True
            ).values_list("employer_id", flat=True)
        )
        for task in tasks:
            if task.employer_id in hooked:
                webhook_delivery_queue(task, now=now)
    return [task.pk for task in tasks]


def _tell_by_email(tasks: list[RecipientTask], *, now: datetime) -> None:
    """Each task's answer link, email and timeline event, a few statements for them all
    (`insert_rows`: `bulk_create` spent twice as long quoting a row's Japanese text)."""
    if not tasks:
        return
    # The answer page's URL reversed once for the batch, each token put in it: reversing
    # costs about 0.1 ms, as much as the rest of a task's link.
    sample = "0" * 43
    url = _answer_url(sample)
    links, answer_urls = [], []
    for task in tasks:
        token = secrets.token_urlsafe(32)  # 256 bits
        links.append(
            AnswerLink(
                task=task,
                token_sha256=token_hash(token),
                created_at=now,
                expires_at=now + timedelta(days=settings.ANSWER_LINK_DAYS),
            )
        )
        answer_urls.append(url.replace(sample, token))
    # Each request's emails rendered once per language, each company's name and link put in.
    messages: list[EmailMessage | None] = [None] * len(tasks)
    by_request: dict[int, list[int]] = {}
    for index, task in enumerate(tasks):
        by_request.setdefault(task.request_id, []).append(index)
    for indexes in by_request.values():
        request = tasks[indexes[0]].request
        made = emails_compose_to_companies(
            employers=[tasks[i].employer for i in indexes],
            template="company_request",
            context={"request": request, "link_days": settings.ANSWER_LINK_DAYS},
            secrets_each=[{"answer_url": answer_urls[i]} for i in indexes],
            kind=f"company_request:{request.reference}",
        )
        for index, message in zip(indexes, made, strict=True):
            messages[index] = message
    insert_rows(links)
    emails_store(messages)
    _emails_set(tasks, messages)
    at = timezone.now()
    insert_rows(
        [
            RequestEvent(
                request=task.request,
                task=task,
                kind=Event.SEND_FAILED if message.failed else Event.SENT,
                actor=Actor.SYSTEM,
                detail=message.last_error if message.failed else task.employer.name,
                at=at,
            )
            for task, message in zip(tasks, messages, strict=True)
        ]
    )


def _emails_set(tasks: list[RecipientTask], messages: list[EmailMessage]) -> None:
    """Each task's latest email, in one UPDATE (PostgreSQL and SQLite alike name the columns
    of a VALUES list column1, column2)."""
    for task, message in zip(tasks, messages, strict=True):
        task.email = message
    if not tasks:
        return
    table = connection.ops.quote_name(RecipientTask._meta.db_table)
    rows = ", ".join(["(%s, %s)"] * len(tasks))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET email_id = v.column2 FROM (VALUES {rows}) AS v "  # noqa: S608 - our table's name; values are parameters
            f"WHERE {table}.id = v.column1",
            [value for task in tasks for value in (task.pk, task.email_id)],
        )
