"""A company's workspace (issue 19): every task passed to one company, opened by an emailed,
single-company, expiring link; no account.

A privacy contact asks for a link by typing their address; one link per company whose
contact they are is emailed (only the SHA-256 of its token is stored, the token goes out
sealed in the email, like an answer link's); a digest carries one too. A link signs one
session in to that one company, once: using it spends it, and a digest's link replaces the
company's earlier digest links nobody used. Each sign-in and each answer is recorded: a
`WorkspaceEvent` staff read under the company, and the audit log. Answers go through
`recipient_task_answer`, so each task's answer, timeline event, student email and
certificate are exactly those of the answer page.
"""

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Case, IntegerField, Q, QuerySet, Value, When
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from audit.log import audit_record
from audit.models import AuditEntry
from disclosure.models import (
    DELETION_ATTESTATION,
    RecipientTask,
    WorkspaceEvent,
    WorkspaceLink,
    token_hash,
)
from disclosure.services.companies import (
    ANSWERS_BY_KIND,
    AnswerRefused,
    recipient_task_answer,
    recipient_tasks_answer,
)
from portal.models import Employer, PrivacyContact, User
from portal.shared.emails import email_queue_template
from portal.shared.http import client_ip

# The answers a company may give to many tasks at once; refusals take a reason, one by one.
BULK_ANSWERS = (
    RecipientTask.Answer.DELETED,
    RecipientTask.Answer.CORRECTED,
    RecipientTask.Answer.HELD_NONE,
)
# Tasks answered in one transaction.
BATCH_SIZE = 500
OPEN = (RecipientTask.Status.QUEUED, RecipientTask.Status.SENT)


def workspace_url(token: str) -> str:
    return settings.SITE_URL + reverse("disclosure:workspace_open", args=[token])


def _audit(*, name: str, link: WorkspaceLink, request: HttpRequest | None, **kwargs) -> None:
    audit_record(
        action=AuditEntry.Action.COMPANY,
        name=name,
        request=request,
        actor_label=link.email,
        target=link.employer,
        **kwargs,
    )


def workspace_link_make(
    *,
    employer: Employer,
    contact: PrivacyContact,
    now: datetime,
    origin: str = WorkspaceLink.Origin.ASKED,
) -> tuple[WorkspaceLink, str]:
    """A new link to the company's workspace for `contact`: the row holds the token's
    SHA-256; the token is returned for the one email that carries it (sealed)."""
    token = secrets.token_urlsafe(32)  # 256 bits
    link = WorkspaceLink.objects.create(
        employer=employer,
        contact=contact,
        email=contact.email,
        origin=origin,
        token_sha256=token_hash(token),
        created_at=now,
        expires_at=now + timedelta(days=settings.WORKSPACE_LINK_DAYS),
    )
    return link, token


def workspace_digest_link_make(
    *, employer: Employer, contact: PrivacyContact, now: datetime
) -> tuple[WorkspaceLink, str]:
    """A digest's link: it replaces the company's earlier digest links that nobody has used
    (revoked, with a "replaced" event each), so an hourly digest leaves one unused link in
    the mailbox, not one an hour. A link the contact asked for, or one already used (its
    session goes on), is left as it is."""
    with transaction.atomic():
        # Locked first: a sign-in with one of them waits, then finds it revoked.
        earlier = list(
            WorkspaceLink.objects.select_for_update()
            .filter(
                employer=employer,
                origin=WorkspaceLink.Origin.DIGEST,
                used_at=None,
                revoked_at=None,
                expires_at__gt=now,
            )
            .values_list("pk", flat=True)
        )
        link, token = workspace_link_make(
            employer=employer, contact=contact, now=now, origin=WorkspaceLink.Origin.DIGEST
        )
        if earlier:
            WorkspaceLink.objects.filter(pk__in=earlier).update(revoked_at=now)
            WorkspaceEvent.objects.bulk_create(
                WorkspaceEvent(
                    link_id=pk,
                    employer=employer,
                    kind=WorkspaceEvent.Kind.REPLACED,
                    at=now,
                    detail=f"→ {link.pk}",
                )
                for pk in earlier
            )
    return link, token


def workspace_link_send(
    *,
    employer: Employer,
    contact: PrivacyContact,
    request: HttpRequest | None = None,
    ip: str | None = None,
) -> WorkspaceLink:
    """Make a link to the company's workspace and email it to `contact` (one of its
    privacy contacts), in the contact's language."""
    now = timezone.now()
    with transaction.atomic():
        link, token = workspace_link_make(employer=employer, contact=contact, now=now)
        email_queue_template(
            to=contact.email,
            template="company_workspace_link",
            context={
                "employer": employer,
                "employer_name": employer.display_name(contact.language),
                "contact_name": contact.name,
                "workspace_url": workspace_url(token),
                "link_days": settings.WORKSPACE_LINK_DAYS,
            },
            kind=f"company_workspace_link:{employer.pk}",
            language=contact.language,
            secrets=("workspace_url",),
        )
        WorkspaceEvent.objects.create(
            link=link,
            employer=employer,
            kind=WorkspaceEvent.Kind.SENT,
            at=now,
            ip=client_ip(request) if request is not None else ip,
        )
        _audit(name="disclosure.workspace_link_sent", link=link, request=request)
    return link


def workspace_links_request(
    *, email: str, request: HttpRequest | None = None, ip: str | None = None
) -> int:
    """Someone typed `email` on the public page: send one link per company it is a current
    privacy contact of. Returns how many were sent (the page never says). The page queues
    this (disclosure.tasks.workspace_links_send), so it answers in the same time whatever
    was typed; `ip` is then the asker's address, recorded with each link."""
    contacts = (
        PrivacyContact.objects.filter(email__iexact=email.strip())
        .select_related("employer")
        .order_by("employer_id", "id")
    )
    sent = 0
    seen: set[int] = set()
    for contact in contacts:
        if contact.employer_id in seen:
            continue
        seen.add(contact.employer_id)
        workspace_link_send(employer=contact.employer, contact=contact, request=request, ip=ip)
        sent += 1
    return sent


def workspace_link_for_task(
    *, task: RecipientTask, request: HttpRequest | None = None
) -> WorkspaceLink | None:
    """From a per-request answer page: a workspace link to the company's primary contact
    (whom the request was sent to). None when the company has no contact."""
    contact = task.employer.primary_contact
    if contact is None:
        return None
    return workspace_link_send(employer=task.employer, contact=contact, request=request)


def workspace_link_lookup(*, token: str) -> WorkspaceLink | None:
    if not token or len(token) > 200:
        return None
    return (
        WorkspaceLink.objects.select_related("employer", "contact")
        .filter(token_sha256=token_hash(token))
        .first()
    )


def workspace_sign_in(*, link: WorkspaceLink, request: HttpRequest | None = None) -> bool:
    """Spend the link on a sign-in, and record it. False (and nothing recorded) if it has
    been used, has expired or been revoked. The one conditional UPDATE is the claim: of two
    sign-ins at once, one updates the row and the other finds it used."""
    now = timezone.now()
    with transaction.atomic():
        used = WorkspaceLink.objects.filter(
            pk=link.pk, used_at=None, revoked_at=None, expires_at__gt=now
        ).update(used_at=now)
        if not used:
            return False
        link.used_at = now
        WorkspaceEvent.objects.create(
            link=link,
            employer_id=link.employer_id,
            kind=WorkspaceEvent.Kind.SIGNED_IN,
            at=now,
            ip=client_ip(request) if request is not None else None,
        )
        _audit(name="disclosure.workspace_sign_in", link=link, request=request)
    return True


def workspace_link_revoke(
    *, link: WorkspaceLink, by: User, reason: str = "", request: HttpRequest | None = None
) -> bool:
    """Staff: the link stops working at once (a session it opened is signed out on its next
    page). Returns whether this call revoked it."""
    now = timezone.now()
    with transaction.atomic():
        revoked = WorkspaceLink.objects.filter(pk=link.pk, revoked_at=None).update(
            revoked_at=now, revoked_by=by
        )
        if not revoked:
            return False
        WorkspaceEvent.objects.create(
            link=link,
            employer_id=link.employer_id,
            kind=WorkspaceEvent.Kind.REVOKED,
            at=now,
            detail=reason,
        )
        audit_record(
            action=AuditEntry.Action.ACTION,
            name="disclosure.revoke_workspace_link",
            actor=by,
            request=request,
            target=link,
            changes={"revoked_at": now},
            reason=reason,
        )
    return True


# --- the list -------------------------------------------------------------------------------


@dataclass
class TaskFilter:
    """The workspace list's filters and search, as its GET parameters say."""

    status: str = "open"  # open, answered, all
    overdue: bool = False
    kind: str = ""
    filed_from: date | None = None
    filed_to: date | None = None
    q: str = ""


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def workspace_tasks(*, employer: Employer, filters: TaskFilter) -> QuerySet[RecipientTask]:
    """The company's tasks that match, open first, then newest."""
    tasks = RecipientTask.objects.filter(employer=employer)
    now = timezone.now()
    if filters.status == "open":
        tasks = tasks.filter(status__in=OPEN)
    elif filters.status == "answered":
        tasks = tasks.exclude(status__in=OPEN)
    if filters.overdue:
        tasks = tasks.filter(status__in=OPEN, request__due_at__lt=now)
    if filters.kind:
        tasks = tasks.filter(request__kind=filters.kind)
    if filters.filed_from:
        tasks = tasks.filter(request__submitted_at__gte=_day_start(filters.filed_from))
    if filters.filed_to:
        tasks = tasks.filter(
            request__submitted_at__lt=_day_start(filters.filed_to + timedelta(days=1))
        )
    q = " ".join(filters.q.split())
    if q:
        tasks = tasks.filter(
            Q(request__reference=q.upper())
            | Q(request__student__display_name__icontains=q)
            | Q(request__student__email__icontains=q)
        )
    if filters.status in ("open", "answered") or filters.overdue:
        # One side only: newest first, along the (employer, created_at, id) index.
        return tasks.order_by("-created_at", "-id")
    return tasks.annotate(
        open_first=Case(
            When(status__in=OPEN, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
    ).order_by("open_first", "-created_at", "-id")


# --- answers in bulk ------------------------------------------------------------------------


@dataclass
class BulkResult:
    answered: list[RecipientTask] = field(default_factory=list)
    # (reference or "", why it was skipped)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _skip_reason(task: RecipientTask, answer: str) -> str | None:
    if task.answered_at is not None or task.status == RecipientTask.Status.ANSWERED:
        return _("already answered")
    if task.status == RecipientTask.Status.CLOSED or not task.request.is_open:
        return _("the request is closed")
    if answer not in ANSWERS_BY_KIND[task.request.kind]:
        return _("this answer does not fit a %(kind)s request") % {
            "kind": task.request.get_kind_display()
        }
    return None


def workspace_answer_bulk(
    *,
    link: WorkspaceLink,
    task_ids: list[int],
    answer: str,
    name: str,
    role: str,
    attested: bool,
    request: HttpRequest | None = None,
) -> BulkResult:
    """Give one answer ("deleted", "corrected" or "held none") to many of the company's
    tasks: each task gets its own answer, event, student email and certificate
    (`recipient_task_answer`), BATCH_SIZE tasks to a transaction. A task of another company
    is skipped as unknown; one already answered, closed, or of a kind the answer does not
    fit is skipped with why.
    Posting the same again answers nothing twice."""
    name, role = " ".join(name.split()), " ".join(role.split())
    if answer not in BULK_ANSWERS:
        raise AnswerRefused(_("Choose “deleted”, “corrected” or “held none”."), code="answer")
    if not name or not role:
        raise AnswerRefused(_("Give the name and role of the person answering."), code="name")
    if answer == RecipientTask.Answer.DELETED and not attested:
        raise AnswerRefused(
            _("Tick the confirmation; the answer cannot be recorded without it."),
            code="attestation",
        )
    answered_by = f"{name} ({role})"[:200]
    statement = str(DELETION_ATTESTATION) if answer == RecipientTask.Answer.DELETED else ""
    plan = {int(pk): (answer, statement) for pk in task_ids}
    return workspace_answer_plan(
        link=link, plan=plan, answered_by=answered_by, label=answer, request=request
    )


def workspace_answer_plan(
    *,
    link: WorkspaceLink,
    plan: dict[int, tuple[str, str]],
    answered_by: str,
    label: str,
    request: HttpRequest | None = None,
) -> BulkResult:
    """The batch path of the bulk answer and of a CSV's: `plan` maps each task id to its
    (answer, statement); the company's tasks are answered BATCH_SIZE to a transaction by
    `recipient_tasks_answer` (each recorded as `recipient_task_answer` records one), or
    skipped with why."""
    wanted = sorted(plan)
    result = BulkResult()
    found = 0
    for start in range(0, len(wanted), BATCH_SIZE):
        chunk = wanted[start : start + BATCH_SIZE]
        with transaction.atomic():
            # In (request, task) order: the requests completed are locked in that order.
            tasks = list(
                RecipientTask.objects.filter(employer_id=link.employer_id, pk__in=chunk)
                .select_related("request__student", "employer")
                .order_by("request_id", "pk")
            )
            found += len(tasks)
            ready = []
            for task in tasks:
                answer, statement = plan[task.pk]
                reason = _skip_reason(task, answer)
                if reason is None and answer == RecipientTask.Answer.REFUSED:
                    if not statement.strip():
                        reason = _("Say why you cannot comply.")
                if reason is None:
                    ready.append(task)
                else:
                    result.skipped.append((task.request.reference, reason))
            # Each recorded as the answer page records one, in a few queries for the batch.
            done, taken = recipient_tasks_answer(
                tasks=ready, plan=plan, answered_by=answered_by, via=RecipientTask.Via.WORKSPACE
            )
            result.skipped += [(t.request.reference, _("already answered")) for t in taken]
            if done:
                event = WorkspaceEvent.objects.create(
                    link=link,
                    employer_id=link.employer_id,
                    kind=WorkspaceEvent.Kind.ANSWERED,
                    ip=client_ip(request) if request is not None else None,
                    detail=f"{label}: {len(done)} · {answered_by}",
                )
                event.tasks.add(*done)
                _audit(
                    name="disclosure.workspace_answer",
                    link=link,
                    request=request,
                    changes={
                        "answer": label,
                        "answered_by": answered_by,
                        "tasks": [t.pk for t in done],
                        **({"answers": {t.pk: t.answer for t in done}} if label == "csv" else {}),
                    },
                )
            result.answered.extend(done)
    unknown = len(wanted) - found
    if unknown:
        result.skipped.extend([("", _("not one of your company's requests"))] * unknown)
    return result


def workspace_answer_one(
    *,
    link: WorkspaceLink,
    task: RecipientTask,
    answer: str,
    answered_by: str,
    statement: str,
    file=None,
    request: HttpRequest | None = None,
) -> RecipientTask:
    """One task answered on its page in the workspace (any answer, a refusal with its
    reason), recorded like the bulk answers."""
    with transaction.atomic():
        task = recipient_task_answer(
            task=task,
            answer=answer,
            answered_by=answered_by,
            statement=statement,
            via=RecipientTask.Via.WORKSPACE,
            file=file,
        )
        event = WorkspaceEvent.objects.create(
            link=link,
            employer_id=link.employer_id,
            kind=WorkspaceEvent.Kind.ANSWERED,
            ip=client_ip(request) if request is not None else None,
            detail=f"{answer}: 1 · {answered_by}",
        )
        event.tasks.add(task)
        _audit(
            name="disclosure.workspace_answer",
            link=link,
            request=request,
            changes={"answer": answer, "answered_by": answered_by, "tasks": [task.pk]},
        )
    return task


# --- how the company is told ----------------------------------------------------------------


def workspace_delivery_change(
    *, link: WorkspaceLink, delivery: str, request: HttpRequest | None = None
) -> bool:
    """The contact chooses how the company is told of new requests (each by email, an
    hourly or daily digest, the API alone). Recorded under the company and in the audit
    log; returns whether it changed."""
    if delivery not in Employer.Delivery.values:
        raise ValueError(delivery)
    with transaction.atomic():
        employer = Employer.objects.select_for_update().get(pk=link.employer_id)
        before = employer.request_delivery
        if before == delivery:
            return False
        employer.request_delivery = delivery
        employer.save(update_fields=["request_delivery"])
        WorkspaceEvent.objects.create(
            link=link,
            employer=employer,
            kind=WorkspaceEvent.Kind.DELIVERY,
            ip=client_ip(request) if request is not None else None,
            detail=f"{before} → {delivery}",
        )
        _audit(
            name="disclosure.workspace_delivery",
            link=link,
            request=request,
            changes={"request_delivery": [before, delivery]},
        )
    link.employer.request_delivery = delivery
    return True
