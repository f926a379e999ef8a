"""What the request services share: the timeline's events, stored files, the student's
emails, and short names for the models' choices."""

import hashlib

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from consent.models import ConsentEvent
from consent.services import receipt_context
from disclosure.models import DataRequest, RecipientTask, RequestEvent, RequestFile
from portal.models import Language
from portal.shared.emails import email_queue_template

Kind = DataRequest.Kind
Status = DataRequest.Status
Event = RequestEvent.Kind
Actor = RequestEvent.Actor


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


def _email_student(
    request: DataRequest,
    template: str,
    *,
    task: RecipientTask | None = None,
    withdrawn: list[ConsentEvent] = (),
) -> None:
    """`withdrawn`: consents the request withdrew, listed in the email as their receipts."""
    student = request.student
    if student.closed_at is not None:
        return  # the account is closed: its address is gone (disclosure/closing.py)
    email_queue_template(
        to=student.email,
        template=template,
        context={
            **(receipt_context(withdrawn, student.language or Language.JA) if withdrawn else {}),
            "withdrawn": withdrawn,
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
