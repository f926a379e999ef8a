"""A company's workspace as a CSV file (issue 19): the tasks downloaded with empty answer
columns, and a filled-in file read back.

Download: one row per task of the list's filter (waiting ones by default), every cell through
`csv_safe`, a byte-order mark first so that Excel in Japan reads UTF-8, the header in the
page's language. Two queries however many rows: the company's provision records, then the
tasks read in chunks while the response streams.

Upload: `csv_plan` reads the file strictly (size, UTF-8 with or without BOM or else
Shift_JIS/CP932, a header naming at least the reference and the answer columns) and says of
each row whether it will be answered or why not. Nothing is recorded here: the view keeps
the rows that will be answered and answers them on confirmation through
`workspace_answer_plan`, the bulk answer's batch path.
"""

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Max, Min, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from consent.models import Provision
from disclosure.models import DataRequest, RecipientTask
from disclosure.services.companies import ANSWERS_BY_KIND
from disclosure.services.workspace import OPEN
from portal.shared.spreadsheets import csv_safe

CSV_MAX_BYTES = 2 * 1024 * 1024
CSV_MAX_ROWS = 10_000
CSV_CHUNK = 2000
# The longest statement each answer page takes: a reason, the data held.
STATEMENT_MAX = {"refused": 4000, "disclosed": 20000}

# (machine name, header label): the download's columns; an upload finds its columns by
# either, in Japanese or English.
COLUMNS = (
    ("reference", gettext_lazy("reference")),
    ("kind", gettext_lazy("kind")),
    ("filed", pgettext_lazy("CSV column", "filed")),
    ("due", gettext_lazy("due")),
    ("days_left", gettext_lazy("days left")),
    ("student_name", gettext_lazy("student name")),
    ("student_email", gettext_lazy("student email")),
    ("received", gettext_lazy("what the company received")),
    ("answer", gettext_lazy("answer")),
    ("statement", gettext_lazy("statement")),
)
LANGUAGES = ("ja", "en")


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    if value is None:
        return ""
    return csv_safe(str(value))


def csv_filename() -> str:
    return f"requests-{timezone.localdate():%Y-%m-%d}.csv"


def _received(employer_id: int) -> dict[int, str]:
    """What the company received about each student: one query."""
    rows = (
        Provision.objects.filter(employer_id=employer_id)
        .values("student_id", "data_items")
        .annotate(first=Min(Coalesce("first_provided_at", "provided_at")), last=Max("provided_at"))
        .order_by("student_id", "-last")
    )
    result: dict[int, list[str]] = {}
    for row in rows:
        first, last = timezone.localdate(row["first"]), timezone.localdate(row["last"])
        dates = f"{first:%Y-%m-%d}–{last:%Y-%m-%d}" if first != last else f"{last:%Y-%m-%d}"
        result.setdefault(row["student_id"], []).append(f"{row['data_items']} ({dates})")
    return {student: " / ".join(items) for student, items in result.items()}


def csv_lines(*, employer_id: int, tasks: QuerySet[RecipientTask]) -> Iterator[str]:
    """The tasks as CSV lines. The header and the kinds are translated now, in the
    request's language; the rows are read while the response streams."""
    headers = [str(label) for _name, label in COLUMNS]
    kinds = {value: str(label) for value, label in DataRequest.Kind.choices}
    rows = tasks.select_related("request__student").only(
        "id",
        "status",
        "request__reference",
        "request__kind",
        "request__submitted_at",
        "request__due_at",
        "request__student__id",
        "request__student__display_name",
        "request__student__email",
    )
    return _stream(employer_id=employer_id, headers=headers, kinds=kinds, rows=rows)


def _date(value: datetime | None) -> str:
    return f"{timezone.localdate(value):%Y-%m-%d}" if value else ""


def _stream(*, employer_id: int, headers: list[str], kinds: dict, rows: QuerySet) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow([_cell(h) for h in headers])
    received = _received(employer_id)
    now = timezone.now()
    for task in rows.iterator(chunk_size=CSV_CHUNK):
        data_request = task.request
        is_open = task.status in OPEN
        yield writer.writerow(
            [
                _cell(value)
                for value in (
                    data_request.reference,
                    kinds.get(data_request.kind, data_request.kind),
                    _date(data_request.submitted_at),
                    _date(data_request.due_at),
                    (data_request.due_at - now).days if is_open else "",
                    data_request.student.display_name,
                    data_request.student.email,
                    received.get(data_request.student_id, ""),
                    "",
                    "",
                )
            ]
        )


# --- reading a file back ---------------------------------------------------------------------


class CsvRefused(Exception):
    """The file as a whole cannot be read; the message says why, for the form."""


@dataclass
class CsvRow:
    number: int  # the line in the file, the header being 1
    reference: str = ""
    answer: str = ""  # the machine value, once understood
    statement: str = ""
    task: RecipientTask | None = None
    reason: str = ""  # why it cannot be answered; empty if it will be


@dataclass
class CsvPlan:
    rows: list[CsvRow] = field(default_factory=list)

    @property
    def good(self) -> list[CsvRow]:
        return [row for row in self.rows if not row.reason]

    @property
    def bad(self) -> list[CsvRow]:
        return [row for row in self.rows if row.reason]


def _key(text: str) -> str:
    return " ".join(text.strip().lstrip("'").split()).casefold()


def _decode(content: bytes) -> str:
    if b"\x00" in content:
        raise CsvRefused(_("This is not a CSV file. Upload the CSV downloaded from this page."))
    for encoding in ("utf-8-sig", "cp932"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CsvRefused(
        _("The file could not be read as text. Save it as CSV (UTF-8 or Shift_JIS) and try again.")
    )


def _header_names() -> dict[str, str]:
    names = {}
    for name, label in COLUMNS:
        names[_key(name)] = name
        for language in LANGUAGES:
            with translation.override(language):
                names[_key(str(label))] = name
    return names


def _answer_names() -> dict[str, str]:
    names = {}
    for value, label in RecipientTask.Answer.choices:
        names[_key(value)] = value
        for language in LANGUAGES:
            with translation.override(language):
                names[_key(str(label))] = value
    return names


def csv_plan(*, employer_id: int, content: bytes) -> CsvPlan:
    """What answering the file would do, row by row. Raises CsvRefused for a file that is
    not the workspace's CSV. Reads, never writes."""
    if len(content) > CSV_MAX_BYTES:
        raise CsvRefused(
            _("The file is larger than %(size)s MB. Split it into smaller files.")
            % {"size": CSV_MAX_BYTES // (1024 * 1024)}
        )
    text = _decode(content)
    try:
        lines = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as error:
        raise CsvRefused(
            _("The file is not a well-formed CSV file. Upload the CSV downloaded from this page.")
        ) from error
    if not lines:
        raise CsvRefused(_("The file is empty."))
    headers = _header_names()
    columns: dict[str, int] = {}
    for index, cell in enumerate(lines[0]):
        name = headers.get(_key(cell))
        if name and name not in columns:
            columns[name] = index
    if "reference" not in columns or "answer" not in columns:
        raise CsvRefused(
            _(
                "The first row must name the columns, at least “reference” and “answer”. "
                "Upload the CSV downloaded from this page."
            )
        )
    if len(lines) - 1 > CSV_MAX_ROWS:
        raise CsvRefused(
            _("The file has more than %(count)s rows. Split it into smaller files.")
            % {"count": CSV_MAX_ROWS}
        )

    def cell(line: list[str], name: str) -> str:
        index = columns.get(name)
        return line[index].strip() if index is not None and index < len(line) else ""

    plan = CsvPlan()
    for number, line in enumerate(lines[1:], start=2):
        row = CsvRow(
            number=number,
            reference=cell(line, "reference").lstrip("'").strip().upper(),
            answer=cell(line, "answer"),
            statement=cell(line, "statement"),
        )
        plan.rows.append(row)
    references = {row.reference for row in plan.rows if row.reference}
    tasks = {
        task.request.reference: task
        for task in RecipientTask.objects.filter(
            employer_id=employer_id, request__reference__in=references
        ).select_related("request__student")
    }
    answers = _answer_names()
    seen: dict[str, int] = {}
    for row in plan.rows:
        if not row.reference and not row.answer and not row.statement:
            row.reason = _("blank row")
            continue
        if not row.reference:
            row.reason = _("no reference")
            continue
        if row.reference in seen:
            row.reason = _("the same reference is in row %(number)s; only that row counts") % {
                "number": seen[row.reference]
            }
            continue
        seen[row.reference] = row.number
        task = tasks.get(row.reference)
        if task is None:
            # Another company's reference reads exactly like one that does not exist.
            row.reason = _("unknown reference")
            continue
        row.task = task
        if task.answered_at is not None or task.status == RecipientTask.Status.ANSWERED:
            row.reason = _("already answered")
            continue
        if task.status not in OPEN or not task.request.is_open:
            row.reason = _("the request is closed")
            continue
        if not row.answer:
            row.reason = _("no answer given; left waiting")
            continue
        value = answers.get(_key(row.answer))
        if value is None:
            row.reason = _("answer not understood: “%(answer)s”") % {"answer": row.answer[:50]}
            continue
        row.answer = value
        if value not in ANSWERS_BY_KIND[task.request.kind]:
            row.reason = _("this answer does not fit a %(kind)s request") % {
                "kind": task.request.get_kind_display()
            }
            continue
        if value == RecipientTask.Answer.REFUSED and not row.statement:
            row.reason = _("“cannot comply” needs a statement of why")
            continue
        if value == RecipientTask.Answer.DISCLOSED and not row.statement:
            row.reason = _("“disclosed” needs a statement of the data you hold")
            continue
        if value not in STATEMENT_MAX:
            row.statement = ""  # recorded as on the answer page: the attestation, or nothing
        elif len(row.statement) > STATEMENT_MAX[value]:
            row.reason = _("the statement is longer than %(count)s characters") % {
                "count": f"{STATEMENT_MAX[value]:,}"
            }
            continue
    return plan
