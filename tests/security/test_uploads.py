"""A company's upload on /r/<token>/ is refused when it could open as a page: HTML or SVG under
a PDF, text, CSV or JSON name and type, a PDF/HTML polyglot, or a name that does not say
what the file is. Crafted files, posted through the answer page like a company's browser;
the page comes back with the message and keeps everything else that was typed.
"""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from consent.services import consent_grant, provision_record
from disclosure.models import RecipientTask, RequestFile
from disclosure.services import request_file
from portal.shared.files import SNIFF_BYTES
from portal.shared.pdf import pdf_bytes
from tests.factories import EmployerFactory, opt_in_purposes, student_who_accepted

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r"/r/([A-Za-z0-9_-]+)/")
HTML = b"<!DOCTYPE html><html><body><script>alert(document.domain)</script></body></html>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.domain)"/>'
MARKUP = "web-page code"
NAME = "must end in"

REFUSED = {
    "html-named-pdf": ("report.pdf", "application/pdf", HTML, MARKUP),
    "svg-named-pdf": ("report.pdf", "application/pdf", SVG, MARKUP),
    "html-as-text": ("data.txt", "text/plain", HTML, MARKUP),
    "svg-as-text": ("data.txt", "text/plain", SVG, MARKUP),
    "html-as-csv": ("data.csv", "text/csv", b"name,score\n" + HTML, MARKUP),
    "svg-as-excel-csv": ("data.csv", "application/vnd.ms-excel", SVG, MARKUP),
    "html-as-json": ("data.json", "application/json", b'{"a": "' + HTML + b'"}', MARKUP),
    "xml-as-json": ("data.json", "application/json", b'<?xml version="1.0"?><a/>', MARKUP),
    "utf16-html-as-text": ("data.txt", "text/plain", HTML.decode().encode("utf-16-le"), MARKUP),
    "pdf-html-polyglot": (
        "report.pdf",
        "application/pdf",
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n<html><body><script>alert(1)</script>",
        MARKUP,
    ),
    "pdf-svg-polyglot": ("report.pdf", "application/pdf", b"%PDF-1.7\n" + SVG, MARKUP),
    "pdf-doctype-further-in": (
        "report.pdf",
        "application/pdf",
        b"%PDF-1.4\n" + b"% padding\n" * 150 + b"<!doctype html><p>hi</p>",
        MARKUP,
    ),
    "handler-on-a-short-tag": (
        "data.csv",
        "text/csv",
        b'name,note\nx,<b onmouseover="alert(1)">hover</b>',
        MARKUP,
    ),
    "html-page-named-html": ("page.html", "text/plain", b"only text, but a .html name", NAME),
    "html-with-pdf-type-and-html-name": ("page.html", "application/pdf", b"%PDF-1.4\n", NAME),
}


@pytest.fixture
def answer_url(django_capture_on_commit_callbacks, mailoutbox):
    """The answer page of a company asked to disclose a student's data."""
    analysis, provision = opt_in_purposes()
    student, _version = student_who_accepted(analysis, provision)
    company = EmployerFactory(language="en")
    consent_grant(student=student, employer=company, purpose=provision)
    provision_record(student=student, employer=company, purpose=provision, data_items="スコア")
    with django_capture_on_commit_callbacks(execute=True):
        request_file(student=student, kind="disclosure")
    [mail] = [m for m in mailoutbox if m.to == [company.primary_contact.email]]
    return reverse("disclosure:answer", args=[TOKEN.search(mail.body).group(1)])


def post_file(client, url, capture, upload):
    with capture(execute=True):
        return client.post(
            url,
            {
                "answer": "disclosed",
                "answered_by": "Hanako Sato, HR manager",
                "held_data": "Aptitude score: 82 (see the file)",
                "upload": upload,
            },
        )


@pytest.mark.parametrize("case", REFUSED)
def test_a_file_that_could_open_as_a_page_is_refused_and_the_answer_is_kept(
    client, answer_url, django_capture_on_commit_callbacks, case
):
    name, content_type, content, message = REFUSED[case]
    response = post_file(
        client,
        answer_url,
        django_capture_on_commit_callbacks,
        SimpleUploadedFile(name, content, content_type),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert message in page and 'href="#id_upload"' in page
    # What was typed is still there, and the chosen answer too.
    assert "Aptitude score: 82 (see the file)" in page
    assert 'value="Hanako Sato, HR manager"' in page
    assert re.search(r'value="disclosed"[^>]*checked|checked[^>]*value="disclosed"', page)
    assert RecipientTask.objects.get().answered_at is None
    assert not RequestFile.objects.filter(kind=RequestFile.Kind.COMPANY_FILE).exists()


@pytest.mark.parametrize(
    ("name", "content_type", "content"),
    [
        ("scores.pdf", "application/pdf", None),  # a real PDF, rendered below
        ("scores.csv", "text/csv", "項目,値\n適性スコア,82\n比較,a<b でない\n".encode()),
        ("scores.txt", "text/plain", "適性スコア: 82 < 90\n".encode()),
        ("scores.json", "application/json", b'{"score": 82, "note": "a <= b"}'),
        # Markup beyond what any browser sniffs is a PDF's own business (compressed
        # streams hold any bytes); nosniff and attachment cover it on the way out.
        ("late.pdf", "application/pdf", b"%PDF-1.4\n" + b"%" * SNIFF_BYTES + b"<html>"),
    ],
)
def test_an_honest_file_is_taken(
    client, answer_url, django_capture_on_commit_callbacks, name, content_type, content
):
    content = content if content is not None else pdf_bytes("<p>適性スコア: 82</p>")
    response = post_file(
        client,
        answer_url,
        django_capture_on_commit_callbacks,
        SimpleUploadedFile(name, content, content_type),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    stored = RequestFile.objects.get(kind=RequestFile.Kind.COMPANY_FILE)
    assert bytes(stored.content) == content and stored.content_type == content_type
