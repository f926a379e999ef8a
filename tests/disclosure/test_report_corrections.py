"""An activity record a correction marked disputed carries the mark wherever the student's
disclosure report shows it: the JSON (`disputed`), the CSV (a column) and the PDF (the latest
records, and how many are disputed); an undisputed record carries none."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from consent.services import consent_grant, provision_record
from disclosure.models import Correction
from disclosure.reports import disclosure_report_data
from disclosure.services import request_file
from disclosure.services.corrections import CorrectionAsked, correction_file
from portal.models import ActivityRecord
from tests.disclosure.test_reports import (
    REPORT_QUERIES,
    csv_rows,
    files_of,
    flat,
    gettext_in,
    pdf_text,
)
from tests.factories import (
    ActivityRecordFactory,
    EmployerFactory,
    opt_in_purposes,
    student_who_accepted,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def marked(django_capture_on_commit_callbacks):
    """A student with two records, the first disputed by a correction, and a disclosure
    filed after it (its files built)."""
    analysis, provision = opt_in_purposes()
    student, _version = student_who_accepted(analysis, provision, display_name="山田 花子")
    aoba = EmployerFactory(name="株式会社青葉", name_en="Aoba KK")
    consent_grant(student=student, employer=aoba, purpose=provision)
    now = timezone.now()
    disputed = ActivityRecordFactory(
        student=student,
        employer=aoba,
        kind=ActivityRecord.Kind.JOB_VIEW,
        detail="求人閲覧: 見ていない求人",
        occurred_at=now - timedelta(days=5),
    )
    kept = ActivityRecordFactory(
        student=student,
        kind=ActivityRecord.Kind.SEARCH,
        detail="検索: 東京 エンジニア",
        occurred_at=now - timedelta(days=2),
    )
    provision_record(
        student=student, employer=aoba, purpose=provision, data_items="氏名", provided_at=now
    )
    with django_capture_on_commit_callbacks(execute=True):
        correction = correction_file(
            student=student,
            asked=CorrectionAsked(
                target="activity",
                activity=disputed,
                wrong="この求人は見ていません",
                right="閲覧していない",
            ),
            language="ja",
        )
    with django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=student, kind="disclosure", language="ja")
    request.refresh_from_db()
    return student, disputed, kept, correction, request


def test_the_json_marks_the_disputed_record_with_its_correction_and_no_other(marked):
    _student, disputed, kept, correction, request = marked
    report = json.loads(bytes(files_of(request)["report_json"].content))

    records = {r["id"]: r for r in report["activity_records"]}
    mark = records[disputed.pk]["disputed"]
    assert mark == {
        "reference": correction.reference,
        "filed_at": timezone.localtime(correction.correction.created_at).isoformat(),
        "what_is_wrong": "この求人は見ていません",
        "what_is_right": "閲覧していない",
    }
    assert records[kept.pk]["disputed"] is None
    assert report["activity_summary"]["disputed"] == 1


def test_the_csv_has_the_correction_in_its_own_column(marked):
    _student, disputed, kept, correction, request = marked
    header, *rows = csv_rows(bytes(files_of(request)["report_csv"].content))

    assert header[-1] == gettext_in("ja", "Disputed by correction request")
    by_id = {int(row[0]): row for row in rows}
    assert by_id[disputed.pk][-1] == correction.reference
    assert by_id[kept.pk][-1] == ""
    assert all(len(row) == len(header) for row in rows)


def test_the_pdf_marks_the_disputed_record_in_the_latest_list_and_counts_it(marked):
    _student, _disputed, _kept, correction, request = marked
    _reader, pages = pdf_text(bytes(files_of(request)["report_pdf"].content))
    text = flat("".join(pages))

    mark = flat(gettext_in("ja", "disputed"))
    # The disputed record's row: its detail, then the mark and the correction's reference.
    assert flat(f"求人閲覧: 見ていない求人 · {mark}") in text
    assert correction.reference in text
    # The undisputed record's row ends with its detail, unmarked.
    assert flat(f"検索: 東京 エンジニア · {mark}") not in text
    assert flat("1件は、あなたが訂正の請求で異議を述べたものです。") in text


def test_an_undisputed_report_counts_none_and_shows_no_mark():
    analysis, provision = opt_in_purposes()
    student, _version = student_who_accepted(analysis, provision)
    ActivityRecordFactory(student=student, detail="/jobs/1")
    report = disclosure_report_data(student)

    assert [r["disputed"] for r in report["activity_records"]] == [None]
    assert report["activity_summary"]["disputed"] == 0


def test_the_marks_cost_one_query_however_many_records_are_disputed(
    marked, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    student, disputed, kept, _correction, _request = marked
    more = [ActivityRecordFactory(student=student, detail=f"/jobs/{n}") for n in range(5)]
    for record in [kept, disputed, *more]:  # the first record disputed twice
        with django_capture_on_commit_callbacks(execute=True):
            correction_file(
                student=student,
                asked=CorrectionAsked(target="activity", activity=record, wrong="x", right="y"),
                language="ja",
            )

    with django_assert_max_num_queries(REPORT_QUERIES):
        report = disclosure_report_data(student)

    marks = {r["id"]: r["disputed"] for r in report["activity_records"]}
    assert all(marks[r.pk] for r in [kept, disputed, *more])
    # Disputed twice: the mark is the latest correction's.
    latest = Correction.objects.filter(activity=disputed).latest("created_at", "pk")
    assert marks[disputed.pk]["reference"] == latest.request.reference
    assert report["activity_summary"]["disputed"] == 7
