"""The companies' tasks: their answer links and emails; sending, reminding, resending,
answering and closing."""

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consent.models import ApiClient
from disclosure.models import (
    AnswerLink,
    DataRequest,
    RecipientTask,
    RequestEvent,
    RequestFile,
    token_hash,
)
from disclosure.services._common import Actor, Event, Kind, _email_student, _event, _store_file
from disclosure.services.filing import _complete_if_done, _complete_if_done_many
from disclosure.services.webhooks import webhook_delivery_queue
from portal.models import EmailMessage, Employer, User
from portal.shared.emails import email_queue_to_company


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


# Companies told of their new requests by a digest (disclosure/services/digests.py).
DIGESTED = (Employer.Delivery.HOURLY, Employer.Delivery.DAILY)


def recipient_task_send(*, task_id: int) -> bool:
    """Pass the request to the company, once: claim the task, then tell the company the way
    it chose (`Employer.request_delivery`): by its own email (a link and an email row),
    by the API alone (the task is listed there; no email), or by its next digest (sent_at
    stays empty until the digest goes).

    The claim, the link and the email row commit together, so a worker that dies before the
    commit leaves the task unclaimed (redelivered or swept), and one that dies after has
    left an email row the outbox delivers. Returns whether this call did the work.
    """
    now = timezone.now()
    with transaction.atomic():
        task = RecipientTask.objects.select_related("request", "employer").get(pk=task_id)
        digested = task.employer.request_delivery in DIGESTED
        claimed = RecipientTask.objects.filter(
            pk=task_id, status=RecipientTask.Status.QUEUED, sent_at=None
        ).update(
            status=RecipientTask.Status.SENT,
            sent_at=None if digested else now,
            queued_at=None,
            changed_at=now,
        )
        if not claimed:
            return False
        if not task.request.is_open:
            RecipientTask.objects.filter(pk=task_id).update(
                status=RecipientTask.Status.CLOSED, changed_at=timezone.now()
            )
            return False
        task.status = RecipientTask.Status.SENT
        if not digested:
            task.sent_at = now
            _tell(task, now=now)
        # The company's webhook hears of the task here, not at filing: this claim succeeds
        # once per task (sent_at=None) and only for a request still open, so "each new task"
        # is pushed exactly once, whichever way the company is told by email. A task made
        # at filing may yet be closed by a cancellation before it is sent (it would push a
        # task the company is never asked about), and resends and reminders do not come
        # through here. The delivery commits with the claim and is queued on commit; it is
        # unique per (webhook, task), as a belt.
        webhook_delivery_queue(task, now=now)
    return True


def _tell(task: RecipientTask, *, now: datetime) -> None:
    """The company hears of its new task now: by its own email and link, or (API only) by
    the API's list, which already shows it."""
    if task.employer.request_delivery == Employer.Delivery.API:
        _event(
            task.request,
            Event.SENT,
            actor=Actor.SYSTEM,
            task=task,
            detail=f"{task.employer.name} (API)",
        )
        return
    token = _new_link(task, now=now)
    if not _email_company(task, template="company_request", token=token).failed:
        _event(task.request, Event.SENT, actor=Actor.SYSTEM, task=task, detail=task.employer.name)


def recipient_task_tell(*, task_id: int, now: datetime) -> bool:
    """A task claimed for a digest whose company has since chosen its own emails or the API
    alone: told now, once (its sent_at claims it)."""
    with transaction.atomic():
        task = RecipientTask.objects.select_related("request", "employer").get(pk=task_id)
        if task.employer.request_delivery in DIGESTED:
            return False
        if not RecipientTask.objects.filter(
            pk=task_id, status=RecipientTask.Status.SENT, sent_at=None
        ).update(sent_at=now, changed_at=now):
            return False
        task.sent_at = now
        _tell(task, now=now)
    return True


def reminders_due(tasks: QuerySet[RecipientTask], *, now: datetime):
    """(number, the tasks of `tasks` due their reminder `number`) for each reminder of
    REQUEST_REMINDER_DAYS: sent that many days ago, the reminders before it sent, and spaced
    like the schedule even when beat ran late (never two reminders at once). The sweep's
    one-by-one reminders and the digests share it."""
    previous_days = 0
    for number, days in enumerate(settings.REQUEST_REMINDER_DAYS, start=1):
        due = tasks.filter(
            status=RecipientTask.Status.SENT,
            reminders_sent=number - 1,
            sent_at__lte=now - timedelta(days=days),
        )
        if number > 1:
            due = due.filter(last_reminder_at__lte=now - timedelta(days=days - previous_days))
        previous_days = days
        yield number, due


def recipient_task_remind(*, task_id: int, number: int) -> bool:
    """Send reminder `number` (1 for 3 days, 2 for 7 days) if it is still due. Its new link
    replaces the earlier ones (revoked, as a staff resend does), so a company holds one live
    link a task; with no contact to send it to, the earlier ones are left working."""
    now = timezone.now()
    with transaction.atomic():
        claimed = RecipientTask.objects.filter(
            pk=task_id,
            status=RecipientTask.Status.SENT,
            reminders_sent=number - 1,
            # Queued before the company chose a digest or the API: not sent one by one.
            employer__request_delivery=Employer.Delivery.EACH,
        ).update(reminders_sent=number, last_reminder_at=now, queued_at=None, changed_at=now)
        if not claimed:
            return False
        task = RecipientTask.objects.select_related("request", "employer").get(pk=task_id)
        token = _new_link(task, now=now)
        if not _email_company(task, template="company_reminder", token=token).failed:
            AnswerLink.objects.filter(task=task, revoked_at=None).exclude(
                token_sha256=token_hash(token)
            ).update(revoked_at=now)
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
        task.changed_at = now
        if task.status == RecipientTask.Status.QUEUED or task.sent_at is None:
            # Not sent yet, or waiting for the company's digest: this email tells it.
            task.sent_at = now
            task.status = RecipientTask.Status.SENT
            task.queued_at = None
            task.save(update_fields=["sent_at", "status", "queued_at", "changed_at"])
        else:
            task.save(update_fields=["changed_at"])
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
    Kind.CORRECTION: ("corrected", "held_none", "refused"),
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
    client: ApiClient | None = None,
    file: tuple[str, str, bytes] | None = None,
) -> RecipientTask:
    """Record a company's answer, once; complete the request when it was the last one.

    By the answer link, by staff (who describe the evidence), or by the company's API key
    (`client`, whose name the timeline and the certificate give)."""
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
    if (via == RecipientTask.Via.API) != (client is not None):
        raise ValueError("An answer by API names its key, and only such an answer does.")
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
            answered_client=client,
            changed_at=now,
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
            detail=f"{task.employer.name}: {task.get_answer_display()}"
            + (f" (API: {client.name})" if client is not None else ""),
        )
        _email_student(task.request, "request_answered", task=task)
        _complete_if_done(task.request)
    return task


def recipient_tasks_answer(
    *, tasks: list[RecipientTask], plan: dict[int, tuple[str, str]], answered_by: str, via: str
) -> tuple[list[RecipientTask], list[RecipientTask]]:
    """Many answers of one company at once (its workspace's bulk answer and CSV), in the
    caller's transaction: each task recorded exactly as `recipient_task_answer` records it
    (the answer, its links spent, a timeline event, the student's email, the request
    completed when it was the last), with a few set-based queries instead of ~18 a task.

    `tasks` are the company's, loaded with their request, student and employer, and checked
    by the caller (open, the answer fits, a refusal has its statement); `plan` maps each id
    to its (answer, statement). Returns (answered, taken meanwhile by another answer)."""
    if not tasks:
        return [], []
    now = timezone.now()
    answered_by = answered_by.strip()[:200]
    by_answer: dict[tuple[str, str], list[int]] = {}
    for task in tasks:
        answer, statement = plan[task.pk]
        by_answer.setdefault((answer, statement.strip()), []).append(task.pk)
    for (answer, statement), ids in by_answer.items():
        RecipientTask.objects.filter(
            pk__in=ids,
            answered_at=None,
            status__in=[RecipientTask.Status.QUEUED, RecipientTask.Status.SENT],
        ).update(
            status=RecipientTask.Status.ANSWERED,
            answer=answer,
            answered_at=now,
            answered_by=answered_by,
            statement=statement,
            answered_via=via,
            changed_at=now,
        )
    # Which claims this call won (another answer may have come in between its read and its
    # update: that task keeps the other answer).
    won = set(
        RecipientTask.objects.filter(
            pk__in=[t.pk for t in tasks],
            answered_at=now,
            answered_via=via,
            answered_by=answered_by,
        ).values_list("pk", flat=True)
    )
    answered = [t for t in tasks if t.pk in won]
    taken = [t for t in tasks if t.pk not in won]
    if not answered:
        return answered, taken
    AnswerLink.objects.filter(task__in=answered, revoked_at=None).update(revoked_at=now)
    events = []
    for task in answered:
        task.answer, task.statement = plan[task.pk][0], plan[task.pk][1].strip()
        task.status, task.answered_at = RecipientTask.Status.ANSWERED, now
        task.answered_by, task.answered_via, task.changed_at = answered_by, via, now
        events.append(
            RequestEvent(
                request_id=task.request_id,
                task=task,
                kind=Event.ANSWERED,
                actor=Actor.COMPANY,
                detail=f"{task.employer.name}: {task.get_answer_display()}",
                at=now,
            )
        )
    RequestEvent.objects.bulk_create(events, batch_size=500)
    for task in answered:
        _email_student(task.request, "request_answered", task=task)
    # The requests this completed: those with no company or source left waiting.
    _complete_if_done_many({t.request_id for t in answered})
    return answered, taken


def recipient_task_close(*, task: RecipientTask, by: User, reason: str) -> None:
    """Staff: stop waiting for a company (it will not answer); recorded with the reason."""
    if not reason.strip():
        raise ValidationError(_("Give a reason."))
    if not task.request.is_open:
        raise ValidationError(_("This request is closed."))
    with transaction.atomic():
        closed = RecipientTask.objects.filter(
            pk=task.pk, status__in=[RecipientTask.Status.QUEUED, RecipientTask.Status.SENT]
        ).update(status=RecipientTask.Status.CLOSED, changed_at=timezone.now())
        if not closed:
            raise ValidationError(_("This company's task is already finished."))
        AnswerLink.objects.filter(task=task, revoked_at=None).update(revoked_at=timezone.now())
        _event(task.request, Event.CLOSED, actor=Actor.STAFF, user=by, task=task, detail=reason)
        _complete_if_done(task.request)
