"""Data-rights requests: file, do the portal's part, pass on, remind, answer, complete.

Every state change is a function here, called by the student's views, the company answer
page, the admin's actions and the Celery tasks alike. Work for Celery is queued through
`disclosure.enqueue` once the transaction commits (this module never imports the tasks,
which import it); each task claims its row with a conditional UPDATE.
"""

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max, Min, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consent.models import Consent, ConsentScreen, Provision
from consent.services import consent_withdraw_all
from disclosure import enqueue, signing
from disclosure.models import (
    AnswerLink,
    DataRequest,
    DataSource,
    RecipientTask,
    RequestEvent,
    RequestFile,
    SourceTask,
    token_hash,
)
from portal.emails import email_queue_template, email_queue_to_company
from portal.locking import retry_on_deadlock, student_lock
from portal.models import ActivityRecord, EmailMessage, Employer, User
from portal.queueing import claim_due

# A source call is tried this many times (timeouts, 5xx, connection errors) before it fails.
SOURCE_MAX_ATTEMPTS = 5

Kind = DataRequest.Kind
Status = DataRequest.Status
Event = RequestEvent.Kind
Actor = RequestEvent.Actor


class RequestRefused(ValidationError):
    def __init__(self, message, *, code: str, existing: DataRequest | None = None):
        super().__init__(message, code=code)
        self.existing = existing


@dataclass
class Recipient:
    """A company a request will go to, and why it is on the list."""

    employer: Employer
    first_provided_at: datetime | None = None
    last_provided_at: datetime | None = None
    provisions: int = 0
    live_grant: bool = False
    reasons: list[str] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "provisions": self.provisions,
            "first_provided_at": self.first_provided_at.isoformat()
            if self.first_provided_at
            else None,
            "last_provided_at": self.last_provided_at.isoformat()
            if self.last_provided_at
            else None,
            "live_grant": self.live_grant,
        }


def request_recipients(*, student: User) -> list[Recipient]:
    """The companies that received the student's data (Provision) or hold a live grant.

    Inactive companies included: one that left the job site still holds what it received
    and must still answer for it (only new grants are refused to it, in consent_grant).
    """
    by_employer: dict[int, Recipient] = {}
    rows = list(
        Provision.objects.filter(student=student)
        .values("employer_id")
        .annotate(first=Min("provided_at"), last=Max("provided_at"), count=Count("id"))
    )
    granted = set(
        Consent.objects.filter(student=student, granted=True).values_list("employer_id", flat=True)
    )
    employers = Employer.objects.in_bulk({r["employer_id"] for r in rows} | granted)
    for row in rows:
        by_employer[row["employer_id"]] = Recipient(
            employer=employers[row["employer_id"]],
            first_provided_at=row["first"],
            last_provided_at=row["last"],
            provisions=row["count"],
        )
    for employer_id in granted:
        recipient = by_employer.setdefault(employer_id, Recipient(employer=employers[employer_id]))
        recipient.live_grant = True
    return sorted(by_employer.values(), key=lambda r: r.employer.name)


def _reference() -> str:
    # 40 random bits a day: a collision needs about a million requests in one day.
    return "R-" + timezone.localdate().strftime("%y%m%d") + "-" + secrets.token_hex(5).upper()


def _event(request, kind, *, actor, task=None, user=None, detail="", at=None) -> RequestEvent:
    return RequestEvent.objects.create(
        request=request,
        task=task,
        kind=kind,
        actor=actor,
        actor_user=user,
        detail=detail,
        at=at or timezone.now(),
    )


def _store_file(
    request: DataRequest,
    *,
    kind: str,
    name: str,
    content_type: str,
    content: bytes,
    task: RecipientTask | None = None,
) -> None:
    RequestFile.objects.create(
        request=request,
        task=task,
        kind=kind,
        name=name[:200],
        content_type=content_type,
        content=content,
        size=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
    )


@retry_on_deadlock
def request_file(
    *,
    student: User,
    kind: str,
    employers: list[Employer] | None = None,
    delivery_format: str = DataRequest.Format.PDF_JSON,
    message: str = "",
    language: str = "ja",
) -> DataRequest:
    """File a request: do the portal's part now, and queue one task per company.

    `employers=None` means every recipient. A second open request of the same kind and
    scope is refused, pointing at the first.
    """
    if kind not in Kind.values:
        raise ValueError(f"unknown kind {kind!r}")
    recipients = request_recipients(student=student)
    if employers is not None:
        chosen = {e.pk for e in employers}
        unknown = chosen - {r.employer.pk for r in recipients}
        if unknown or not chosen:
            raise RequestRefused(
                _("Choose among the companies that received your data or hold your consent."),
                code="bad_scope",
            )
        recipients = [r for r in recipients if r.employer.pk in chosen]
    # The site's own systems take part in every request, whatever its scope of companies.
    sources = list(DataSource.objects.filter(active=True).order_by("pk"))
    with transaction.atomic():
        student_lock(student_id=student.pk)
        for existing in DataRequest.objects.filter(
            student=student, kind=kind, status__in=DataRequest.OPEN
        ).prefetch_related("employers"):
            same_scope = (existing.all_recipients and employers is None) or (
                employers is not None
                and not existing.all_recipients
                and {e.pk for e in existing.employers.all()} == {e.pk for e in employers}
            )
            if same_scope:
                raise RequestRefused(
                    _("You already have the same request open (%(reference)s).")
                    % {"reference": existing.reference},
                    code="duplicate",
                    existing=existing,
                )
        now = timezone.now()
        request = DataRequest.objects.create(
            reference=_reference(),
            student=student,
            kind=kind,
            all_recipients=employers is None,
            delivery_format=delivery_format,
            message=message.strip()[:4000],
            language=language,
            submitted_at=now,
            due_at=now + timedelta(days=settings.REQUEST_DUE_DAYS),
            status=Status.IN_PROGRESS if recipients or sources else Status.SUBMITTED,
        )
        if employers is not None:
            request.employers.set(employers)
        _event(request, Event.SUBMITTED, actor=Actor.STUDENT, at=now)
        tasks = RecipientTask.objects.bulk_create(
            [
                RecipientTask(
                    request=request,
                    employer=r.employer,
                    reasons=r.as_json(),
                    created_at=now,
                    queued_at=now,
                )
                for r in recipients
            ]
        )
        source_tasks = SourceTask.objects.bulk_create(
            [SourceTask(request=request, source=s, queued_at=now) for s in sources]
        )
        _portal_part(request, scope=None if employers is None else employers)
        _email_student(request, "request_received")
        for task in tasks:
            enqueue.task_send(task.pk)
        for source_task in source_tasks:
            enqueue.source_call(source_task.pk)
        if not tasks and not source_tasks and kind != Kind.DISCLOSURE:
            _complete(request)
    return request


def _portal_part(request: DataRequest, *, scope: list[Employer] | None) -> None:
    """What the portal does itself, at once (in the filing transaction)."""
    student = request.student
    summary: dict = {}
    if request.kind in (Kind.DELETION, Kind.CESSATION):
        events = consent_withdraw_all(
            student=student,
            screen=ConsentScreen.DATA_REQUEST,
            language=request.language,
            reason=f"{request.get_kind_display()} {request.reference}",
            employers=scope,
            notify_recipients=False,
        )
        summary["consents_withdrawn"] = len(events)
    if request.kind == Kind.DELETION:
        records = ActivityRecord.objects.filter(student=student)
        if scope is not None:
            records = records.filter(employer__in=scope)
        deleted, _by_model = records.delete()
        summary["activity_records_deleted"] = deleted
        summary["kept"] = {
            "provision_records": Provision.objects.filter(student=student).count(),
            "why": "APPI Art. 29-30: records of provision to third parties are kept 3 years",
        }
    if request.kind == Kind.DISCLOSURE:
        request.queued_at = timezone.now()
        enqueue.report_build(request.pk)
    else:
        request.portal_done_at = timezone.now()
    request.portal_summary = summary
    request.save(update_fields=["portal_done_at", "portal_summary", "queued_at"])
    if request.portal_done_at:
        _event(request, Event.PORTAL_DONE, actor=Actor.SYSTEM, detail=_summary_text(summary))


def _summary_text(summary: dict) -> str:
    parts = []
    if "activity_records_deleted" in summary:
        parts.append(f"activity records deleted: {summary['activity_records_deleted']}")
    if "consents_withdrawn" in summary:
        parts.append(f"consents withdrawn: {summary['consents_withdrawn']}")
    if "kept" in summary:
        parts.append(f"kept by law: {summary['kept']['provision_records']} provision records")
    return "; ".join(parts)


def _answer_url(token: str) -> str:
    return settings.SITE_URL + reverse("disclosure:answer", args=[token])


def _new_link(task: RecipientTask, *, now: datetime) -> str:
    token = secrets.token_urlsafe(32)  # 256 bits
    AnswerLink.objects.create(
        task=task,
        token_sha256=token_hash(token),
        created_at=now,
        expires_at=now + timedelta(days=settings.ANSWER_LINK_DAYS),
    )
    return token


def _email_company(task: RecipientTask, *, template: str, token: str) -> EmailMessage:
    """To the company's primary contact (the others in Cc). A company with no primary
    contact gets a message stored as failed: the task then shows as failed to staff (and
    to the student as "our staff are on it"), with the reason on the timeline, like an
    email the company's server refused."""
    message = email_queue_to_company(
        employer=task.employer,
        template=template,
        context={
            "employer": task.employer,
            "request": task.request,
            "task": task,
            "answer_url": _answer_url(token),
            "link_days": settings.ANSWER_LINK_DAYS,
        },
        kind=f"{template}:{task.request.reference}",
        secrets=("answer_url",),
    )
    RecipientTask.objects.filter(pk=task.pk).update(email=message)
    task.email = message
    if message.failed:
        _event(
            task.request,
            Event.SEND_FAILED,
            actor=Actor.SYSTEM,
            task=task,
            detail=message.last_error,
        )
    return message


def recipient_task_send(*, task_id: int) -> bool:
    """Send the request to the company, once: claim the task, make its link, queue the email.

    The claim, the link and the email row commit together, so a worker that dies before the
    commit leaves the task unclaimed (redelivered or swept), and one that dies after has
    left an email row the outbox delivers. Returns whether this call did the work.
    """
    now = timezone.now()
    with transaction.atomic():
        claimed = RecipientTask.objects.filter(
            pk=task_id, status=RecipientTask.Status.QUEUED, sent_at=None
        ).update(status=RecipientTask.Status.SENT, sent_at=now, queued_at=None)
        if not claimed:
            return False
        task = RecipientTask.objects.select_related("request", "employer").get(pk=task_id)
        if not task.request.is_open:
            RecipientTask.objects.filter(pk=task_id).update(status=RecipientTask.Status.CLOSED)
            return False
        token = _new_link(task, now=now)
        if not _email_company(task, template="company_request", token=token).failed:
            _event(
                task.request, Event.SENT, actor=Actor.SYSTEM, task=task, detail=task.employer.name
            )
    return True


def recipient_task_remind(*, task_id: int, number: int) -> bool:
    """Send reminder `number` (1 for 3 days, 2 for 7 days) if it is still due."""
    now = timezone.now()
    with transaction.atomic():
        claimed = RecipientTask.objects.filter(
            pk=task_id, status=RecipientTask.Status.SENT, reminders_sent=number - 1
        ).update(reminders_sent=number, last_reminder_at=now, queued_at=None)
        if not claimed:
            return False
        task = RecipientTask.objects.select_related("request", "employer").get(pk=task_id)
        token = _new_link(task, now=now)
        if not _email_company(task, template="company_reminder", token=token).failed:
            _event(
                task.request,
                Event.REMINDED,
                actor=Actor.SYSTEM,
                task=task,
                detail=task.employer.name,
            )
    return True


def _primary_contact_required(employer: Employer) -> None:
    if employer.primary_contact is None:
        raise ValidationError(
            _("%(company)s has no primary privacy contact: add one on its page first.")
            % {"company": employer.name}
        )


def recipient_task_resend(*, task: RecipientTask, by: User, reason: str) -> None:
    """Staff: a new link for the company; the earlier links stop working."""
    if not reason.strip():
        raise ValidationError(_("Give a reason."))
    now = timezone.now()
    with transaction.atomic():
        task = (
            RecipientTask.objects.select_for_update()
            .select_related("request", "employer")
            .get(pk=task.pk)
        )
        if task.is_done:
            raise ValidationError(_("This company has already answered."))
        if not task.request.is_open:
            raise ValidationError(_("This request is closed."))
        _primary_contact_required(task.employer)
        AnswerLink.objects.filter(task=task, revoked_at=None).update(revoked_at=now)
        if task.status == RecipientTask.Status.QUEUED:
            task.sent_at = now
            task.status = RecipientTask.Status.SENT
            task.queued_at = None
            task.save(update_fields=["sent_at", "status", "queued_at"])
        token = _new_link(task, now=now)
        _email_company(task, template="company_request", token=token)
        _event(
            task.request, Event.LINK_RESENT, actor=Actor.STAFF, user=by, task=task, detail=reason
        )


# The timeline's reason when a change of contact sends the links again (students read it).
CONTACT_CHANGED = (
    "企業の個人情報窓口が変わったため、新しい窓口に送り直しました。 / The company's privacy "
    "contact changed; the link was sent again to the new contact."
)


def employer_tasks_elsewhere(*, employer: Employer) -> QuerySet[RecipientTask]:
    """The company's open tasks whose latest email went to someone other than its primary
    contact now (or could not be sent for want of one): the links the contact is missing.

    A task not yet sent has nobody else's link: it goes to the new contact by itself.
    """
    contact = employer.primary_contact
    tasks = RecipientTask.objects.filter(
        employer=employer,
        status__in=[RecipientTask.Status.QUEUED, RecipientTask.Status.SENT],
        request__status__in=DataRequest.OPEN,
        email__isnull=False,
    )
    if contact is not None:
        tasks = tasks.exclude(email__to__iexact=contact.email)
    return tasks


def employer_tasks_resend(
    *, employer: Employer, by: User, reason: str = CONTACT_CHANGED
) -> list[RecipientTask]:
    """Staff: send every link the company's new primary contact is missing (each one's
    earlier links stop working). Running it twice sends nothing twice: the company's row
    is locked and each resent task's latest email is then addressed to the contact."""
    with transaction.atomic():
        employer = Employer.objects.select_for_update().get(pk=employer.pk)
        _primary_contact_required(employer)
        resent = []
        # With the email each was last sent, for the caller to say where it went before.
        elsewhere = employer_tasks_elsewhere(employer=employer).select_related("email")
        for task in elsewhere.defer("email__body_text", "email__body_html").order_by("pk"):
            try:
                with transaction.atomic():
                    recipient_task_resend(task=task, by=by, reason=reason)
            except ValidationError:
                continue  # answered or closed meanwhile: nothing to resend
            resent.append(task)
    return resent


class AnswerRefused(ValidationError):
    pass


# Which answers fit which kind of request.
ANSWERS_BY_KIND = {
    Kind.DELETION: ("deleted", "held_none", "refused"),
    Kind.CESSATION: ("stopped", "held_none", "refused"),
    Kind.DISCLOSURE: ("disclosed", "held_none", "refused"),
}


def link_lookup(*, token: str) -> AnswerLink | None:
    return (
        AnswerLink.objects.select_related("task__request__student", "task__employer")
        .filter(token_sha256=token_hash(token))
        .first()
    )


def recipient_task_answer(
    *,
    task: RecipientTask,
    answer: str,
    answered_by: str,
    statement: str = "",
    via: str = RecipientTask.Via.LINK,
    evidence: str = "",
    staff: User | None = None,
    file: tuple[str, str, bytes] | None = None,
) -> RecipientTask:
    """Record a company's answer, once; complete the request when it was the last one."""
    if not task.request.is_open:
        raise AnswerRefused(_("This request is closed."), code="answered")
    if answer not in ANSWERS_BY_KIND[task.request.kind]:
        raise AnswerRefused(_("That answer does not fit this request."), code="answer")
    if not answered_by.strip():
        raise AnswerRefused(_("Give the name of the person responsible."), code="answered_by")
    if answer == "refused" and not statement.strip():
        raise AnswerRefused(_("Say why you cannot comply."), code="statement")
    if via == RecipientTask.Via.STAFF and (staff is None or not evidence.strip()):
        raise AnswerRefused(_("Describe the evidence of the answer."), code="evidence")
    now = timezone.now()
    with transaction.atomic():
        claimed = RecipientTask.objects.filter(
            pk=task.pk,
            answered_at=None,
            status__in=[RecipientTask.Status.QUEUED, RecipientTask.Status.SENT],
        ).update(
            status=RecipientTask.Status.ANSWERED,
            answer=answer,
            answered_at=now,
            answered_by=answered_by.strip()[:200],
            statement=statement.strip(),
            answered_via=via,
            evidence=evidence.strip(),
        )
        if not claimed:
            raise AnswerRefused(_("This request has already been answered."), code="answered")
        task = RecipientTask.objects.select_related("request__student", "employer").get(pk=task.pk)
        AnswerLink.objects.filter(task=task, revoked_at=None).update(revoked_at=now)
        if file is not None:
            name, content_type, content = file
            _store_file(
                task.request,
                task=task,
                kind=RequestFile.Kind.COMPANY_FILE,
                name=name,
                content_type=content_type,
                content=content,
            )
        _event(
            task.request,
            Event.ANSWERED,
            actor=Actor.STAFF if via == RecipientTask.Via.STAFF else Actor.COMPANY,
            user=staff,
            task=task,
            detail=f"{task.employer.name}: {task.get_answer_display()}",
        )
        _email_student(task.request, "request_answered", task=task)
        _complete_if_done(task.request)
    return task


def recipient_task_close(*, task: RecipientTask, by: User, reason: str) -> None:
    """Staff: stop waiting for a company (it will not answer); recorded with the reason."""
    if not reason.strip():
        raise ValidationError(_("Give a reason."))
    if not task.request.is_open:
        raise ValidationError(_("This request is closed."))
    with transaction.atomic():
        closed = RecipientTask.objects.filter(
            pk=task.pk, status__in=[RecipientTask.Status.QUEUED, RecipientTask.Status.SENT]
        ).update(status=RecipientTask.Status.CLOSED)
        if not closed:
            raise ValidationError(_("This company's task is already finished."))
        AnswerLink.objects.filter(task=task, revoked_at=None).update(revoked_at=timezone.now())
        _event(task.request, Event.CLOSED, actor=Actor.STAFF, user=by, task=task, detail=reason)
        _complete_if_done(task.request)


def _complete_if_done(request: DataRequest) -> None:
    request = DataRequest.objects.select_for_update().get(pk=request.pk)
    if not request.is_open:
        return
    if (
        RecipientTask.objects.filter(request=request)
        .exclude(status__in=[RecipientTask.Status.ANSWERED, RecipientTask.Status.CLOSED])
        .exists()
    ):
        return
    # A failed source is not done: staff close it (or it is called again) before completion.
    if (
        SourceTask.objects.filter(request=request)
        .exclude(status__in=[SourceTask.Status.ANSWERED, SourceTask.Status.CLOSED])
        .exists()
    ):
        return
    if request.kind == Kind.DISCLOSURE and request.portal_done_at is None:
        return  # completes when the report is ready
    _complete(request)


def _complete(request: DataRequest) -> None:
    tasks = RecipientTask.objects.filter(request=request)
    partial = (
        tasks.filter(status=RecipientTask.Status.CLOSED).exists()
        or tasks.filter(answer=RecipientTask.Answer.REFUSED).exists()
        or SourceTask.objects.filter(request=request, status=SourceTask.Status.CLOSED).exists()
    )
    now = timezone.now()
    DataRequest.objects.filter(pk=request.pk, status__in=DataRequest.OPEN).update(
        status=Status.PARTIALLY_COMPLETED if partial else Status.COMPLETED,
        completed_at=now,
        queued_at=now,
    )
    request.refresh_from_db()
    _event(request, Event.COMPLETED, actor=Actor.SYSTEM, at=now)
    enqueue.request_finish(request.pk)


def request_report_store(*, request_id: int, files: list[tuple[str, str, str, bytes]]) -> bool:
    """Store the disclosure report (kind, name, content type, bytes) once; the portal's part
    of a disclosure is then done, and the request completes if every company answered."""

    now = timezone.now()
    with transaction.atomic():
        claimed = DataRequest.objects.filter(pk=request_id, portal_done_at=None).update(
            portal_done_at=now, queued_at=None
        )
        if not claimed:
            return False
        request = DataRequest.objects.select_related("student").get(pk=request_id)
        for kind, name, content_type, content in files:
            _store_file(request, kind=kind, name=name, content_type=content_type, content=content)
        _event(request, Event.REPORT_READY, actor=Actor.SYSTEM, at=now)
        _email_student(request, "report_ready")
        _complete_if_done(request)
    return True


def request_report_replace(*, request_id: int, files: list[tuple[str, str, str, bytes]]) -> None:
    """Rebuild a completed disclosure's report so it includes every company's answer."""

    kinds = [RequestFile.Kind.REPORT_PDF, RequestFile.Kind.REPORT_JSON]
    with transaction.atomic():
        request = DataRequest.objects.select_for_update().get(pk=request_id)
        request.files.filter(kind__in=kinds).delete()
        for kind, name, content_type, content in files:
            _store_file(request, kind=kind, name=name, content_type=content_type, content=content)


def request_certificate_store(*, request_id: int, pdf: bytes, name: str) -> bool:
    """Store the completion certificate once and tell the student the request is done."""

    with transaction.atomic():
        request = (
            DataRequest.objects.select_for_update().select_related("student").get(pk=request_id)
        )
        if request.files.filter(kind=RequestFile.Kind.CERTIFICATE_PDF).exists():
            return False
        DataRequest.objects.filter(pk=request_id).update(queued_at=None)
        _store_file(
            request,
            kind=RequestFile.Kind.CERTIFICATE_PDF,
            name=name,
            content_type="application/pdf",
            content=pdf,
        )
        _email_student(request, "request_completed")
    return True


def request_extend(*, request: DataRequest, days: int, reason: str, by: User) -> DataRequest:
    """Staff: move the due date; the student is told why."""
    if not reason.strip():
        raise ValidationError(_("An extension needs a reason, which the student is told."))
    if days < 1 or days > 60:
        raise ValidationError(_("Extend by 1 to 60 days."))
    with transaction.atomic():
        request = DataRequest.objects.select_for_update().get(pk=request.pk)
        if not request.is_open:
            raise ValidationError(_("Only an open request can be extended."))
        request.due_at = request.due_at + timedelta(days=days)
        request.extension_reason = reason.strip()
        request.save(update_fields=["due_at", "extension_reason"])
        RecipientTask.objects.filter(request=request, overdue=True, answered_at=None).update(
            overdue=False
        )
        _event(request, Event.EXTENDED, actor=Actor.STAFF, user=by, detail=reason.strip())
        _email_student(request, "request_extended")
    return request


def request_cancel(*, request: DataRequest, reason: str, by: User | None = None) -> DataRequest:
    if not reason.strip():
        raise ValidationError(_("Give a reason."))
    with transaction.atomic():
        cancelled = DataRequest.objects.filter(pk=request.pk, status__in=DataRequest.OPEN).update(
            status=Status.CANCELLED, cancel_reason=reason.strip(), completed_at=timezone.now()
        )
        if not cancelled:
            raise ValidationError(_("Only an open request can be cancelled."))
        AnswerLink.objects.filter(task__request=request, revoked_at=None).update(
            revoked_at=timezone.now()
        )
        RecipientTask.objects.filter(
            request=request,
            status__in=[RecipientTask.Status.QUEUED, RecipientTask.Status.SENT],
        ).update(status=RecipientTask.Status.CLOSED)
        SourceTask.objects.filter(request=request).exclude(
            status=SourceTask.Status.ANSWERED
        ).update(status=SourceTask.Status.CLOSED)
        request.refresh_from_db()
        _event(
            request,
            Event.CANCELLED,
            actor=Actor.STAFF if by else Actor.STUDENT,
            user=by,
            detail=reason.strip(),
        )
    return request


# A sweep queues at most this many of each kind of work; the next sweep takes the rest.
SWEEP_LIMIT = 1000
# A certificate that still fails to build after this long is left to staff (it shows missing).
CERTIFICATE_RETRY_DAYS = timedelta(days=7)


def requests_sweep(*, now: datetime | None = None) -> dict:
    """The periodic work: queue what has no message in the queue (a company's request, a
    due reminder, a disclosure's report, a completed request's certificate), and escalate
    overdue tasks to staff.

    Returns what it queued, for logs and tests. Each row is claimed by its `queued_at`
    (portal.queueing.claim_due) before it is queued, and each step again by a conditional
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
    reminders = []
    previous_days = 0
    for number, days in enumerate(settings.REQUEST_REMINDER_DAYS, start=1):
        due = RecipientTask.objects.filter(
            status=RecipientTask.Status.SENT,
            reminders_sent=number - 1,
            sent_at__lte=now - timedelta(days=days),
            **live,
        )
        if number > 1:
            # Spaced like the schedule even when beat ran late: never two reminders at once.
            due = due.filter(last_reminder_at__lte=now - timedelta(days=days - previous_days))
        previous_days = days
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
    escalated = []
    for task in RecipientTask.objects.filter(
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
    escalated_sources = _sources_overdue(now)
    return {
        "source_calls": source_calls,
        "sources_overdue": escalated_sources,
        "unsent": unsent,
        "reminders": reminders,
        "escalated": escalated,
        "reports": reports,
        "certificates": certificates,
    }


def _email_student(
    request: DataRequest, template: str, *, task: RecipientTask | None = None
) -> None:
    student = request.student
    if student.closed_at is not None:
        return  # the account is closed: its address is gone (disclosure/closing.py)
    email_queue_template(
        to=student.email,
        template=template,
        context={
            "student": student,
            "request": request,
            "task": task,
            # The company as the student's pages name it: its English name in English.
            "company": task.employer.display_name(student.language) if task else "",
            "request_url": settings.SITE_URL
            + reverse("disclosure:request_detail", args=[request.reference]),
        },
        kind=f"{template}:{request.reference}",
        language=student.language,
    )


# --- The site's own systems (DataSource) ---------------------------------------------------


# A source task not yet answered or closed.
SOURCE_WAITING = [SourceTask.Status.QUEUED, SourceTask.Status.CALLED, SourceTask.Status.FAILED]


def _sources_overdue(now: datetime) -> list[int]:
    """Sources that have not answered by the request's due date: on the timeline (so the
    student sees staff are on it) and to support staff, once each."""
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
        error = str(exc)[:1000]
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
    """Staff: call a failed source again (after its owners fixed it), with a reason."""
    if not reason.strip():
        raise ValidationError(_("Give a reason."))
    with transaction.atomic():
        changed = SourceTask.objects.filter(
            pk=task.pk, status=SourceTask.Status.FAILED, request__status__in=DataRequest.OPEN
        ).update(status=SourceTask.Status.QUEUED, attempts=0, queued_at=timezone.now())
        if not changed:
            raise ValidationError(_("Only a failed call of an open request can be made again."))
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
