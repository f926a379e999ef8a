"""A request filed, with the portal's own part done at once; its report and certificate
stored, its due date extended, cancelled, completed."""

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consent.models import Consent, ConsentEvent, ConsentScreen, Provision
from consent.services import consent_withdraw_all
from disclosure import enqueue
from disclosure.models import (
    AnswerLink,
    DataRequest,
    DataSource,
    RecipientTask,
    RequestEvent,
    RequestFile,
    SourceTask,
)
from disclosure.services._common import (
    Actor,
    Event,
    Kind,
    Status,
    _email_student,
    _event,
    _store_file,
)
from inferences.services import inferences_erase
from portal.models import ActivityRecord, Employer, User
from portal.shared.bulk import insert_values
from portal.shared.deletion import delete_set
from portal.shared.emails import emails_held
from portal.shared.locking import retry_on_deadlock, student_lock
from portal.shared.raw_rows import row_reader


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
    # One statement, written once (it was three ORM queries): a filing in the 2019 wave
    # waits for it, and Django took longer to build the statement than PostgreSQL to run it.
    # Read with a cursor, not raw(), which spent 0.6 ms making 38 companies from their rows.
    with connection.cursor() as cursor:
        cursor.execute(_recipients_sql(), [student.pk, student.pk])
        rows = cursor.fetchall()
    read = row_reader([*_EMPLOYER_FIELDS, _PROVIDED_AT, _PROVIDED_AT])
    names = [f.attname for f in _EMPLOYER_FIELDS]
    width = len(names)
    recipients = []
    for row in rows:
        row = read(row)
        first, last, count, live = row[width:]
        recipients.append(
            Recipient(
                employer=Employer.from_db(connection.alias, names, row[:width]),
                first_provided_at=first,
                last_provided_at=last,
                provisions=count,
                live_grant=bool(live),
            )
        )
    return sorted(recipients, key=lambda r: (r.employer.name, r.employer.pk))


_EMPLOYER_FIELDS = Employer._meta.concrete_fields
_PROVIDED_AT = Provision._meta.get_field("provided_at")


@functools.cache
def _recipients_sql() -> str:
    """Every column of each company that received the student's data or holds a live
    grant, with the student's own provisions to it (first, last, how many) and whether a
    grant is live. Its two parameters are the student's id."""
    employer = Employer._meta.db_table
    provision = Provision._meta.db_table
    consent = Consent._meta.db_table
    return f"""WITH provided AS (
  SELECT employer_id, MIN(provided_at) AS first_provided_at,
         MAX(provided_at) AS last_provided_at, COUNT(*) AS provision_count
  FROM {provision} WHERE student_id = %s GROUP BY employer_id
), granted AS (
  SELECT DISTINCT employer_id FROM {consent} WHERE student_id = %s AND granted
)
SELECT {", ".join(f"e.{f.column}" for f in _EMPLOYER_FIELDS)},
       p.first_provided_at, p.last_provided_at,
       COALESCE(p.provision_count, 0) AS provision_count,
       g.employer_id IS NOT NULL AS live_grant
FROM (SELECT employer_id FROM provided UNION SELECT employer_id FROM granted) AS held
JOIN {employer} e ON e.id = held.employer_id
LEFT JOIN provided p ON p.employer_id = e.id
LEFT JOIN granted g ON g.employer_id = e.id
"""  # noqa: S608 - the models' table names; the student's id is a parameter


_CHOSEN = DataRequest.employers.through.objects

# The student's open requests of a kind, as (key, to every recipient): a filing asks it
# under the student's lock, and nearly always finds none; Django took longer to build the
# query than the database to answer it. Parameters: the student's id, the kind, the open
# states.
_OPEN_OF_KIND = f"""SELECT id, all_recipients FROM {DataRequest._meta.db_table}
WHERE student_id = %s AND kind = %s AND status IN ({", ".join(["%s"] * len(DataRequest.OPEN))})
ORDER BY id"""  # noqa: S608 - the model's table; every value a parameter


def _open_of_kind(student: User, kind: str) -> list[tuple[int, bool]]:
    if kind == Kind.CORRECTION:
        return []  # each about its own data: several may be open
    with connection.cursor() as cursor:
        cursor.execute(_OPEN_OF_KIND, [student.pk, kind, *DataRequest.OPEN])
        return [(pk, bool(all_recipients)) for pk, all_recipients in cursor.fetchall()]


def _reference() -> str:
    # 40 random bits a day: a collision needs about a million requests in one day.
    return "R-" + timezone.localdate().strftime("%y%m%d") + "-" + secrets.token_hex(5).upper()


@retry_on_deadlock
def request_file(
    *,
    student: User,
    kind: str,
    employers: list[Employer] | None = None,
    delivery_format: str = DataRequest.Format.PDF_JSON,
    message: str = "",
    language: str = "ja",
    recipients: list[Recipient] | None = None,
    own_part: Callable[[DataRequest], None] | None = None,
) -> DataRequest:
    """File a request: do the portal's part now, and queue one task per company.

    `employers=None` means every recipient. A second open request of the same kind and
    scope is refused, pointing at the first. `recipients` is `request_recipients` for the
    student, when the caller has just asked it (the form that chose among them). A correction
    (disclosure/services/corrections.py) brings its own `recipients` (those that received the
    data corrected) and `own_part` (done in this transaction instead of the other kinds'); a
    student may have several open.
    """
    if kind not in Kind.values:
        raise ValueError(f"unknown kind {kind!r}")
    if (kind == Kind.CORRECTION) != (own_part is not None):
        raise ValueError("a correction, and only a correction, brings its own part")
    if recipients is None:
        recipients = request_recipients(student=student)
    # Every provision of the student is counted in its company's recipient: the deletion's
    # summary says how many are kept without asking the database again.
    provisions = sum(r.provisions for r in recipients)
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
    # A correction is not passed to them yet (docs/companies.md, "Corrections").
    active = DataSource.objects.filter(active=True).order_by("pk")
    sources = [] if own_part else list(active.values_list("pk", flat=True))
    # The student's email ("request received", with the withdrawals' receipts) goes with
    # the companies' tasks and the sources' calls, in one message: the filing hands the
    # broker one message, not 40.
    with transaction.atomic(), emails_held() as emails:
        student_lock(student_id=student.pk)
        for pk, all_recipients in _open_of_kind(student, kind):
            same_scope = (all_recipients and employers is None) or (
                employers is not None
                and not all_recipients
                and set(_CHOSEN.filter(datarequest_id=pk).values_list("employer_id", flat=True))
                == {e.pk for e in employers}
            )
            if same_scope:
                existing = DataRequest.objects.get(pk=pk)
                raise RequestRefused(
                    _("You already have the same request open (%(reference)s).")
                    % {"reference": existing.reference},
                    code="duplicate",
                    existing=existing,
                )
        now = timezone.now()
        request = DataRequest(
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
        withdrawn = []
        if own_part is None:
            # Done before the row is written, so that its outcome goes in the row's INSERT
            # and its event beside the first: two statements fewer while the student waits.
            withdrawn = _portal_part(request, scope=employers, provisions=provisions)
        request.save(force_insert=True)
        if employers is not None:
            request.employers.set(employers)
        # The timeline's first events, and below the companies' and the sources' tasks, by
        # their values (insert_values): bulk_create cost more to build than to run.
        events = {"kind": [Event.SUBMITTED], "actor": [Actor.STUDENT], "detail": [""], "at": [now]}
        if request.portal_done_at is not None:
            events["kind"].append(Event.PORTAL_DONE)
            events["actor"].append(Actor.SYSTEM)
            events["detail"].append(_summary_text(request.portal_summary))
            events["at"].append(request.portal_done_at)
        insert_values(RequestEvent, same={"request_id": request.pk}, each=events)
        task_ids = insert_values(
            RecipientTask,
            same={"request_id": request.pk, "created_at": now, "changed_at": now, "queued_at": now},
            each={
                "employer_id": [r.employer.pk for r in recipients],
                "reasons": [r.as_json() for r in recipients],
            },
        )
        source_task_ids = insert_values(
            SourceTask,
            same={"request_id": request.pk, "queued_at": now},
            each={"source_id": sources},
        )
        if own_part is not None:
            own_part(request)
        elif kind == Kind.DISCLOSURE:
            enqueue.report_build(request.pk)
        # One email to the student: the request received, with the receipts of the
        # withdrawals it made (consent_withdraw_all sends none of its own here).
        _email_student(request, "request_received", withdrawn=withdrawn)
        enqueue.tasks_send_on_commit(task_ids, emails=emails, source_task_ids=source_task_ids)
        if not task_ids and not source_task_ids and request.portal_done_at is not None:
            _complete(request)
    return request


def _portal_part(
    request: DataRequest, *, scope: list[Employer] | None, provisions: int
) -> list[ConsentEvent]:
    """What the portal does itself, at once, in the filing's transaction, before the
    request's row is written: its outcome is set on `request`, which the caller saves. A
    disclosure's report is queued by the caller, once the row has its key. Returns the
    consents it withdrew, whose receipts the student's "received" email lists."""
    student = request.student
    summary: dict = {}
    events: list[ConsentEvent] = []
    if request.kind in (Kind.DELETION, Kind.CESSATION):
        events = consent_withdraw_all(
            student=student,
            screen=ConsentScreen.DATA_REQUEST,
            language=request.language,
            reason=f"{request.get_kind_display()} {request.reference}",
            employers=scope,
            notify_recipients=False,
            student_locked=True,
            email_receipt=False,
        )
        summary["consents_withdrawn"] = len(events)
    if request.kind == Kind.DELETION:
        records = ActivityRecord.objects.filter(student=student)
        if scope is not None:
            records = records.filter(employer__in=scope)
        summary["activity_records_deleted"] = delete_set(records)
        # The scores made from them go with them (docs/inferences.md, what is kept).
        summary["inferences_deleted"] = inferences_erase(student=student, employers=scope)
        summary["kept"] = {
            "provision_records": provisions,
            "why": "APPI Art. 29-30: records of provision to third parties are kept 3 years",
        }
    if request.kind == Kind.DISCLOSURE:
        request.queued_at = timezone.now()
    else:
        request.portal_done_at = timezone.now()
    request.portal_summary = summary
    return events


def _summary_text(summary: dict) -> str:
    parts = []
    if "activity_records_deleted" in summary:
        parts.append(f"activity records deleted: {summary['activity_records_deleted']}")
    if summary.get("inferences_deleted"):
        parts.append(f"inferences deleted: {summary['inferences_deleted']}")
    if "consents_withdrawn" in summary:
        parts.append(f"consents withdrawn: {summary['consents_withdrawn']}")
    if "kept" in summary:
        parts.append(f"kept by law: {summary['kept']['provision_records']} provision records")
    return "; ".join(parts)


# Kinds whose own part may finish after filing: a disclosure's report, and an inference's
# correction, answered by staff (disclosure/services/corrections.py).
AWAITS_OWN_PART = (Kind.DISCLOSURE, Kind.CORRECTION)


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
    if request.kind in AWAITS_OWN_PART and request.portal_done_at is None:
        return  # completes when the report is ready, or staff answered the dispute
    _complete(request)


_OPEN_TASK = [RecipientTask.Status.QUEUED, RecipientTask.Status.SENT]
_SOURCE_DONE = [SourceTask.Status.ANSWERED, SourceTask.Status.CLOSED]


def _complete_if_done_many(request_ids: set[int]) -> list[int]:
    """`_complete_if_done` for many requests at once (a company's answers in bulk), in a few
    queries: each request still open with no company or source waiting, and for a
    disclosure its report ready, completes (partially if a company was closed or refused,
    or a source closed), gets its timeline event and its certificate queued. Returns them."""
    done = (
        DataRequest.objects.select_for_update()
        .filter(pk__in=request_ids, status__in=DataRequest.OPEN)
        .exclude(tasks__status__in=_OPEN_TASK)
        .exclude(
            source_tasks__status__in=[s for s in SourceTask.Status.values if s not in _SOURCE_DONE]
        )
        .exclude(kind__in=AWAITS_OWN_PART, portal_done_at=None)
        .order_by("pk")
    )
    ids = list(done.values_list("pk", flat=True))
    if not ids:
        return []
    partial = set(
        DataRequest.objects.filter(pk__in=ids)
        .filter(
            Q(tasks__status=RecipientTask.Status.CLOSED)
            | Q(tasks__answer=RecipientTask.Answer.REFUSED)
            | Q(source_tasks__status=SourceTask.Status.CLOSED)
        )
        .values_list("pk", flat=True)
    )
    now = timezone.now()
    finished = []
    for status, chosen in (
        (Status.PARTIALLY_COMPLETED, [pk for pk in ids if pk in partial]),
        (Status.COMPLETED, [pk for pk in ids if pk not in partial]),
    ):
        if chosen:
            DataRequest.objects.filter(pk__in=chosen, status__in=DataRequest.OPEN).update(
                status=status, completed_at=now, queued_at=now
            )
            finished += chosen
    RequestEvent.objects.bulk_create(
        RequestEvent(request_id=pk, kind=Event.COMPLETED, actor=Actor.SYSTEM, at=now)
        for pk in finished
    )
    for pk in finished:
        enqueue.request_finish(pk)
    return finished


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

    with transaction.atomic():
        request = DataRequest.objects.select_for_update().get(pk=request_id)
        request.files.filter(kind__in=RequestFile.REPORT_KINDS).delete()
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
        # The due date is in the companies' API list: each task changed.
        RecipientTask.objects.filter(request=request, overdue=True, answered_at=None).update(
            overdue=False
        )
        RecipientTask.objects.filter(request=request).update(changed_at=timezone.now())
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
        ).update(status=RecipientTask.Status.CLOSED, changed_at=timezone.now())
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
