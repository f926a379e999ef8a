"""Which of a student's deletion and cessation requests cover data dated at a given time, for
a given company: the rule that refuses what the site sends after a request
(`POST /api/v1/activity`, disclosure/activity.py, and `POST /api/v1/inferences`, through
inferences/services/intake.py). One rule, so that an activity record and a score made from
it are refused alike.

- A request counts unless it was cancelled, from its `submitted_at`, over its scope: every
  company for "every recipient", else only the chosen companies.
- Dated at or before a deletion or cessation: covered (`DELETED` or `CEASED`). The deletion
  erased what existed then; the cessation stopped the use of it.
- Dated after a deletion: not covered. A deletion erases what exists; it is no objection to
  what comes next (that is a cessation), and it withdrew the grants, so the consent check
  still governs processing.
- Dated after a cessation: covered (`CEASED_SINCE`), unless the data names a company that the
  student granted consent to again after the cessation, at or before the data's time, and
  the grant still stands. Data naming no company stays covered.

`RequestCoverage.of_students(ids)` loads what a batch needs in a fixed number of queries
(one, or three when a request names companies or a student asked for cessation).
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from consent.models import Consent
from disclosure.models import DataRequest

BLOCKING_KINDS = (DataRequest.Kind.DELETION, DataRequest.Kind.CESSATION)

# Why data is covered.
DELETED = "deleted"  # dated at or before a deletion
CEASED = "ceased"  # dated at or before a cessation
CEASED_SINCE = "ceased_since"  # after a cessation, and no grant for its company since


@dataclass(frozen=True)
class _Blocking:
    kind: str
    submitted_at: datetime
    employers: frozenset[int] | None  # None: every recipient

    def covers(self, employer_id: int | None) -> bool:
        return self.employers is None or employer_id in self.employers


class RequestCoverage:
    """The deletion and cessation requests of some students, asked per piece of data."""

    def __init__(
        self,
        blocking: dict[int, list[_Blocking]],
        regrants: dict[tuple[int, int], list[datetime]],
    ):
        self._blocking, self._regrants = blocking, regrants

    @classmethod
    def of_students(cls, student_ids: set[int]) -> "RequestCoverage":
        blocking = _blocking_requests(student_ids)
        return cls(blocking, _grants_after_cessation(blocking))

    def refusal(self, *, student_id: int, employer_id: int | None, at: datetime) -> str | None:
        """DELETED, CEASED or CEASED_SINCE when a request covers the student's data about
        `employer_id` (None: no company) dated `at`; None when nothing does."""
        for request in self._blocking.get(student_id, ()):
            if not request.covers(employer_id):
                continue
            if at <= request.submitted_at:
                return DELETED if request.kind == DataRequest.Kind.DELETION else CEASED
            if request.kind == DataRequest.Kind.CESSATION and not any(
                request.submitted_at < granted_at <= at
                for granted_at in self._regrants.get((student_id, employer_id), ())
            ):
                return CEASED_SINCE
        return None


def _blocking_requests(student_ids: set[int]) -> dict[int, list[_Blocking]]:
    """The students' deletion and cessation requests that were not cancelled."""
    if not student_ids:
        return {}
    rows = list(
        DataRequest.objects.filter(student_id__in=student_ids, kind__in=BLOCKING_KINDS)
        .exclude(status=DataRequest.Status.CANCELLED)
        .values_list("pk", "student_id", "kind", "submitted_at", "all_recipients")
    )
    chosen: dict[int, set[int]] = defaultdict(set)
    scoped = [pk for pk, _student, _kind, _at, every in rows if not every]
    if scoped:
        for request_id, employer_id in DataRequest.employers.through.objects.filter(
            datarequest_id__in=scoped
        ).values_list("datarequest_id", "employer_id"):
            chosen[request_id].add(employer_id)
    blocking: dict[int, list[_Blocking]] = defaultdict(list)
    for pk, student_id, kind, submitted_at, every in rows:
        scope = None if every else frozenset(chosen[pk])
        blocking[student_id].append(_Blocking(kind, submitted_at, scope))
    return blocking


def _grants_after_cessation(
    blocking: dict[int, list[_Blocking]],
) -> dict[tuple[int, int], list[datetime]]:
    """When the grants that stand now were made, per (student, employer), for the students
    with a cessation request: a grant made after it lets new data for that company in."""
    ceased = {
        student_id
        for student_id, requests in blocking.items()
        if any(r.kind == DataRequest.Kind.CESSATION for r in requests)
    }
    if not ceased:
        return {}
    grants: dict[tuple[int, int], list[datetime]] = defaultdict(list)
    for student_id, employer_id, granted_at in Consent.objects.filter(
        student_id__in=ceased, granted=True
    ).values_list("student_id", "employer_id", "event__occurred_at"):
        grants[(student_id, employer_id)].append(granted_at)
    return grants
