"""Putting work in the Celery queue: by task name, once per unit of work, never hanging a page.

Every row that stands for queued work (an email, a company's task, a request's report or
certificate) has a `queued_at` column: set when a message for the row's next step went
into the queue, NULL when publishing failed or the step ran. The sweeps re-queue only rows
whose `queued_at` is NULL or older than the lease, and claim them first (`claim_due`), so a
backlog never makes the queue grow and two beats never queue the same work twice.

Tasks are published by name through the app's registry (the portal's AppConfig imports
every tasks module), so the modules that queue work need not import the tasks modules,
which import them.
"""

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet

log = logging.getLogger(__name__)

# After a failed publish, skip publishing for this long: with the broker gone, a page that
# queues 40 messages then costs one failed connection, not forty.
BREAKER_SECONDS = 10.0
_broker_down_until = 0.0


def lease() -> timedelta:
    """How long a queued message is trusted to be in the queue before the sweep re-queues it.

    Longer than any retry countdown (so a scheduled retry is not doubled) and than a normal
    backlog takes to drain; short enough that work lost with a flushed broker is sent the
    same hour.
    """
    return timedelta(seconds=settings.QUEUE_LEASE_SECONDS)


def _in_process() -> bool:
    return bool(current_app.conf.task_always_eager)


def publish(task_name: str, *args, countdown: float | None = None) -> bool:
    """Queue `task_name(*args)` (to run `countdown` seconds from now); False if the broker
    could not take it (the sweep will)."""
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        return False
    try:
        # retry=False: one connection attempt, bounded by the transport's connect timeout.
        current_app.tasks[task_name].apply_async(args, retry=False, countdown=countdown)
    except Exception as exc:  # kombu raises many kinds (OperationalError, OSError, ...)
        if _in_process():
            raise  # in-process tasks: a failure is the task's, not the broker's
        _broker_down_until = time.monotonic() + BREAKER_SECONDS
        log.warning("could not queue %s%r: %s", task_name, args, exc)
        return False
    return True


def publish_rows(task_name: str, model, ids: Iterable[int], *extra) -> int:
    """Publish `task_name(id, *extra)` for each row; un-claim the rows it could not queue."""
    ids = list(ids)
    for done, row_id in enumerate(ids):
        if not publish(task_name, row_id, *extra):
            model.objects.filter(pk__in=ids[done:]).update(queued_at=None)
            return done
    return len(ids)


def on_commit_publish(task_name: str, model, row_id: int, *extra) -> None:
    """Once the transaction commits, queue the row's step (its `queued_at` set by the caller)."""
    transaction.on_commit(lambda: publish_rows(task_name, model, [row_id], *extra), robust=True)


def on_commit_publish_many(task_name: str, model, row_ids: list[int]) -> None:
    """Once the transaction commits, queue one message for the step of all these rows,
    `task_name(row_ids)` (their `queued_at` set by the caller); if the broker will not take
    it, every one of them is left to the sweep."""
    on_commit_publish_for(task_name, (row_ids,), [(model, row_ids)])


def on_commit_publish_for(task_name: str, args: tuple, rows: list[tuple]) -> None:
    """Once the transaction commits, queue `task_name(*args)`: one message standing for
    the steps of `rows`, (model, ids) pairs whose `queued_at` the caller set. If the broker
    will not take it, every one of them is left to the sweeps."""

    def publish_for_all() -> None:
        if not publish(task_name, *args):
            for model, ids in rows:
                if ids:
                    model.objects.filter(pk__in=ids).update(queued_at=None)

    transaction.on_commit(publish_for_all, robust=True)


def due(now: datetime) -> Q:
    """Rows with no message believed to be in the queue."""
    return Q(queued_at=None) | Q(queued_at__lt=now - lease())


def claim_due(queryset: QuerySet, *, now: datetime, limit: int) -> list[int]:
    """Claim up to `limit` rows of `queryset` that are due, for this sweep alone: returns their
    ids with `queued_at` set to `now`. Concurrent sweeps (two beats) get disjoint rows: on
    PostgreSQL the rows stay locked until the claim commits, and a sweep skips locked rows
    (SQLite runs one writer at a time anyway)."""
    with transaction.atomic():
        rows = queryset.filter(due(now)).order_by("pk")
        if connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True, of=("self",))
        ids = list(rows.values_list("pk", flat=True)[:limit])
        if ids:
            queryset.model.objects.filter(pk__in=ids).update(queued_at=now)
    return ids
