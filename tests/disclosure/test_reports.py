"""Disclosure reports (JSON and PDF) and completion certificates, built by the tasks that
filing and answering queue (run in-process here)."""

import csv
import hashlib
import io
import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext
from pypdf import PdfReader

from consent.services import consent_grant, consent_withdraw, provision_record
from disclosure.models import DataRequest, RecipientTask, RequestFile
from disclosure.reports import (
    ACTIVITY_CHUNK,
    PDF_LATEST_RECORDS,
    REPORT_FORMAT,
    certificate_pdf,
    disclosure_report_data,
    disclosure_report_files,
)
from disclosure.services import (
    recipient_task_answer,
    recipient_task_close,
    request_cancel,
    request_file,
)
from portal.models import ActivityRecord
from tests.consent.test_receipts import _embedded_fonts
from tests.factories import (
    ActivityRecordFactory,
    EmployerFactory,
    StaffFactory,
    UserFactory,
    opt_in_purposes,
    student_who_accepted,
)

pytestmark = pytest.mark.django_db

COMPANY_JA = "株式会社みらい技研"
COMPANY_EN = "Mirai Giken Co., Ltd."
OTHER_JA = "東和商事株式会社"
DATA_ITEMS = "行動履歴の分析結果（関心度スコア）"
# One more with a request: what the site's own systems (SourceTask) disclosed; one for the
# staff looks at the student's data (audit.StaffRead); four for the inferences (the models,
# the disputes, the objections, the results); one for the activity records a correction
# marked disputed.
REPORT_QUERIES = 18
# The files: the request, then the report's queries.
FILES_QUERIES = REPORT_QUERIES + 1


# --- helpers ------------------------------------------------------------------------------


def pdf_text(content: bytes) -> tuple[PdfReader, list[str]]:
    reader = PdfReader(io.BytesIO(content))
    return reader, [page.extract_text() for page in reader.pages]


def flat(text: str) -> str:
    # Table cells wrap long words and hashes over lines; compare without any whitespace.
    return "".join(text.split())


def labels(language: str, *msgids: str) -> list[str]:
    # The headings as the catalogue renders them (English until a msgid is translated).
    with translation.override(language):
        return [gettext(m) for m in msgids]


def rendered_pages_are_not_blank(
    content: bytes, tmp_path: Path, first: int | None = None, last: int | None = None
) -> int:
    """Render the pages (1-based `first` to `last`, default all) at 40 dpi: none is blank."""
    source = tmp_path / "doc.pdf"
    source.write_bytes(content)
    pages_range = [*(["-f", str(first)] if first else []), *(["-l", str(last)] if last else [])]
    subprocess.run(  # noqa: S603 - a fixed command on a file we wrote
        ["pdftoppm", "-r", "40", *pages_range, "-png", str(source), str(tmp_path / "page")],  # noqa: S607
        check=True,
        timeout=120,
    )
    pages = sorted(tmp_path.glob("page*.png"))
    assert pages
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is in the dev group
        Image = None
    for png in pages:
        if Image is None:
            assert png.stat().st_size > 1500, png
            continue
        with Image.open(png) as image:
            extrema = image.convert("L").getextrema()
        assert extrema[0] != extrema[1], f"{png.name} is a single colour"
    return len(pages)


def files_of(request: DataRequest) -> dict[str, RequestFile]:
    return {f.kind: f for f in RequestFile.objects.filter(request=request)}


def csv_rows(content: bytes) -> list[list[str]]:
    """The CSV's rows; it starts with a byte-order mark, for Excel."""
    assert content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"), newline="")))


def gettext_in(language: str, msgid: str) -> str:
    return labels(language, msgid)[0]


def many_records(student, employers, count: int) -> None:
    """`count` records, an hour apart from 400 days ago ("求人閲覧: 記録0000" the oldest):
    every third about no company, the others about `employers` in turn."""
    start = timezone.now() - timedelta(days=400)
    ActivityRecord.objects.bulk_create(
        ActivityRecord(
            student=student,
            employer=None if n % 3 == 0 else employers[n // 3 % len(employers)],
            kind=ActivityRecord.Kind.JOB_VIEW,
            detail=f"求人閲覧: 記録{n:04d}",
            occurred_at=start + timedelta(hours=n),
        )
        for n in range(count)
    )


@pytest.fixture
def purposes():
    return opt_in_purposes()


@pytest.fixture
def story(purposes):
    """A student with acceptances, grants, a withdrawal, provisions and activity records."""
    analysis, provision = purposes
    # As in the demo data: the purpose's title names the company by a placeholder.
    analysis.title_ja = "閲覧履歴を〈企業〉のために分析すること"
    analysis.title_en = "Analysing my browsing for <employer>"
    analysis.save()
    student, version = student_who_accepted(
        analysis, provision, display_name="山田 花子", email="hanako@example.jp"
    )
    mirai = EmployerFactory(name=COMPANY_JA, name_en=COMPANY_EN)
    towa = EmployerFactory(name=OTHER_JA, name_en="Towa Shoji")
    consent_grant(student=student, employer=mirai, purpose=analysis)
    grant = consent_grant(student=student, employer=mirai, purpose=provision)
    consent_grant(student=student, employer=towa, purpose=provision)
    now = timezone.now()
    provision_record(
        student=student,
        employer=mirai,
        purpose=provision,
        data_items=DATA_ITEMS,
        first_provided_at=grant.occurred_at,
        provided_at=now,
    )
    provision_record(student=student, employer=towa, purpose=provision, data_items="氏名")
    consent_withdraw(student=student, employer=towa, purpose=provision)
    ActivityRecordFactory(
        student=student,
        employer=mirai,
        kind=ActivityRecord.Kind.APPLICATION,
        detail="エントリー: 研究開発職",
        occurred_at=now - timedelta(days=3),
    )
    ActivityRecordFactory(
        student=student, kind=ActivityRecord.Kind.SEARCH, detail="検索: 東京 エンジニア 新卒"
    )
    # Somebody else's data must never appear.
    ActivityRecordFactory(student=UserFactory(), detail="他人の閲覧履歴")
    return {"student": student, "version": version, "mirai": mirai, "towa": towa}


def file_disclosure(capture, student, **kwargs) -> DataRequest:
    with capture(execute=True):
        request = request_file(student=student, kind="disclosure", **kwargs)
    request.refresh_from_db()
    return request


# --- the JSON report --------------------------------------------------------------------


def test_filing_a_disclosure_builds_the_pdf_json_and_csv_reports(
    django_capture_on_commit_callbacks, story
):
    request = file_disclosure(django_capture_on_commit_callbacks, story["student"])

    files = files_of(request)
    assert set(files) == {
        RequestFile.Kind.REPORT_PDF,
        RequestFile.Kind.REPORT_JSON,
        RequestFile.Kind.REPORT_CSV,
    }
    assert files["report_pdf"].name == f"{request.reference}-report.pdf"
    assert files["report_json"].name == f"{request.reference}-report.json"
    assert files["report_csv"].name == f"{request.reference}-activity.csv"
    assert files["report_json"].content_type == "application/json"
    assert files["report_csv"].content_type == "text/csv"
    assert bytes(files["report_pdf"].content).startswith(b"%PDF")
    assert request.portal_done_at is not None


def test_the_json_report_holds_everything_about_the_student(
    django_capture_on_commit_callbacks, story
):
    student, mirai = story["student"], story["mirai"]
    request = file_disclosure(django_capture_on_commit_callbacks, student)
    raw = bytes(files_of(request)["report_json"].content)
    assert COMPANY_JA.encode() in raw  # UTF-8, not \u escapes
    report = json.loads(raw)

    assert report["format"] == REPORT_FORMAT
    assert report["generated_at"].endswith("+09:00")
    assert report["controller"]["name"]
    assert report["request"]["reference"] == request.reference
    profile = report["profile"]
    assert profile["email"] == "hanako@example.jp"
    assert profile["display_name"] == "山田 花子"
    assert profile["public_id"] == str(student.public_id)
    assert profile["date_joined"].endswith("+09:00")

    [acceptance] = report["policy_acceptances"]
    assert acceptance["version"] == story["version"].label
    assert acceptance["screen"] == "signup"
    assert acceptance["language"] == "ja"
    assert acceptance["text_sha256"] == story["version"].stored_sha256("ja")
    assert acceptance["accepted_at"].endswith("+09:00")

    events = report["consent_events"]
    assert [(e["employer"], e["purpose"], e["action"]) for e in events] == [
        (COMPANY_JA, "behaviour_analysis", "grant"),
        (COMPANY_JA, "provision_to_employer", "grant"),
        (OTHER_JA, "provision_to_employer", "grant"),
        (OTHER_JA, "provision_to_employer", "withdraw"),
    ]
    assert all(e["screen"] == "consent_page" and e["actor"] == "student" for e in events)
    assert all(e["policy_version"] == story["version"].label for e in events)
    current = {(c["employer"], c["purpose"]): c["granted"] for c in report["consents"]}
    assert current == {
        (COMPANY_JA, "behaviour_analysis"): True,
        (COMPANY_JA, "provision_to_employer"): True,
        (OTHER_JA, "provision_to_employer"): False,
    }

    by_company = {p["employer"]: p for p in report["provisions"]}
    mirai_provision = by_company[COMPANY_JA]
    assert mirai_provision["employer_id"] == mirai.pk
    assert mirai_provision["data_items"] == DATA_ITEMS
    assert mirai_provision["bulk"] is True
    assert mirai_provision["first_provided_at"] < mirai_provision["last_provided_at"]
    assert mirai_provision["first_provided_at"].endswith("+09:00")
    recipients = {r["employer"]: r for r in report["recipients"]}
    assert set(recipients) == {COMPANY_JA, OTHER_JA}
    assert recipients[COMPANY_JA]["data_items"] == [DATA_ITEMS]

    activity = report["activity_records"]
    assert [a["detail"] for a in activity] == [
        "エントリー: 研究開発職",
        "検索: 東京 エンジニア 新卒",
    ]
    assert activity[0]["employer"] == COMPANY_JA and activity[0]["kind"] == "application"
    assert "他人の閲覧履歴" not in raw.decode()

    [filed] = report["requests"]
    assert filed["reference"] == request.reference and filed["kind"] == "disclosure"
    assert {c["employer"] for c in filed["companies"]} == {COMPANY_JA, OTHER_JA}
    assert all(c["why"]["first_provided_at"].endswith("+09:00") for c in filed["companies"])
    assert filed["timeline"][0]["kind"] == "submitted"
    assert {e["name"] for e in report["employers"]} == {COMPANY_JA, OTHER_JA}
    assert {p["code"] for p in report["purposes"]} == {
        "behaviour_analysis",
        "provision_to_employer",
    }
    assert report["counts"]["activity_records"] == 2


def test_report_data_is_json_serialisable_and_runs_a_fixed_number_of_queries(
    django_assert_max_num_queries, story, purposes
):
    student = story["student"]
    with django_assert_max_num_queries(REPORT_QUERIES):
        small = disclosure_report_data(student)
    json.dumps(small)

    # A far longer history (more records, companies, events, requests): the same count.
    analysis, provision = purposes
    employers = [EmployerFactory() for _ in range(5)]
    for employer in employers:
        consent_grant(student=student, employer=employer, purpose=provision)
        provision_record(student=student, employer=employer, purpose=provision, data_items="x")
    ActivityRecord.objects.bulk_create(
        ActivityRecord(student=student, employer=employers[n % 5], kind="page_view", detail=f"/{n}")
        for n in range(300)
    )
    request = request_file(student=student, kind="disclosure")
    request_file(student=student, kind="cessation", employers=employers[:2])
    with django_assert_max_num_queries(REPORT_QUERIES):
        large = disclosure_report_data(student, request=request)
    json.dumps(large)
    assert len(large["activity_records"]) == 302
    assert len(large["requests"]) == 2
    assert large["request"]["reference"] == request.reference


def test_a_companys_disclosed_answer_and_file_appear_by_name_and_hash(
    django_capture_on_commit_callbacks, story
):
    student = story["student"]
    request = file_disclosure(django_capture_on_commit_callbacks, student)
    task = RecipientTask.objects.get(request=request, employer=story["mirai"])
    content = "氏名,スコア\n山田 花子,0.82\n".encode()
    with django_capture_on_commit_callbacks(execute=True):
        recipient_task_answer(
            task=task,
            answer="disclosed",
            answered_by="人事部 佐藤",
            statement="関心度スコア1件を保有しています。",
            file=("scores.csv", "text/csv", content),
        )

    report = disclosure_report_data(student, request=request)

    [filed] = report["requests"]
    answer = next(c for c in filed["companies"] if c["employer"] == COMPANY_JA)
    assert answer["answer"] == "disclosed" and answer["status"] == "answered"
    assert answer["answered_by"] == "人事部 佐藤"
    assert answer["statement"] == "関心度スコア1件を保有しています。"
    assert answer["answered_via"] == "link"
    assert answer["answered_at"].endswith("+09:00")
    assert answer["files"] == [
        {
            "kind": "company_file",
            "name": "scores.csv",
            "content_type": "text/csv",
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        }
    ]
    # The report's own files are listed by name and hash, never their content.
    assert {f["name"] for f in filed["files"]} == {
        f"{request.reference}-report.pdf",
        f"{request.reference}-report.json",
        f"{request.reference}-activity.csv",
    }
    assert all(set(f) == {"kind", "name", "content_type", "size", "sha256"} for f in filed["files"])


def test_when_a_disclosure_completes_its_stored_report_includes_the_companies_answers(
    django_capture_on_commit_callbacks, story
):
    student = story["student"]
    request = file_disclosure(django_capture_on_commit_callbacks, student)
    for task in RecipientTask.objects.filter(request=request):
        with django_capture_on_commit_callbacks(execute=True):
            recipient_task_answer(
                task=task,
                answer="disclosed",
                answered_by="人事部 佐藤",
                statement="関心度スコア1件を保有しています。",
            )

    request.refresh_from_db()
    assert request.status == DataRequest.Status.COMPLETED
    stored = request.files.get(kind=RequestFile.Kind.REPORT_JSON)
    report = json.loads(bytes(stored.content))
    [filed] = report["requests"]
    assert {c["statement"] for c in filed["companies"]} == {"関心度スコア1件を保有しています。"}
    assert request.files.filter(kind=RequestFile.Kind.REPORT_PDF).count() == 1
    assert request.files.filter(kind=RequestFile.Kind.CERTIFICATE_PDF).count() == 1


@pytest.mark.parametrize(
    ("fmt", "kinds"),
    [
        ("pdf_json", ["report_pdf", "report_json", "report_csv"]),
        # The PDF lists only the latest records: the CSV of every one comes with it.
        ("pdf", ["report_pdf", "report_csv"]),
        ("json", ["report_json"]),
    ],
)
def test_the_files_follow_the_delivery_format(story, fmt, kinds):
    request = request_file(student=story["student"], kind="disclosure", delivery_format=fmt)

    files = disclosure_report_files(request_id=request.pk)

    assert [kind for kind, *_rest in files] == kinds
    reference = request.reference
    for kind, name, content_type, content in files:
        if kind == "report_pdf":
            assert (name, content_type) == (f"{reference}-report.pdf", "application/pdf")
            assert content.startswith(b"%PDF")
            text = flat("".join(pdf_text(content)[1]))
            # The PDF names the files that hold every record, and no other.
            assert (f"{reference}-report.json" in text) == ("report_json" in kinds)
            assert f"{reference}-activity.csv" in text
        elif kind == "report_json":
            assert (name, content_type) == (f"{reference}-report.json", "application/json")
            assert json.loads(content)["profile"]["email"] == "hanako@example.jp"
        else:
            assert (name, content_type) == (f"{reference}-activity.csv", "text/csv")
            assert len(csv_rows(content)) == 1 + 2


# --- the PDF report ---------------------------------------------------------------------

HEADINGS = (
    "Your personal data held by the portal",
    "Profile",
    "Privacy policies you accepted",
    "Consent for each company",
    "Provisions of your data to companies",
    "Activity records",
    "Your data-rights requests",
)


def test_the_pdf_report_is_readable_japanese_with_an_embedded_font(
    django_capture_on_commit_callbacks, story, tmp_path
):
    request = file_disclosure(django_capture_on_commit_callbacks, story["student"])
    content = bytes(files_of(request)["report_pdf"].content)

    reader, pages = pdf_text(content)
    text = flat("".join(pages))
    for heading in labels("ja", *HEADINGS):
        assert flat(heading) in text
    for expected in (
        COMPANY_JA,
        OTHER_JA,
        DATA_ITEMS,
        "山田 花子",
        "hanako@example.jp",
        "エントリー: 研究開発職",
        f"閲覧履歴を{COMPANY_JA}のために分析すること",
        story["version"].label,
        story["version"].stored_sha256("ja"),
        request.reference,
    ):
        assert flat(expected) in text, expected
    assert "他人の閲覧履歴" not in text
    assert "〈企業〉" not in text
    assert any("IPAexGothic" in font for font in _embedded_fonts(reader))
    # The portal's name and the document date head every page, with the page number.
    with translation.override("ja"):
        from django.conf import settings

        site = str(settings.SITE_NAME)
    for number, page in enumerate(pages, 1):
        assert site in page
        assert f"{number} / {len(pages)}" in page
    assert rendered_pages_are_not_blank(content, tmp_path) == len(pages)


def test_the_pdf_report_is_in_the_language_of_the_request(
    django_capture_on_commit_callbacks, story
):
    request = file_disclosure(django_capture_on_commit_callbacks, story["student"], language="en")

    _reader, pages = pdf_text(bytes(files_of(request)["report_pdf"].content))

    text = flat("".join(pages))
    for heading in HEADINGS:
        assert flat(heading) in text
    assert flat(COMPANY_EN) in text
    assert flat(f"Analysing my browsing for {COMPANY_EN}") in text
    assert "<employer>" not in text


def test_a_table_running_over_pages_repeats_its_header_on_each(story, tmp_path):
    # The latest records' table is the longest the PDF has: 200 rows run over several pages
    # (the story's two records are the newest).
    count = PDF_LATEST_RECORDS - 2
    many_records(story["student"], [story["mirai"]], count)
    request = request_file(student=story["student"], kind="disclosure", delivery_format="pdf")

    [(_kind, _name, _type, content), _csv] = disclosure_report_files(request_id=request.pk)

    reader, pages = pdf_text(content)
    pages = [flat(page) for page in pages]
    holding = [n for n, page in enumerate(pages) if "求人閲覧:記録" in page]
    assert len(holding) >= 4
    assert holding == list(range(holding[0], holding[-1] + 1))
    header = [flat(word) for word in labels("ja", "When", "Kind", "Company", "Detail")]
    for n in holding:
        assert all(word in pages[n] for word in header), (n, pages[n][:200])
    # Newest first: the last record made heads the table, the first ends it.
    assert f"求人閲覧:記録{count - 1:04d}" in pages[holding[0]]
    assert "求人閲覧:記録0000" in pages[holding[-1]]
    assert any("IPAexGothic" in font for font in _embedded_fonts(reader))
    assert rendered_pages_are_not_blank(content, tmp_path, first=holding[0] + 1) == (
        len(pages) - holding[0]
    )


def test_thousands_of_activity_records_make_a_short_pdf_of_a_summary_and_the_latest_ones(
    django_capture_on_commit_callbacks, story
):
    student, mirai, towa = story["student"], story["mirai"], story["towa"]
    many_records(student, [mirai, towa], 3000)
    request = file_disclosure(django_capture_on_commit_callbacks, student)
    files = files_of(request)
    newest_first = list(
        ActivityRecord.objects.filter(student=student)
        .order_by("-occurred_at", "-id")
        .values_list("detail", flat=True)
    )

    reader, pages = pdf_text(bytes(files["report_pdf"].content))

    assert len(pages) <= 15
    text = flat("".join(pages))
    # A summary by company, by month and kind ...
    for heading in labels("ja", "By company", "By month and kind"):
        assert flat(heading) in text
    # (every third record is about no company, the rest alternate between the two)
    assert flat(f"{COMPANY_JA}1,001") in text and flat(f"{OTHER_JA}1,000") in text
    assert flat(f"{gettext_in('ja', 'Total')}") in text and "3,002" in text
    # ... the latest records and no older one ...
    shown = newest_first[:PDF_LATEST_RECORDS]
    assert flat(shown[0]) in text and flat(shown[-1]) in text
    assert flat(newest_first[PDF_LATEST_RECORDS]) not in text
    assert "求人閲覧:記録0000" not in text
    # ... and the files that hold every one.
    assert f"{request.reference}-report.json" in text
    assert f"{request.reference}-activity.csv" in text

    report = json.loads(bytes(files["report_json"].content))
    assert len(report["activity_records"]) == report["counts"]["activity_records"] == 3002
    assert report["activity_records"][0]["detail"] == "求人閲覧: 記録0000"
    assert report["activity_records"][1234]["employer"] == OTHER_JA
    summary = report["activity_summary"]
    assert summary["records"] == 3002
    assert {c["employer"]: c["records"] for c in summary["by_company"]} == {
        COMPANY_JA: 1001,
        OTHER_JA: 1000,
        None: 1001,
    }
    assert sum(m["records"] for m in summary["by_month"]) == 3002
    rows = csv_rows(bytes(files["report_csv"].content))
    header, *records = rows
    assert header == labels(
        "ja",
        "Record id",
        "When (Japan time)",
        "Kind",
        "Company",
        "Detail",
        "Disputed by correction request",
    )
    assert len(records) == 3002
    first = ActivityRecord.objects.get(student=student, detail="求人閲覧: 記録1234")
    assert records[1234] == [
        str(first.pk),
        timezone.localtime(first.occurred_at).isoformat(timespec="seconds"),
        labels("ja", "job listing viewed")[0],
        OTHER_JA,
        "求人閲覧: 記録1234",
        "",  # not disputed
    ]


def test_the_json_file_holds_what_the_report_data_holds(story, purposes):
    # Written as a stream around its records' array, it must read back as the dictionary.
    student = story["student"]
    many_records(student, [story["mirai"]], 50)
    request = request_file(student=student, kind="disclosure", delivery_format="json")

    [(_kind, _name, _type, content)] = disclosure_report_files(request_id=request.pk)

    from_file = json.loads(content)
    data = disclosure_report_data(student, request=request)
    assert from_file.pop("generated_at") and data.pop("generated_at")
    assert from_file == data
    assert list(from_file) == list(data)


def test_a_student_without_activity_records_gets_no_empty_tables(story):
    ActivityRecord.objects.filter(student=story["student"]).delete()
    request = request_file(student=story["student"], kind="disclosure")

    files = {
        kind: content for kind, _n, _t, content in disclosure_report_files(request_id=request.pk)
    }

    assert json.loads(files["report_json"])["activity_records"] == []
    assert len(csv_rows(files["report_csv"])) == 1
    text = flat("".join(pdf_text(files["report_pdf"])[1]))
    assert flat(labels("ja", "By company")[0]) not in text


def test_building_the_files_runs_the_same_number_of_queries_for_3000_records(
    django_assert_max_num_queries, story
):
    request = request_file(student=story["student"], kind="disclosure")
    with django_assert_max_num_queries(FILES_QUERIES):
        disclosure_report_files(request_id=request.pk)

    many_records(story["student"], [story["mirai"], story["towa"]], 3000)
    with django_assert_max_num_queries(FILES_QUERIES):
        files = disclosure_report_files(request_id=request.pk)
    assert json.loads(files[1][3])["counts"]["activity_records"] == 3002


@pytest.mark.django_db(transaction=True)
def test_the_files_are_built_outside_a_transaction_as_a_worker_builds_them(story):
    # A worker runs in autocommit: on PostgreSQL the records' server-side cursor must then
    # outlive the statement's transaction (Django declares it WITH HOLD).
    from django.db import connection

    assert not connection.in_atomic_block
    count = ACTIVITY_CHUNK + 500
    many_records(story["student"], [story["mirai"]], count)
    request = request_file(student=story["student"], kind="disclosure", delivery_format="json")

    [(_kind, _name, _type, content)] = disclosure_report_files(request_id=request.pk)

    report = json.loads(content)
    assert len(report["activity_records"]) == count + 2
    assert [r["detail"] for r in report["activity_records"][:2]] == [
        "求人閲覧: 記録0000",
        "求人閲覧: 記録0001",
    ]


def test_the_students_downloads_the_pdf_json_and_csv_from_the_request_page(
    django_capture_on_commit_callbacks, story, client
):
    many_records(story["student"], [story["mirai"]], 300)
    request = file_disclosure(django_capture_on_commit_callbacks, story["student"])
    client.force_login(story["student"])

    page = client.get(reverse("disclosure:request_detail", args=[request.reference]))

    html = page.content.decode()
    stored = files_of(request)
    for kind in RequestFile.REPORT_KINDS:
        assert reverse("disclosure:file", args=[request.reference, stored[kind].pk]) in html
    with translation.override("ja"):
        assert str(RequestFile.Kind.REPORT_CSV.label) in html
    response = client.get(
        reverse("disclosure:file", args=[request.reference, stored["report_csv"].pk])
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert f"{request.reference}-activity.csv" in response["Content-Disposition"]
    assert response.content == bytes(stored["report_csv"].content)
    assert response.content.startswith("\ufeff".encode())
    assert len(csv_rows(response.content)) == 1 + 302


# --- the certificate --------------------------------------------------------------------


def test_the_certificate_lists_every_companys_answer(
    django_capture_on_commit_callbacks, purposes, tmp_path
):
    analysis, provision = purposes
    student, _version = student_who_accepted(analysis, provision, display_name="佐藤 次郎")
    companies = [
        EmployerFactory(name="株式会社あおば"),
        EmployerFactory(name="株式会社いずみ"),
        EmployerFactory(name="株式会社うみ"),
        EmployerFactory(name="株式会社えがお"),
    ]
    for employer in companies:
        consent_grant(student=student, employer=employer, purpose=provision)
        provision_record(student=student, employer=employer, purpose=provision, data_items="x")
    ActivityRecordFactory.create_batch(3, student=student)
    staff = StaffFactory(display_name="サポート 田中")
    with django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=student, kind="deletion")
    tasks = {t.employer.name: t for t in request.tasks.select_related("employer")}
    with django_capture_on_commit_callbacks(execute=True):
        recipient_task_answer(
            task=tasks["株式会社あおば"],
            answer="deleted",
            answered_by="人事部長 青葉 一郎",
            statement="受領したデータと派生スコアをすべて削除しました。",
        )
        recipient_task_answer(
            task=tasks["株式会社いずみ"],
            answer="refused",
            answered_by="法務部 泉 二郎",
            statement="訴訟対応のため保存義務があります。",
        )
        recipient_task_answer(
            task=tasks["株式会社うみ"],
            answer="held_none",
            answered_by="海 三郎",
            via="staff",
            staff=staff,
            evidence="2026年5月1日付の書面（受付番号 123）",
        )
        recipient_task_close(task=tasks["株式会社えがお"], by=staff, reason="会社が解散したため")
    request.refresh_from_db()
    assert request.status == DataRequest.Status.PARTIALLY_COMPLETED
    certificate = files_of(request)["certificate_pdf"]
    assert certificate.name == f"{request.reference}-certificate.pdf"

    reader, pages = pdf_text(bytes(certificate.content))
    text = flat("".join(pages))
    for expected in (
        request.reference,
        "佐藤 次郎",
        "株式会社あおば",
        "人事部長 青葉 一郎",
        "受領したデータと派生スコアをすべて削除しました。",
        "法務部 泉 二郎",
        "訴訟対応のため保存義務があります。",
        "海 三郎",
        "2026年5月1日付の書面（受付番号 123）",
        "サポート 田中",
        "会社が解散したため",
    ):
        assert flat(expected) in text, expected
    with translation.override("ja"):
        for answer in ("deleted", "refused", "held_none"):
            assert flat(str(RecipientTask.Answer(answer).label)) in text
        assert flat(str(DataRequest.Kind.DELETION.label)) in text
    assert request.portal_summary["activity_records_deleted"] == 3
    assert any("IPAexGothic" in font for font in _embedded_fonts(reader))
    rendered_pages_are_not_blank(bytes(certificate.content), tmp_path)


def test_the_certificate_shows_tasks_of_a_cancelled_request_as_cancelled(story):
    request = request_file(student=story["student"], kind="cessation", language="en")
    request_cancel(request=request, reason="filed by mistake")

    content, name = certificate_pdf(request_id=request.pk)

    assert name == f"{request.reference}-certificate.pdf"
    text = flat("".join(pdf_text(content)[1]))
    assert flat("filed by mistake") in text
    assert text.count(flat("Cancelled with the request")) == 2
    assert flat(COMPANY_EN) in text


def test_the_english_certificate_capitalises_its_labels_and_writes_every_date_one_way(
    django_capture_on_commit_callbacks, purposes
):
    """Issue 17, item 4: "deletion" and "completed" in lower case, and the answers' times in
    a second, shorter format."""
    from django.utils import formats, timezone
    from django.utils import translation as tr

    _analysis, provision = purposes
    student, _version = student_who_accepted(provision, display_name="Ann Lee", language="en")
    employer = EmployerFactory(name="Aoba KK")
    consent_grant(student=student, employer=employer, purpose=provision)
    provision_record(student=student, employer=employer, purpose=provision, data_items="x")
    with django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=student, kind="deletion", language="en")
        recipient_task_answer(task=request.tasks.get(), answer="held_none", answered_by="Aoba")
    request.refresh_from_db()
    task = request.tasks.get()
    _reader, pages = pdf_text(bytes(files_of(request)["certificate_pdf"].content))
    text = flat("".join(pages))
    assert "Kindofrequest" + "Deletion" in text
    assert "Outcome" + "Completed" in text
    with tr.override("en"):
        long = formats.date_format(timezone.localtime(task.answered_at), "DATETIME_FORMAT")
        short = formats.date_format(timezone.localtime(task.answered_at), "SHORT_DATETIME_FORMAT")
    assert flat(long) in text
    assert long == short or flat(short) not in text


def test_each_reader_reads_the_attestation_in_their_language_and_the_exact_words_are_kept(
    client, django_capture_on_commit_callbacks, purposes
):
    """Issue 17, item 4: a Japanese student's page and certificate showed the English
    attestation because the company's contact reads English. Each reader now reads it in
    their language; the words the company confirmed, in its language, are the evidence (on
    demand on the page, and in the certificate's annex)."""
    from disclosure.models import DELETION_ATTESTATION

    _analysis, provision = purposes
    student, _version = student_who_accepted(provision, display_name="山田 花子", language="ja")
    employer = EmployerFactory(name="Maple KK", language="en")
    consent_grant(student=student, employer=employer, purpose=provision)
    provision_record(student=student, employer=employer, purpose=provision, data_items="x")
    with translation.override("en"):
        english = str(DELETION_ATTESTATION)
    with translation.override("ja"):
        japanese = str(DELETION_ATTESTATION)
    assert english != japanese
    with django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=student, kind="deletion", language="ja")
        recipient_task_answer(
            task=request.tasks.get(), answer="deleted", answered_by="Sato", statement=english
        )
    request.refresh_from_db()
    assert request.tasks.get().statement == english  # the evidence, as confirmed

    client.force_login(student)
    client.cookies.load({"django_language": "ja"})
    html = client.get(reverse("disclosure:request_detail", args=[request.reference])).content
    html = html.decode()
    assert japanese in html
    assert f'<p lang="en">{english}</p>'.replace("'", "&#x27;") in html  # on demand

    _reader, pages = pdf_text(bytes(files_of(request)["certificate_pdf"].content))
    text = flat("".join(pages))
    assert flat(japanese) in text
    assert flat(english) in text  # the annex
