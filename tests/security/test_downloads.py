"""Every download goes out as an attachment that no browser shows as a page: a safe file
name, `X-Content-Type-Options: nosniff`, not cached, and one of the allowed types; a stored
company file whose bytes are not what its type says goes out as application/octet-stream.

The sweep fetches every URL of the project that returns a file; a scan of the code makes
sure no view writes its own Content-Disposition (every one uses portal.shared.files).
"""

import re
from email.message import Message
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from consent.models import ConsentEvent, PolicyAcceptance
from consent.reports import NEVER_ACCEPTED, UNLISTED
from consent.services import consent_grant, provision_record
from disclosure.models import RequestFile
from disclosure.services import recipient_task_answer, request_file
from portal.shared.files import DOWNLOAD_TYPES, OCTET_STREAM
from tests.factories import (
    EmployerFactory,
    StaffFactory,
    UserFactory,
    opt_in_purposes,
    student_who_accepted,
)

pytestmark = pytest.mark.django_db


def disposition(response) -> tuple[str, str]:
    """(the disposition, the file name) as a browser reads the header."""
    header = Message()
    header["Content-Disposition"] = response["Content-Disposition"]
    return header.get_content_disposition(), header.get_filename()


def body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def assert_safe_download(response, *, name_ends: str) -> str:
    assert response.status_code == 200, response.status_code
    kind, filename = disposition(response)
    assert kind == "attachment", response["Content-Disposition"]
    assert filename and filename.endswith(name_ends), filename
    assert "/" not in filename and "\\" not in filename
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "no-store" in response["Cache-Control"]
    served = response["Content-Type"].split(";")[0]
    assert served in DOWNLOAD_TYPES | {OCTET_STREAM}, served
    assert "html" not in response["Content-Type"] and "svg" not in response["Content-Type"]
    return served


@pytest.fixture
def history(django_capture_on_commit_callbacks):
    """A student with a receipt of each kind and a closed disclosure with every file: the
    portal's report (PDF, JSON and the activity records' CSV), a company's upload and the
    certificate."""
    analysis, provision = opt_in_purposes()
    student, _version = student_who_accepted(analysis, provision, display_name="山田 花子")
    company = EmployerFactory()
    consent_grant(student=student, employer=company, purpose=provision)
    provision_record(student=student, employer=company, purpose=provision, data_items="スコア")
    with django_capture_on_commit_callbacks(execute=True):
        data_request = request_file(student=student, kind="disclosure")
    with django_capture_on_commit_callbacks(execute=True):
        recipient_task_answer(
            task=data_request.tasks.get(),
            answer="disclosed",
            answered_by="鈴木",
            statement="添付のとおり",
            file=("保有データ.csv", "text/csv", "項目,値\n適性スコア,82\n".encode()),
        )
    return {"student": student, "request": data_request, "purpose": analysis}


def test_every_download_is_a_nosniff_attachment_of_an_allowed_type(client, history):
    student, data_request = history["student"], history["request"]
    acceptance = PolicyAcceptance.objects.get(student=student)
    event = ConsentEvent.objects.get(student=student)
    files = {f.kind: f for f in RequestFile.objects.filter(request=data_request)}
    assert set(files) == set(RequestFile.Kind.values), files

    client.force_login(student)
    urls = {
        reverse("consent:receipt_pdf", args=[acceptance.receipt_id]): ("application/pdf", ".pdf"),
        reverse("consent:receipt_json", args=[acceptance.receipt_id]): (
            "application/json",
            ".json",
        ),
        reverse("consent:event_receipt_pdf", args=[event.receipt_id]): ("application/pdf", ".pdf"),
        reverse("consent:event_receipt_json", args=[event.receipt_id]): (
            "application/json",
            ".json",
        ),
        **{
            reverse("disclosure:file", args=[data_request.reference, stored.pk]): (
                stored.content_type,
                Path(stored.name).suffix,
            )
            for stored in files.values()
        },
    }
    for url, (content_type, suffix) in urls.items():
        response = client.get(url)
        assert assert_safe_download(response, name_ends=suffix) == content_type, url
        assert body(response), url

    client.force_login(StaffFactory())
    for section in (UNLISTED, NEVER_ACCEPTED):
        url = reverse("admin:consent_purpose_impact_csv", args=[history["purpose"].pk, section])
        response = client.get(url)
        assert assert_safe_download(response, name_ends=".csv") == "text/csv", url
        assert body(response).startswith("\ufeff".encode())
    # 4 receipts, 5 request files, 2 CSV sections: 11 download URLs swept.
    assert len(urls) + 2 == 11


def _stored_company_file(history, *, name: str, content_type: str, content: bytes):
    """A company file as an older version of the portal (or a bug) might have stored it,
    written around the upload form's checks."""
    task = history["request"].tasks.get()
    return RequestFile.objects.create(
        request=history["request"],
        task=task,
        kind=RequestFile.Kind.COMPANY_FILE,
        name=name,
        content_type=content_type,
        content=content,
        size=len(content),
        sha256="0" * 64,
    )


@pytest.mark.parametrize(
    ("name", "content_type", "content", "served", "name_ends"),
    [
        # An HTML page stored as a PDF: not a PDF, so only as bytes to save.
        ("report.pdf", "application/pdf", b"<!DOCTYPE html><script>alert(1)</script>", OCTET_STREAM, ".pdf.bin"),
        # A PDF/HTML polyglot.
        ("report.pdf", "application/pdf", b"%PDF-1.4\n<html><script>alert(1)</script>", OCTET_STREAM, ".pdf.bin"),
        # An SVG stored as text.
        ("data.txt", "text/plain", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', OCTET_STREAM, ".txt.bin"),
        # A type nobody allowed.
        ("page.html", "text/html", b"<p>hello</p>", OCTET_STREAM, ".html.bin"),
        ("image.svg", "image/svg+xml", b"<svg/>", OCTET_STREAM, ".svg.bin"),
        # Right bytes, wrong name: saved under a name that opens as what it is.
        ("page.html", "text/plain", b"just text", "text/plain", ".html.txt"),
        ("held.csv", "text/csv", "項目,値\n".encode(), "text/csv", "held.csv"),
    ],
)  # fmt: skip
def test_a_stored_company_file_is_served_as_what_its_bytes_are(
    client, history, name, content_type, content, served, name_ends
):
    stored = _stored_company_file(history, name=name, content_type=content_type, content=content)
    client.force_login(history["student"])
    response = client.get(
        reverse("disclosure:file", args=[history["request"].reference, stored.pk])
    )
    assert assert_safe_download(response, name_ends=name_ends) == served
    assert response.content == content


def test_a_file_name_with_quotes_and_newlines_cannot_break_the_header(client, history):
    stored = _stored_company_file(
        history,
        name='a"; filename="evil.html\r\nX-Injected: 1.txt',
        content_type="text/plain",
        content=b"text",
    )
    client.force_login(history["student"])
    response = client.get(
        reverse("disclosure:file", args=[history["request"].reference, stored.pk])
    )
    assert "X-Injected" not in response.headers
    kind, filename = disposition(response)
    assert kind == "attachment" and filename.endswith(".txt") and "evil.html" in filename


def test_another_student_gets_none_of_the_files(client, history):
    client.force_login(UserFactory())
    for stored in RequestFile.objects.filter(request=history["request"]):
        url = reverse("disclosure:file", args=[history["request"].reference, stored.pk])
        assert client.get(url).status_code == 404


SOURCES = ("portal", "consent", "disclosure", "audit", "backoffice")
WRITES_A_FILE = re.compile(
    r"Content-Disposition|FileResponse|StreamingHttpResponse|content_disposition_header"
)


def test_no_view_writes_its_own_download_headers():
    offenders = []
    for app in SOURCES:
        for path in Path(settings.BASE_DIR, app).rglob("*.py"):
            if path.relative_to(settings.BASE_DIR).as_posix() == "portal/shared/files.py":
                continue  # the one place that does
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if WRITES_A_FILE.search(line):
                    offenders.append(f"{path.relative_to(settings.BASE_DIR)}:{number}")
    assert offenders == [], f"use portal.shared.files.attachment_response: {offenders}"
