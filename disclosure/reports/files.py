"""The report's files for a request, from one gathering and one pass over the activity
records: the PDF (a summary of the records and the latest of them) and, in the delivery
format's turn, the JSON and the CSV, which hold every record.

The records are never a list: each chunk the pass reads is written to the JSON's array and
the CSV's rows, counted into the summary, and dropped. The JSON is written around its array:
the keys before it first, the records one a line, then the keys after it, which depend on
the records (their summary, the counts, every company named)."""

import csv
import io
import json
import secrets

from django.utils import translation
from django.utils.translation import gettext_lazy as _

from disclosure.models import DataRequest
from disclosure.reports._common import Kind
from disclosure.reports.activity import Row, activity_chunks, activity_record
from disclosure.reports.data import _gather, _jsonable, _Report
from disclosure.reports.inferences import inference_chunks
from disclosure.reports.pdf import _report_html, _report_pdf
from portal.models import ActivityRecord, Language
from portal.shared.spreadsheets import csv_safe

Format = DataRequest.Format
# The CSV goes with every PDF: the PDF lists only the latest records and points to it.
WITH_PDF = (Format.PDF_JSON, Format.PDF)
WITH_JSON = (Format.PDF_JSON, Format.JSON)
# The JSON's layout, as before its records were streamed: UTF-8 (no \u escapes), indented.
JSON_LAYOUT = {"ensure_ascii": False, "indent": 2}
CSV_HEADER = (
    _("Record id"),
    _("When (Japan time)"),
    _("Kind"),
    _("Company"),
    _("Detail"),
    _("Disputed by correction request"),
)


def report_file_names(reference: str) -> dict[str, str]:
    return {
        Kind.REPORT_PDF: f"{reference}-report.pdf",
        Kind.REPORT_JSON: f"{reference}-report.json",
        Kind.REPORT_CSV: f"{reference}-activity.csv",
    }


def report_file_kinds(delivery_format: str) -> list[str]:
    """The files a report in `delivery_format` is made of, in the order they are listed."""
    kinds = []
    if delivery_format in WITH_PDF:
        kinds.append(Kind.REPORT_PDF)
    if delivery_format in WITH_JSON:
        kinds.append(Kind.REPORT_JSON)
    if delivery_format in WITH_PDF:
        kinds.append(Kind.REPORT_CSV)
    return kinds


class _JsonFile:
    """The JSON, as `json.dumps(data, indent=2)` would write it, but for the arrays of
    activity records and of inferences (`STREAMED`, adjacent keys): one item a line. The keys
    before the first array are written first, the text between the two arrays when the pass
    moves from one to the next (`next_array`), and the keys after them once both have passed
    (`close`)."""

    STREAMED = ("activity_records", "inferences")

    def __init__(self, report: _Report) -> None:
        self.buffer = io.BytesIO()
        self.first = True
        before, self.between, _after = self._parts(report.data)
        self.buffer.write(before.encode())

    @classmethod
    def _parts(cls, data: dict) -> tuple[str, str, str]:
        """The JSON text before the first streamed array, between the two, and after."""
        tokens = {key: f"{key}-{secrets.token_hex(16)}" for key in cls.STREAMED}
        # A token is the only value written where its array goes, where nothing people typed
        # can be mistaken for it.
        text = json.dumps(_jsonable({**data, **tokens}), **JSON_LAYOUT)
        before, _token, rest = text.partition(f'"{tokens["activity_records"]}"')
        between, _token, after = rest.partition(f'"{tokens["inferences"]}"')
        return before, between, after

    def add(self, chunk: list, record=activity_record) -> None:
        separator = ",\n    "
        lines = separator.join(json.dumps(record(row), ensure_ascii=False) for row in chunk)
        self.buffer.write(("[\n    " if self.first else separator).encode())
        self.buffer.write(lines.encode())
        self.first = False

    def _end_array(self) -> None:
        self.buffer.write(b"[]" if self.first else b"\n  ]")
        self.first = True

    def next_array(self) -> None:
        """The activity records have passed: the inferences come next."""
        self._end_array()
        self.buffer.write(self.between.encode())

    def close(self, report: _Report) -> bytes:
        self._end_array()
        self.buffer.write(self._parts(report.data)[2].encode())
        return self.buffer.getvalue()


class _Echo:
    """csv.writer writes each row here and gets the line back."""

    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    # A detail is whatever the job site sent, a company's name what staff typed: neither may
    # run in a spreadsheet.
    return "" if value is None else csv_safe(str(value))


class _CsvFile:
    """Every activity record, a row each, in the request's language: UTF-8 with a byte-order
    mark (so that Excel in Japan reads it), every cell through `csv_safe`."""

    def __init__(self, language: str) -> None:
        self.english = language == Language.EN
        self.buffer = io.BytesIO()
        self.writer = csv.writer(_Echo())
        with translation.override(language):
            self.kinds = {value: str(label) for value, label in ActivityRecord.Kind.choices}
            header = [str(label) for label in CSV_HEADER]
        self.buffer.write(("\ufeff" + self.writer.writerow([_cell(h) for h in header])).encode())

    def add(self, chunk: list[Row]) -> None:
        kinds, english, writerow = self.kinds, self.english, self.writer.writerow
        self.buffer.write(
            "".join(
                writerow(
                    [
                        pk,
                        at.isoformat(timespec="seconds"),
                        _cell(kinds.get(kind, kind)),
                        _cell(name_en if english and name_en else name),
                        _cell(detail),
                        # The correction request's reference (the JSON has what it says).
                        _cell(disputed["reference"] if disputed else ""),
                    ]
                )
                for pk, at, kind, _employer_id, name, name_en, detail, disputed in chunk
            ).encode()
        )

    def close(self) -> bytes:
        return self.buffer.getvalue()


def _made(
    request: DataRequest, kinds: list[str]
) -> tuple[_Report, _JsonFile | None, _CsvFile | None]:
    """The report gathered, and its activity records, then its inferences, passed once into
    the files among `kinds` that hold them (the CSV holds only the activity records)."""
    report = _gather(request.student, request=request)
    json_file = _JsonFile(report) if Kind.REPORT_JSON in kinds else None
    csv_file = _CsvFile(request.language) if Kind.REPORT_CSV in kinds else None
    for chunk in activity_chunks(request.student):
        report.activity.add(chunk)
        if json_file:
            json_file.add(chunk)
        if csv_file:
            csv_file.add(chunk)
    if json_file:
        json_file.next_array()
    record = report.inferences.context.record
    for chunk in inference_chunks(request.student):
        report.inferences.add(chunk)
        if json_file:
            json_file.add(chunk, record=record)
    report.close()
    return report, json_file, csv_file


def _full_files(request: DataRequest, kinds: list[str]) -> list[tuple[str, str]]:
    """(name, kind) of the files that come with the PDF and hold every record."""
    names = report_file_names(request.reference)
    return [(names[kind], kind) for kind in (Kind.REPORT_JSON, Kind.REPORT_CSV) if kind in kinds]


CONTENT_TYPES = {
    Kind.REPORT_PDF: "application/pdf",
    Kind.REPORT_JSON: "application/json",
    Kind.REPORT_CSV: "text/csv",
}


def disclosure_report_files(*, request_id: int) -> list[tuple[str, str, str, bytes]]:
    """[(RequestFile.Kind, file name, content type, bytes)] in the request's delivery format:
    `<reference>-report.pdf` with `<reference>-activity.csv`, and/or
    `<reference>-report.json`, from one gathering and one pass over the activity records."""
    request = DataRequest.objects.select_related("student").get(pk=request_id)
    kinds = report_file_kinds(request.delivery_format)
    report, json_file, csv_file = _made(request, kinds)
    contents = {}
    if Kind.REPORT_PDF in kinds:
        contents[Kind.REPORT_PDF] = _report_pdf(
            report, request=request, full_files=_full_files(request, kinds)
        )
    if json_file:
        contents[Kind.REPORT_JSON] = json_file.close(report)
    if csv_file:
        contents[Kind.REPORT_CSV] = csv_file.close()
    names = report_file_names(request.reference)
    return [(kind, names[kind], CONTENT_TYPES[kind], contents[kind]) for kind in kinds]


def disclosure_report_html(*, request_id: int) -> str:
    """The PDF's HTML as `pdf_render` gives it to WeasyPrint (for the benchmark's yardstick)."""
    request = DataRequest.objects.select_related("student").get(pk=request_id)
    kinds = report_file_kinds(request.delivery_format)
    report, _json, _csv = _made(request, [Kind.REPORT_PDF])
    return _report_html(report, request=request, full_files=_full_files(request, kinds))
