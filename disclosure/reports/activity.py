"""A report's activity records: read once, oldest first, a chunk at a time, and handed to
whatever the report writes from them (the JSON's array, the CSV's rows, the summary and the
latest rows the PDF shows). Nothing here keeps a list of every record, so a student with
100,000 records costs what one chunk of 2,000 costs, plus the files' own bytes."""

from collections import Counter, deque
from collections.abc import Iterator
from datetime import date, datetime
from itertools import islice

from django.utils import timezone

from disclosure.models import Correction
from portal.models import ActivityRecord, User

# Rows read from the database at a time (a server-side cursor on PostgreSQL).
ACTIVITY_CHUNK = 2000
# The most recent records the PDF lists; the JSON and the CSV hold every one.
PDF_LATEST_RECORDS = 200

# One record as the pass hands it on: (id, occurred_at in Japan time, kind, employer id,
# the company's name, its English name, detail, and the mark of a correction that disputed it
# (`activity_disputes`), or None).
Row = tuple[int, datetime, str, int | None, str | None, str | None, str, dict | None]

_FIELDS = (
    "id",
    "occurred_at",
    "kind",
    "employer_id",
    "employer__name",
    "employer__name_en",
    "detail",
)


def activity_disputes(student: User) -> dict[int, dict]:
    """The mark each of the student's records disputed by a correction carries, by record id:
    the correction request's reference, when it was filed, what the student said is wrong and
    what is right (the latest correction, if a record was disputed more than once). One
    query; as many entries as the student's corrections of records, not as their records."""
    marks: dict[int, dict] = {}
    corrections = (
        Correction.objects.filter(
            request__student=student,
            target=Correction.Target.ACTIVITY,
            outcome=Correction.Outcome.DISPUTED,
            activity__isnull=False,
        )
        .order_by("created_at", "pk")
        .values_list("activity_id", "request__reference", "created_at", "wrong", "right")
    )
    for record_id, reference, filed_at, wrong, right in corrections:
        marks[record_id] = {
            "reference": reference,
            "filed_at": timezone.localtime(filed_at).isoformat(),
            "what_is_wrong": wrong,
            "what_is_right": right,
        }
    return marks


def activity_chunks(student: User) -> Iterator[list[Row]]:
    """The student's activity records, oldest first, `ACTIVITY_CHUNK` rows at a time, each
    time in the current time zone (Asia/Tokyo), each with its correction mark: two queries
    (the marks, then the records), however many rows."""
    disputes = activity_disputes(student)
    rows = (
        ActivityRecord.objects.filter(student=student)
        .order_by("occurred_at", "id")
        .values_list(*_FIELDS)
        .iterator(chunk_size=ACTIVITY_CHUNK)
    )
    zone = timezone.get_current_timezone()
    while chunk := list(islice(rows, ACTIVITY_CHUNK)):
        yield [
            (pk, at.astimezone(zone), kind, employer_id, name, name_en, detail, disputes.get(pk))
            for pk, at, kind, employer_id, name, name_en, detail in chunk
        ]


def activity_record(row: Row) -> dict:
    """One record as the JSON writes it (the keys of REPORT_FORMAT 1.0; its time in ISO 8601
    with the offset, like every time of the JSON), and `disputed`: the correction's mark
    (`activity_disputes`), or null."""
    pk, at, kind, employer_id, name, _name_en, detail, disputed = row
    return {
        "id": pk,
        "occurred_at": at.isoformat(),
        "kind": kind,
        "employer_id": employer_id,
        "employer": name,
        "detail": detail,
        "disputed": disputed,
    }


class ActivitySummary:
    """Counts by company, by kind and by month, and the latest rows, kept while the rows pass:
    its size depends on how many companies, kinds and months there are, not on the records."""

    def __init__(self, latest: int = PDF_LATEST_RECORDS) -> None:
        self.records = 0
        self.disputed = 0
        self.first_at: datetime | None = None
        self.last_at: datetime | None = None
        # employer id (None: a record about no company) -> [name, name_en, records, first, last]
        self.companies: dict[int | None, list] = {}
        self.kinds: Counter[str] = Counter()
        self.months: Counter[tuple[date, str]] = Counter()
        self.latest: deque[Row] = deque(maxlen=latest)

    def add(self, chunk: list[Row]) -> None:
        """A chunk of rows, in order (oldest first, as `activity_chunks` gives them)."""
        if not chunk:
            return
        companies, kinds, months = self.companies, self.kinds, self.months
        disputed = 0
        for _pk, at, kind, employer_id, name, name_en, _detail, mark in chunk:
            disputed += mark is not None
            company = companies.get(employer_id)
            if company is None:
                companies[employer_id] = [name, name_en, 1, at, at]
            else:
                company[2] += 1
                company[4] = at
            kinds[kind] += 1
            months[(date(at.year, at.month, 1), kind)] += 1
        if self.first_at is None:
            self.first_at = chunk[0][1]
        self.last_at = chunk[-1][1]
        self.records += len(chunk)
        self.disputed += disputed
        self.latest.extend(chunk)

    def employers(self) -> Iterator[tuple[int, str | None, str | None]]:
        """(id, name, English name) of each company the records are about."""
        for employer_id, (name, name_en, *_rest) in self.companies.items():
            if employer_id is not None:
                yield employer_id, name, name_en

    def as_data(self) -> dict:
        """The summary as the report's data (times as datetimes; the JSON writes them ISO):
        companies with the most records first, kinds in the model's order, months in order."""
        order = {kind: n for n, kind in enumerate(ActivityRecord.Kind.values)}
        by_month: dict[date, dict] = {}
        for (month, kind), count in sorted(self.months.items()):
            entry = by_month.setdefault(
                month, {"month": f"{month:%Y-%m}", "records": 0, "kinds": {}}
            )
            entry["records"] += count
            entry["kinds"][kind] = count
        for entry in by_month.values():
            entry["kinds"] = dict(
                sorted(entry["kinds"].items(), key=lambda item: order.get(item[0], len(order)))
            )
        return {
            "records": self.records,
            "disputed": self.disputed,
            "first_at": self.first_at,
            "last_at": self.last_at,
            "by_company": [
                {
                    "employer_id": employer_id,
                    "employer": name,
                    "records": count,
                    "first_at": first,
                    "last_at": last,
                }
                for employer_id, (name, _name_en, count, first, last) in sorted(
                    self.companies.items(),
                    # The most records first; records about no company last.
                    key=lambda item: (item[0] is None, -item[1][2], item[1][0] or "", item[0] or 0),
                )
            ],
            "by_kind": [
                {"kind": kind, "records": count}
                for kind, count in sorted(
                    self.kinds.items(), key=lambda item: order.get(item[0], len(order))
                )
            ],
            "by_month": list(by_month.values()),
        }
