"""Activity records sent by the job site (`POST /api/v1/activity`, issue 12).

The site sends the behaviour data it collects, in batches; the portal stores each record
once per sender and record id, and refuses what a student's deletion or cessation request
covers. It lives here, not in consent, because the rule is the requests': a deletion erases
the records it finds, and a record sent later must not bring back what it erased.

The rules, per record (DESIGN.md "Request model"; REQUIREMENTS.md, APPI Art. 35), are the
requests' coverage (disclosure/coverage.py), which inferences share:
- A request counts unless it was cancelled, from its `submitted_at`, over its scope: every
  record of the student for "every recipient", else only records naming a chosen company
  (exactly what the deletion itself erases).
- Dated at or before a deletion or cessation: refused. Dated after a deletion: stored.
  Dated after a cessation: refused, unless the record names a company that the student
  granted consent to again after the cessation, at or before the record's time, and the
  grant still stands. A record naming no company stays refused.
- Also refused: an unknown student or company, a time in the future, or one older than the
  activity retention period (the daily job would delete it at once).

One batch runs a fixed number of queries whatever its size (the insert is split only where
SQLite limits a statement's parameters), under a lock on the students' rows that
request_file also takes, so a deletion filed meanwhile either sees the batch's rows and
erases them, or is seen by the batch.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from consent.api.payloads import ActivityPayload
from consent.models import ApiClient
from consent.services.provisions import CLOCK_SKEW
from disclosure.coverage import CEASED, CEASED_SINCE, DELETED, RequestCoverage
from portal.models import ActivityRecord, Employer, User

STORED, DUPLICATE, REFUSED = "stored", "duplicate", "refused"


@dataclass(frozen=True)
class ActivityOutcome:
    """What became of one record: stored, duplicate (stored before, same content) or
    refused with a status (422, or 409 for the same id with other content) and a code."""

    result: str
    status: int
    code: str = ""
    message: str = ""


_STORED = ActivityOutcome(STORED, 201)
_DUPLICATE = ActivityOutcome(DUPLICATE, 200)


def _refused(code: str, message: str, status: int = 422) -> ActivityOutcome:
    return ActivityOutcome(REFUSED, status, code, message)


def _conflict() -> ActivityOutcome:
    return _refused(
        "conflict",
        _("This record id was already used for a record with other content."),
        status=409,
    )


def _content(student_id, employer_id, kind, detail, occurred_at) -> tuple:
    return (student_id, employer_id, kind, detail, occurred_at)


def activity_receive(*, client: ApiClient, records: list[ActivityPayload]) -> list[ActivityOutcome]:
    """Store the batch's new records; one outcome per record, in the order sent."""
    now = timezone.now()
    oldest = now - timedelta(days=settings.RETENTION_ACTIVITY_DAYS)
    with transaction.atomic():
        # request_file locks the student's row too: one waits for the other
        # (portal/shared/locking.py).
        students = {
            str(public_id): pk
            for pk, public_id in User.objects.select_for_update(no_key=True)
            .filter(public_id__in={r.student for r in records})
            .order_by("pk")
            .values_list("pk", "public_id")
        }
        wanted_employers = {r.employer for r in records if r.employer is not None}
        employers = (
            set(Employer.objects.filter(pk__in=wanted_employers).values_list("pk", flat=True))
            if wanted_employers
            else set()
        )
        coverage = RequestCoverage.of_students(set(students.values()))
        existing = {
            row[0]: _content(*row[1:])
            for row in ActivityRecord.objects.filter(
                sender=client, source_record_id__in={r.id for r in records}
            ).values_list(
                "source_record_id", "student_id", "employer_id", "kind", "detail", "occurred_at"
            )
        }

        outcomes: list[ActivityOutcome | None] = []
        new: dict[str, ActivityRecord] = {}
        for record in records:
            student_id = students.get(record.student)
            content = _content(
                student_id, record.employer, record.kind, record.detail, record.occurred_at
            )
            if record.id in existing:
                outcomes.append(_DUPLICATE if existing[record.id] == content else _conflict())
                continue
            refusal = _refusal(record, student_id, employers, coverage, now=now, oldest=oldest)
            if refusal is not None:
                outcomes.append(refusal)
                continue
            # Sent twice in one batch: the first is stored, the second is its duplicate.
            existing[record.id] = content
            new[record.id] = ActivityRecord(
                student_id=student_id,
                employer_id=record.employer,
                kind=record.kind,
                detail=record.detail,
                occurred_at=record.occurred_at,
                sender=client,
                source_record_id=record.id,
                received_at=now,
            )
            outcomes.append(None)  # stored, unless another batch stored the id meanwhile

        stored: dict[str, tuple] = {}
        if new:
            # A concurrent batch from the same sender may have stored one of these ids since
            # it was looked for: nothing is stored twice, and the row read back says whether
            # it holds this content.
            ActivityRecord.objects.bulk_create(new.values(), ignore_conflicts=True)
            stored = {
                row[0]: _content(*row[1:])
                for row in ActivityRecord.objects.filter(
                    sender=client, source_record_id__in=new.keys()
                ).values_list(
                    "source_record_id",
                    "student_id",
                    "employer_id",
                    "kind",
                    "detail",
                    "occurred_at",
                )
            }
        for index, (record, outcome) in enumerate(zip(records, outcomes, strict=True)):
            if outcome is None:
                same = stored.get(record.id) == existing[record.id]
                outcomes[index] = _STORED if same else _conflict()
    return outcomes


def _refusal(
    record: ActivityPayload,
    student_id: int | None,
    employers: set[int],
    coverage: RequestCoverage,
    *,
    now: datetime,
    oldest: datetime,
) -> ActivityOutcome | None:
    if student_id is None:
        return _refused("unknown_student", _("No student has this id."))
    if record.employer is not None and record.employer not in employers:
        return _refused("unknown_employer", _("No employer has this id."))
    if record.occurred_at > now + CLOCK_SKEW:
        return _refused("future", _("An activity record cannot be dated in the future."))
    if record.occurred_at < oldest:
        return _refused(
            "expired",
            _("The record is older than the activity retention period (%(days)d days).")
            % {"days": settings.RETENTION_ACTIVITY_DAYS},
        )
    covered = coverage.refusal(
        student_id=student_id, employer_id=record.employer, at=record.occurred_at
    )
    if covered == DELETED:
        return _refused(
            "erased_by_request",
            _("The student asked for deletion after this record's time: it must not be stored."),
        )
    if covered == CEASED:
        return _refused(
            "stopped_by_request",
            _(
                "The student asked to stop the use of their data after this record's "
                "time: it must not be stored."
            ),
        )
    if covered == CEASED_SINCE:
        return _refused(
            "stopped_by_request",
            _(
                "The student asked to stop the use of their data: nothing more is "
                "collected unless they grant consent for this company again."
            ),
        )
    return None
