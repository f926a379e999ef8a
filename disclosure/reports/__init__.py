"""Disclosure reports (PDF and JSON) and completion certificates.

`disclosure_report_data(student)` gathers everything the portal holds about a student in a
fixed number of queries (eleven, whatever the length of the student's history), as plain
values rather than model instances, so a student with thousands of activity records costs
one query and one list of tuples for them. The JSON file is that dictionary; the PDF renders
the same rows, so the two can never disagree. Times in the JSON are ISO 8601 with their
offset (Asia/Tokyo); the PDF shows them in the student's language, in Japan time.
"""

from disclosure.reports.certificate import CERTIFICATE_TEMPLATE, certificate_pdf
from disclosure.reports.data import REPORT_FORMAT, disclosure_report_data
from disclosure.reports.files import disclosure_report_files
from disclosure.reports.pdf import (
    REPORT_TEMPLATE,
    SOURCE_PDF_LINES,
    disclosure_report_html,
    source_data_lines,
)

__all__ = [
    "CERTIFICATE_TEMPLATE",
    "REPORT_FORMAT",
    "REPORT_TEMPLATE",
    "SOURCE_PDF_LINES",
    "certificate_pdf",
    "disclosure_report_data",
    "disclosure_report_files",
    "disclosure_report_html",
    "source_data_lines",
]
