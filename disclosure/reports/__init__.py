"""Disclosure reports (PDF, JSON and CSV) and completion certificates.

`disclosure_report_data(student)` gathers everything the portal holds about a student in a
fixed number of queries (18, whatever the length of the student's history:
`REPORT_QUERIES` in tests/disclosure/test_reports.py), as plain
values rather than model instances. The JSON file is that dictionary; the PDF renders the
same rows, so the two can never disagree, but for the activity records, which can be
100,000: the PDF shows their summary (by company, by month and kind, also in the JSON) and
the latest `PDF_LATEST_RECORDS`, and names the files that hold every one, the JSON and a
CSV. `disclosure_report_files` reads the records once, a chunk at a time, into all three
(activity.py, files.py), so its memory does not grow with them beyond the files' own bytes.
Times in the JSON and the CSV are ISO 8601 with their offset (Asia/Tokyo); the PDF shows
them in the student's language, in Japan time.
"""

from disclosure.reports.activity import ACTIVITY_CHUNK, PDF_LATEST_RECORDS
from disclosure.reports.certificate import CERTIFICATE_TEMPLATE, certificate_pdf
from disclosure.reports.data import REPORT_FORMAT, disclosure_report_data
from disclosure.reports.files import (
    disclosure_report_files,
    disclosure_report_html,
    report_file_kinds,
    report_file_names,
)
from disclosure.reports.pdf import REPORT_TEMPLATE, SOURCE_PDF_LINES, source_data_lines

__all__ = [
    "ACTIVITY_CHUNK",
    "CERTIFICATE_TEMPLATE",
    "PDF_LATEST_RECORDS",
    "REPORT_FORMAT",
    "REPORT_TEMPLATE",
    "SOURCE_PDF_LINES",
    "certificate_pdf",
    "disclosure_report_data",
    "disclosure_report_files",
    "disclosure_report_html",
    "report_file_kinds",
    "report_file_names",
    "source_data_lines",
]
