"""The periodic sweep: queue the work that has no message in the queue, and escalate
overdue companies and sources to staff."""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from disclosure import enqueue
from disclosure.models import DataRequest, RecipientTask, RequestFile, SourceTask, WebhookDelivery
from disclosure.services._common import Actor, Event, Kind, Status, _event
from disclosure.services.companies import reminders_due
from disclosure.services.corrections import corrections_erased_finish
from disclosure.services.digests import digests_send, overdue_escalate_gathered, tasks_not_told_send
from disclosure.services.sources import SOURCE_WAITING
from disclosure.services.webhooks import webhook_deliveries_unstick
from portal.models import Employer
from portal.shared.emails import email_queue_template
from portal.shared.queueing import claim_due

# A sweep queues at most this many of each kind of work; the next sweep takes the rest.
SWEEP_LIMIT = 1000
# A certificate that still fails to build after this long is left to staff (it shows missing).
CERTIFICATE_RETRY_DAYS = timedelta(days=7)


def requests_sweep(*, now: datetime | None = None) -> dict:
    """The periodic work: queue what has no message in the queue (a company's request, a
    due reminder, a disclosure's report, a completed request's certificate), and escalate
    overdue tasks to staff.

    Returns what it queued, for logs and tests. Each row is claimed by its `queued_at`
    (portal.shared.queueing.claim_due) before it is queued, and each step again by a conditional
    UPDATE in the function the task calls: two sweeps at once, or a sweep while a backlog
    drains, queue nothing twice.
    """
    now = now or timezone.now()
    live = {"request__status__in": DataRequest.OPEN}
    unsent = claim_due(
        RecipientTask.objects.filter(status=RecipientTask.Status.QUEUED, **live),
        now=now,
        limit=SWEEP_LIMIT,
    )
    enqueue.tasks_send(unsent)
    source_calls = claim_due(
        SourceTask.objects.filter(status=SourceTask.Status.QUEUED, **live),
        now=now,
        limit=SWEEP_LIMIT,
    )
    enqueue.sources_call(source_calls)
    # Companies' webhooks: a delivery whose message was lost (queued, unclaimed past the
    # lease), or whose worker died during the POST, is queued again.
    webhook_deliveries_unstick(now=now)
    deliveries = claim_due(
        WebhookDelivery.objects.filter(status=WebhookDelivery.Status.QUEUED),
        now=now,
        limit=SWEEP_LIMIT,
    )
    enqueue.webhooks_deliver(deliveries)
    reminders = []
    # Companies on a digest are reminded in it, API-only ones not by email at all.
    one_by_one = RecipientTask.objects.filter(
        employer__request_delivery=Employer.Delivery.EACH, **live
    )
    for number, due in reminders_due(one_by_one, now=now):
        claimed = claim_due(due, now=now, limit=SWEEP_LIMIT)
        enqueue.tasks_remind(claimed, number)
        reminders += claimed
    reports = claim_due(
        DataRequest.objects.filter(
            kind=Kind.DISCLOSURE, status__in=DataRequest.OPEN, portal_done_at=None
        ),
        now=now,
        limit=SWEEP_LIMIT,
    )
    enqueue.reports_build(reports)
    certificates = claim_due(
        DataRequest.objects.filter(
            status__in=[Status.COMPLETED, Status.PARTIALLY_COMPLETED],
            completed_at__gte=now - CERTIFICATE_RETRY_DAYS,
        ).exclude(files__kind=RequestFile.Kind.CERTIFICATE_PDF),
        now=now,
        limit=SWEEP_LIMIT,
    )
    enqueue.requests_finish(certificates)
    escalated = _escalate_gathered(now)
    for task in RecipientTask.objects.filter(
        employer__request_delivery=Employer.Delivery.EACH,
        status__in=[RecipientTask.Status.QUEUED, RecipientTask.Status.SENT],
        overdue=False,
        request__due_at__lt=now,
        request__status__in=DataRequest.OPEN,
    ).select_related("request", "employer")[:1000]:
        with transaction.atomic():
            if RecipientTask.objects.filter(pk=task.pk, overdue=False).update(
                overdue=True, escalated_at=now
            ):
                _event(
                    task.request,
                    Event.OVERDUE,
                    actor=Actor.SYSTEM,
                    task=task,
                    detail=task.employer.name,
                )
                email_queue_template(
                    to=settings.SUPPORT_EMAIL,
                    template="task_overdue",
                    context={
                        "task": task,
                        "request": task.request,
                        "employer": task.employer,
                        "admin_url": settings.SITE_URL
                        + reverse("admin:disclosure_datarequest_change", args=[task.request.pk]),
                    },
                    kind=f"task_overdue:{task.request.reference}",
                    language="ja",
                )
                escalated.append(task.pk)
    # After the escalation, so a digest lists what went overdue in this sweep.
    told_alone = tasks_not_told_send(now=now)
    digests = digests_send(now=now)
    escalated_sources = _sources_overdue(now)
    # An inference's correction whose result was erased meanwhile: nothing left to answer.
    erased = corrections_erased_finish(now=now, limit=SWEEP_LIMIT)
    return {
        "corrections_erased": erased,
        "source_calls": source_calls,
        "webhook_deliveries": deliveries,
        "sources_overdue": escalated_sources,
        "unsent": unsent,
        "reminders": reminders,
        "escalated": escalated,
        "reports": reports,
        "certificates": certificates,
        "told_alone": told_alone,
        "digests": digests,
    }


def _escalate_gathered(now: datetime) -> list[int]:
    """Overdue tasks of companies on a digest or on the API alone: staff get one email per
    company and sweep listing them (a wave makes thousands at once), not one each."""
    overdue = (
        RecipientTask.objects.filter(
            status__in=[RecipientTask.Status.QUEUED, RecipientTask.Status.SENT],
            overdue=False,
            request__due_at__lt=now,
            request__status__in=DataRequest.OPEN,
        )
        .exclude(employer__request_delivery=Employer.Delivery.EACH)
        .values_list("employer_id", "pk")
        .order_by("employer_id", "pk")[:SWEEP_LIMIT]
    )
    by_employer: dict[int, list[int]] = {}
    for employer_id, pk in overdue:
        by_employer.setdefault(employer_id, []).append(pk)
    escalated = []
    for employer in Employer.objects.filter(pk__in=by_employer).order_by("pk"):
        escalated += overdue_escalate_gathered(
            employer=employer, task_ids=by_employer[employer.pk], now=now
        )
    return escalated


def _sources_overdue(now: datetime) -> list[int]:
    """Sources that have not answered by the request's due date: marked overdue and said on
    the request's timeline (so the student sees staff are on it), once each. Staff find them
    on the request's page, where an overdue call may be made again."""
    escalated = []
    for task in SourceTask.objects.filter(
        status__in=SOURCE_WAITING,
        overdue=False,
        request__due_at__lt=now,
        request__status__in=DataRequest.OPEN,
    ).select_related("request", "source")[:1000]:
        with transaction.atomic():
            if SourceTask.objects.filter(pk=task.pk, overdue=False).update(overdue=True):
                _event(
                    task.request, Event.SOURCE_OVERDUE, actor=Actor.SYSTEM, detail=task.source.name
                )
                escalated.append(task.pk)
    return escalated
