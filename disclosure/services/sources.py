"""The site's own systems (DataSource) in a request: the signed call and its retries, staff
calling again or closing, and the source's signed answer."""

import json

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from disclosure import enqueue, signing
from disclosure.models import DataRequest, SourceTask
from disclosure.services._common import Actor, Event, Kind, _event
from disclosure.services.filing import _complete_if_done
from portal.models import User
from portal.shared.logs import redact

# A source call is tried this many times (timeouts, 5xx, connection errors) before it fails.
SOURCE_MAX_ATTEMPTS = 5


# A source task not yet answered or closed.
SOURCE_WAITING = [SourceTask.Status.QUEUED, SourceTask.Status.CALLED, SourceTask.Status.FAILED]


def _source_callback_url(task: SourceTask) -> str:
    return settings.SITE_URL + reverse(
        "disclosure:source_callback", args=[task.request.public_id, task.source_id]
    )


def source_call_body(task: SourceTask) -> bytes:
    return json.dumps(
        {
            "request": str(task.request.public_id),
            "kind": task.request.kind,
            "student": str(task.request.student.public_id),
            "callback": _source_callback_url(task),
        },
        separators=(",", ":"),
    ).encode("utf-8")


class SourceCallError(Exception):
    def __init__(self, message: str, *, retry: bool):
        super().__init__(message)
        self.retry = retry


def _post_to_source(task: SourceTask) -> None:
    """POST the signed call; raises SourceCallError saying whether trying again may help."""
    body = source_call_body(task)
    headers = {"Content-Type": "application/json", **signing.sign(task.source.secret, body)}
    try:
        response = requests.post(
            task.source.endpoint,
            data=body,
            headers=headers,
            timeout=settings.SOURCE_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
    except requests.Timeout:
        raise SourceCallError("timeout", retry=True) from None
    except requests.RequestException as exc:  # refused, reset, DNS, TLS
        raise SourceCallError(f"{type(exc).__name__}: {exc}"[:500], retry=True) from None
    if response.status_code >= 300:
        raise SourceCallError(
            f"HTTP {response.status_code} {response.reason}", retry=response.status_code >= 500
        )


def source_task_call(*, task_id: int) -> str:
    """Call the source once per attempt: claimed by a conditional UPDATE (a second message
    for the same attempt finds nothing to claim). Returns "called", "retry" (the caller
    queues the next attempt after a backoff), "failed" or "skipped".

    The HTTP call is made outside any transaction: a slow source holds no lock."""
    now = timezone.now()
    task = SourceTask.objects.filter(pk=task_id).select_related("request__student", "source")
    task = task.first()
    if task is None:
        return "skipped"
    claimed = SourceTask.objects.filter(
        pk=task_id,
        status=SourceTask.Status.QUEUED,
        attempts=task.attempts,
        request__status__in=DataRequest.OPEN,
    ).update(
        status=SourceTask.Status.CALLED,
        called_at=now,
        attempts=task.attempts + 1,
        queued_at=None,
    )
    if not claimed:
        return "skipped"
    attempt = task.attempts + 1
    try:
        _post_to_source(task)
    except SourceCallError as exc:
        error = redact(str(exc))[:1000]  # stored masked, as logged
        retry = exc.retry and attempt < SOURCE_MAX_ATTEMPTS
        with transaction.atomic():
            # Only if still waiting: a fast source may already have answered.
            if retry:
                changed = SourceTask.objects.filter(
                    pk=task_id, status=SourceTask.Status.CALLED
                ).update(status=SourceTask.Status.QUEUED, last_error=error, queued_at=now)
                kind = Event.SOURCE_RETRY
            else:
                changed = SourceTask.objects.filter(
                    pk=task_id, status=SourceTask.Status.CALLED
                ).update(status=SourceTask.Status.FAILED, last_error=error)
                kind = Event.SOURCE_FAILED
            if changed:
                _event(
                    task.request,
                    kind,
                    actor=Actor.SYSTEM,
                    detail=f"{task.source.name}: {error} (attempt {attempt})",
                )
        return ("retry" if retry else "failed") if changed else "skipped"
    SourceTask.objects.filter(pk=task_id, status=SourceTask.Status.CALLED).update(last_error="")
    _event(task.request, Event.SOURCE_CALLED, actor=Actor.SYSTEM, detail=task.source.name)
    return "called"


def source_task_recall(*, task: SourceTask, by: User, reason: str) -> None:
    """Staff: call a source again, with a reason: a failed call (after its owners fixed it),
    or a call still unanswered past the due date (SourceTask.may_be_called_again)."""
    if not reason.strip():
        raise ValidationError(_("Give a reason."))
    with transaction.atomic():
        changed = (
            SourceTask.objects.filter(pk=task.pk, request__status__in=DataRequest.OPEN)
            .filter(
                Q(status=SourceTask.Status.FAILED)
                | Q(status=SourceTask.Status.CALLED, overdue=True)
            )
            .update(status=SourceTask.Status.QUEUED, attempts=0, queued_at=timezone.now())
        )
        if not changed:
            raise ValidationError(
                _(
                    "Only a failed call, or one unanswered past the due date, of an open "
                    "request can be made again."
                )
            )
        enqueue.source_call(task.pk)


def source_task_close(*, task: SourceTask, by: User, reason: str) -> None:
    """Staff: stop waiting for a source; the request then completes only partially."""
    if not reason.strip():
        raise ValidationError(_("Give a reason."))
    with transaction.atomic():
        closed = SourceTask.objects.filter(
            pk=task.pk,
            status__in=[
                SourceTask.Status.QUEUED,
                SourceTask.Status.CALLED,
                SourceTask.Status.FAILED,
            ],
            request__status__in=DataRequest.OPEN,
        ).update(status=SourceTask.Status.CLOSED)
        if not closed:
            raise ValidationError(_("This source's task is already finished."))
        _event(
            task.request,
            Event.CLOSED,
            actor=Actor.STAFF,
            user=by,
            detail=f"{task.source.name}: {reason.strip()}",
        )
        _complete_if_done(task.request)


# Which answers fit which kind of request, for a source.
SOURCE_ANSWERS_BY_KIND = {
    Kind.DELETION: ("confirmed", "held_none"),
    Kind.CESSATION: ("confirmed", "held_none"),
    Kind.DISCLOSURE: ("disclosed", "held_none"),
    Kind.CORRECTION: ("confirmed", "held_none"),  # not called for one yet (filing.py)
}
SOURCE_DATA_MAX_BYTES = 1024 * 1024


class SourceAnswerRefused(ValidationError):
    pass


def source_task_answer(*, task: SourceTask, answer: str, data: dict | None = None) -> SourceTask:
    """Record a source's signed answer, once; complete the request if it was the last."""
    if answer not in SOURCE_ANSWERS_BY_KIND[task.request.kind]:
        raise SourceAnswerRefused(_("That answer does not fit this request."), code="answer")
    data = data or {}
    if not isinstance(data, dict):
        raise SourceAnswerRefused("data must be an object", code="data")
    if len(json.dumps(data)) > SOURCE_DATA_MAX_BYTES:
        raise SourceAnswerRefused("data too large", code="data")
    now = timezone.now()
    with transaction.atomic():
        claimed = SourceTask.objects.filter(
            pk=task.pk,
            answered_at=None,
            status__in=[
                SourceTask.Status.QUEUED,
                SourceTask.Status.CALLED,
                SourceTask.Status.FAILED,
            ],
            request__status__in=DataRequest.OPEN,
        ).update(
            status=SourceTask.Status.ANSWERED,
            answer=answer,
            answered_at=now,
            data=data if answer == SourceTask.Answer.DISCLOSED else {},
            queued_at=None,
        )
        if not claimed:
            raise SourceAnswerRefused("already answered", code="answered")
        task = SourceTask.objects.select_related("request", "source").get(pk=task.pk)
        _event(
            task.request,
            Event.SOURCE_ANSWERED,
            actor=Actor.SYSTEM,
            detail=f"{task.source.name}: {task.get_answer_display()}",
            at=now,
        )
        _complete_if_done(task.request)
    return task
