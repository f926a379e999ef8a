"""How companies are told (issue 19): each request by its own email, an hourly or a daily
digest, or the API and webhook only (`Employer.request_delivery`).

A company on a digest is not written to per request. `recipient_task_send` claims its new
task without an email (sent_at stays empty: "waiting for the digest"), its reminders are not
sent one by one, and the sweep calls `digests_send`: once a period has begun (every hour, or
09:00 Japan time) each such company with something to tell gets one email listing its new
requests, the reminders due and the requests gone overdue, with one workspace link (it
replaces the company's earlier digest links nobody used). An API-only company gets an email
only when requests go overdue, gathered the same way.

Told exactly once, under two sweeps at once, a worker killed mid-digest or a broker
flushed: the digest, its items, the tasks' new state, the timeline events and the email row
commit in one transaction under the company's row lock; a company has at most one digest a
period (`one_digest_per_period`), a task is in at most one digest for each reason
(`one_digest_item_per_reason`), and the email row is delivered once by the outbox
(portal/tasks.py). A digest that was not made (the sweep died, or its message was lost) is
made by the next sweep: it looks at what is pending, not at what was queued.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.urls import reverse
from django.utils import timezone

from disclosure.models import (
    CompanyDigest,
    DataRequest,
    DigestItem,
    RecipientTask,
    RequestEvent,
)
from disclosure.services._common import Actor, Event
from disclosure.services.companies import DIGESTED, recipient_task_tell, reminders_due
from disclosure.services.workspace import workspace_digest_link_make, workspace_url
from portal.models import Employer
from portal.shared.emails import email_queue_template, email_queue_to_company

Delivery = Employer.Delivery
Reason = DigestItem.Reason
REMINDERS = (Reason.REMINDER_1, Reason.REMINDER_2)  # a digest tells of the first two
TOKYO = ZoneInfo("Asia/Tokyo")
DAILY_AT_HOUR = 9  # 09:00 Japan time
# Rows a digest email lists for each reason; the rest are counted and in the workspace.
LIST_LIMIT = 100


def digest_period(delivery: str, now: datetime) -> tuple[str, datetime]:
    """The period `now` falls in, as (key, start). An API-only company's overdue notices
    have a period per sweep: its items' uniqueness alone keeps them from repeating."""
    if delivery == Delivery.DAILY:
        local = timezone.localtime(now, TOKYO)
        start = local.replace(hour=DAILY_AT_HOUR, minute=0, second=0, microsecond=0)
        if local < start:
            start -= timedelta(days=1)
        return f"daily:{start.date().isoformat()}", start
    if delivery == Delivery.HOURLY:
        # An "hour" is DIGEST_HOUR_SECONDS long (tests of faults make it a few seconds).
        length = settings.DIGEST_HOUR_SECONDS
        start = datetime.fromtimestamp(int(now.timestamp()) // length * length, tz=UTC)
        return f"hourly:{start.isoformat(timespec='seconds')}", start
    return f"{delivery}:{now.isoformat(timespec='microseconds')}", now


def _open(tasks: QuerySet[RecipientTask]) -> QuerySet[RecipientTask]:
    return tasks.filter(status=RecipientTask.Status.SENT, request__status__in=DataRequest.OPEN)


def _not_told(tasks: QuerySet[RecipientTask], reason: str) -> QuerySet[RecipientTask]:
    return tasks.exclude(Exists(DigestItem.objects.filter(task=OuterRef("pk"), reason=reason)))


def _pending(employer: Employer, delivery: str, *, now: datetime) -> dict[str, QuerySet]:
    """What the company has not been told yet, by reason."""
    tasks = _open(RecipientTask.objects.filter(employer=employer))
    pending = {}
    if delivery in DIGESTED:
        pending[Reason.NEW] = tasks.filter(sent_at=None)
        for number, due in reminders_due(tasks, now=now):
            if number <= len(REMINDERS):
                pending[REMINDERS[number - 1]] = due
    pending[Reason.OVERDUE] = _not_told(tasks.filter(overdue=True), Reason.OVERDUE)
    return pending


def _due_by(reason: str, tasks: QuerySet, start: datetime) -> bool:
    """Whether something of `reason` was already due when the period began: what became
    due after it waits for the next period (a daily digest goes at 09:00, not at 10:05
    because a request arrived at 10:00)."""
    if reason == Reason.NEW:
        return tasks.filter(created_at__lte=start).exists()
    if reason == Reason.OVERDUE:
        return tasks.filter(request__due_at__lte=start).exists()
    number = REMINDERS.index(reason) + 1
    days = settings.REQUEST_REMINDER_DAYS[number - 1]
    return tasks.filter(sent_at__lte=start - timedelta(days=days)).exists()


@dataclass
class Section:
    reason: str
    count: int
    by_kind: dict[str, int]
    rows: list[RecipientTask]

    @property
    def more(self) -> int:
        return self.count - len(self.rows)

    @property
    def kinds(self) -> list[tuple[str, int]]:
        """(the kind's name, in the language being rendered; how many)."""
        return [(DataRequest.Kind(kind).label, n) for kind, n in self.by_kind.items()]


def _sections(digest: CompanyDigest) -> list[Section]:
    sections = []
    for reason in Reason.values:
        tasks = RecipientTask.objects.filter(
            digest_items__digest=digest, digest_items__reason=reason
        )
        by_kind = dict(
            tasks.values_list("request__kind").annotate(n=Count("pk")).order_by("request__kind")
        )
        if not by_kind:
            continue
        rows = list(tasks.select_related("request").order_by("request__due_at", "pk")[:LIST_LIMIT])
        sections.append(Section(reason, sum(by_kind.values()), by_kind, rows))
    return sections


def company_digest_send(*, employer_id: int, now: datetime | None = None) -> CompanyDigest | None:
    """Tell the company everything pending in one email, if its period has begun with
    something due; None when there is nothing to tell (or it was told this period)."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            employer = (
                Employer.objects.select_for_update()
                .prefetch_related("contacts")
                .get(pk=employer_id)
            )
            delivery = employer.request_delivery
            if delivery == Delivery.EACH:
                return None
            period, start = digest_period(delivery, now)
            if CompanyDigest.objects.filter(employer=employer, period=period).exists():
                return None
            pending = _pending(employer, delivery, now=now)
            if not any(_due_by(reason, tasks, start) for reason, tasks in pending.items()):
                return None
            digest = CompanyDigest.objects.create(
                employer=employer, period=period, delivery=delivery, created_at=now
            )
            for reason, tasks in pending.items():
                DigestItem.objects.bulk_create(
                    DigestItem(digest=digest, task_id=pk, reason=reason)
                    for pk in tasks.values_list("pk", flat=True).order_by("pk")
                )
            _tell(digest, now=now)
            return digest
    except IntegrityError:
        return None  # another sweep told it at the same moment: nothing twice


def _tell(digest: CompanyDigest, *, now: datetime) -> None:
    """The digest's effects: the tasks' new state, one event on each request's timeline,
    one email with one workspace link."""
    employer = digest.employer
    name = employer.name
    event_kinds = {
        Reason.NEW: Event.SENT,
        Reason.REMINDER_1: Event.REMINDED,
        Reason.REMINDER_2: Event.REMINDED,
    }
    events = []
    for reason, kind in event_kinds.items():
        # One filter() call: both conditions on the same item (this digest's, this reason).
        ids = list(
            RecipientTask.objects.filter(
                digest_items__digest=digest, digest_items__reason=reason
            ).values_list("pk", "request_id")
        )
        if not ids:
            continue
        pks = [pk for pk, _request in ids]
        if reason == Reason.NEW:
            RecipientTask.objects.filter(pk__in=pks, sent_at=None).update(
                sent_at=now, changed_at=now
            )
        else:
            number = REMINDERS.index(reason) + 1
            RecipientTask.objects.filter(pk__in=pks, reminders_sent=number - 1).update(
                reminders_sent=number, last_reminder_at=now, changed_at=now
            )
        events += [
            RequestEvent(
                request_id=request_id,
                task_id=pk,
                kind=kind,
                actor=Actor.SYSTEM,
                detail=f"{name} (digest)",
                at=now,
            )
            for pk, request_id in ids
        ]
    RequestEvent.objects.bulk_create(events, batch_size=1000)
    sections = _sections(digest)
    digest.counts = {s.reason: s.count for s in sections}
    contact = employer.primary_contact
    context = {
        "employer": employer,
        "digest": digest,
        "sections": sections,
        "link_days": settings.WORKSPACE_LINK_DAYS,
        "workspace_url": "",
    }
    if contact is not None:
        _link, token = workspace_digest_link_make(employer=employer, contact=contact, now=now)
        context["workspace_url"] = workspace_url(token)
    digest.email = email_queue_to_company(
        employer=employer,
        template="company_digest",
        context=context,
        kind=f"company_digest:{employer.pk}:{digest.period}",
        secrets=("workspace_url",),
    )
    digest.save(update_fields=["counts", "email"])


def digests_send(*, now: datetime | None = None) -> list[int]:
    """The sweep's part: every company on a digest or on the API alone that may have
    something to tell. Returns the digests made."""
    now = now or timezone.now()
    companies = (
        RecipientTask.objects.filter(
            status=RecipientTask.Status.SENT,
            request__status__in=DataRequest.OPEN,
            employer__request_delivery__in=[*DIGESTED, Delivery.API],
        )
        .values_list("employer_id", flat=True)
        .distinct()
        .order_by("employer_id")
    )
    made = []
    for employer_id in companies:
        digest = company_digest_send(employer_id=employer_id, now=now)
        if digest is not None:
            made.append(digest.pk)
    return made


def tasks_not_told_send(*, now: datetime | None = None) -> int:
    """Tasks claimed for a digest whose company has since chosen another way: sent by their
    own email now (each request), or marked sent (API only: the API lists them)."""
    now = now or timezone.now()
    stranded = _open(RecipientTask.objects.filter(sent_at=None)).exclude(
        employer__request_delivery__in=DIGESTED
    )
    told = 0
    for pk in stranded.values_list("pk", flat=True)[:1000]:
        told += recipient_task_tell(task_id=pk, now=now)
    return told


def overdue_escalate_gathered(
    *, employer: Employer, task_ids: list[int], now: datetime
) -> list[int]:
    """Staff are told of a digest or API-only company's requests gone overdue in one email
    per company and sweep, not one per request. Returns the tasks this call escalated."""
    with transaction.atomic():
        claimed = list(
            RecipientTask.objects.select_for_update(skip_locked=True)
            .filter(pk__in=task_ids, overdue=False)
            .values_list("pk", flat=True)
        )
        if not claimed:
            return []
        RecipientTask.objects.filter(pk__in=claimed).update(overdue=True, escalated_at=now)
        tasks = list(
            RecipientTask.objects.filter(pk__in=claimed)
            .select_related("request")
            .order_by("request__due_at", "pk")
        )
        RequestEvent.objects.bulk_create(
            RequestEvent(
                request_id=t.request_id,
                task_id=t.pk,
                kind=Event.OVERDUE,
                actor=Actor.SYSTEM,
                detail=employer.name,
                at=now,
            )
            for t in tasks
        )
        email_queue_template(
            to=settings.SUPPORT_EMAIL,
            template="tasks_overdue",
            context={
                "employer": employer,
                "count": len(tasks),
                "tasks": tasks[:LIST_LIMIT],
                "more": max(0, len(tasks) - LIST_LIMIT),
                "admin_url": settings.SITE_URL
                + reverse("admin:disclosure_recipienttask_changelist")
                + f"?employer__id__exact={employer.pk}&overdue__exact=1",
            },
            kind=f"tasks_overdue:{employer.pk}:{now.isoformat(timespec='seconds')}",
            language="ja",
        )
    return claimed
