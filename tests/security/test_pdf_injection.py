"""What people type reaches the four PDFs as text, and no PDF fetches anything.

A real HTTP server on loopback counts every request it gets. Each payload below (markup that
would make WeasyPrint fetch a file of the server or call that server) is put into every field
that reaches a PDF: the student's name, the company's names, a company's answer (who, the
reason, the data it disclosed, its file's name), the policy's title and text, a provision's
data items, an activity record, the student's message. The four documents are rendered in
both languages and read back with pdftotext: the server got no request, and each payload is
shown as the characters typed.

Then the fetcher itself, without the templates' escaping: raw HTML full of such references
goes through the project's render function and still fetches nothing and shows nothing of
/etc/passwd.
"""

import logging
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from consent.receipts import acceptance_receipt_pdf, event_receipt_pdf
from consent.services import consent_grant, provision_record
from disclosure.models import RecipientTask
from disclosure.reports import certificate_pdf, disclosure_report_files
from disclosure.services import recipient_task_answer, request_file
from portal.models import ActivityRecord
from portal.shared.pdf import pdf_bytes, pdf_url_fetcher, static_file_for
from tests.factories import (
    EmployerFactory,
    PurposeFactory,
    UserFactory,
    accept,
    opt_in_purposes,
    published_version,
)
from tests.portal.test_pdfs import flat, page_texts, write

pytestmark = pytest.mark.django_db


class CountingServer:
    """An HTTP server on a free loopback port that answers everything and counts the hits."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the name http.server calls
                hits.append(self.path)
                body = b"<svg xmlns='http://www.w3.org/2000/svg'/>"
                self.send_response(200)
                self.send_header("Content-Type", "image/svg+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "CountingServer":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    with CountingServer() as running:
        yield running


# Every way we know for HTML to make a renderer fetch something; {at} is the server.
PAYLOADS = {
    "img-file": '<img src="file:///etc/passwd">',
    "img-http": '<img src="{at}/img">',
    "link-stylesheet": '<link rel=stylesheet href="{at}/css">',
    "style-import": "<style>@import url({at}/import);</style>",
    "style-attribute": "<p style=\"background: url('{at}/style')\">x</p>",
    "iframe": '<iframe src="{at}/iframe"></iframe>',
    "object": '<object data="{at}/object"></object>',
    "svg-image": '<svg><image href="{at}/svg"/></svg>',
    "embed": '<embed src="{at}/embed">',
    "base-href": '<base href="{at}/base/"><img src="relative.png">',
}


# Each field, and the documents it appears in (both languages unless it is one language's).
FIELDS = {
    "display_name": ("receipt", "consent-receipt", "disclosure-report", "certificate"),
    "employer_name": ("consent-receipt:ja", "disclosure-report:ja", "certificate:ja"),
    "employer_name_en": ("consent-receipt:en", "disclosure-report:en", "certificate:en"),
    "policy_title": ("receipt", "disclosure-report"),
    "policy_body": ("receipt",),
    "data_items": ("disclosure-report",),
    "activity_detail": ("disclosure-report",),
    "request_message": ("disclosure-report",),
    "answered_by": ("disclosure-report", "certificate"),
    "reason": ("disclosure-report", "certificate"),
    "disclosed_text": ("disclosure-report", "certificate"),
    "file_name": ("disclosure-report", "certificate"),
}
DOCUMENTS = ("receipt", "consent-receipt", "disclosure-report", "certificate")
LANGUAGES = ("ja", "en")


def shown_in(field: str, document: str, language: str) -> bool:
    places = FIELDS[field]
    return document in places or f"{document}:{language}" in places


def tagged(field: str, payload: str) -> str:
    # A tag per field, so that finding the text proves it came from that field.
    return f"[{field}] {payload}"


def documents_with(payload: str, language: str, capture) -> dict[str, bytes]:
    """A student, two companies and a policy with `payload` in every field of FIELDS, and
    the four documents about them in `language`."""
    value = {field: tagged(field, payload) for field in FIELDS}
    analysis, provision = opt_in_purposes()
    version = published_version(
        purposes=[PurposeFactory(code="account"), analysis, provision],
        **{f"title_{language}": value["policy_title"], f"body_{language}": value["policy_body"]},
    )
    student = UserFactory(display_name=value["display_name"], language=language)
    acceptance = accept(student, version, language=language)
    disclosing, refusing = (
        EmployerFactory(name=value["employer_name"], name_en=value["employer_name_en"])
        for _ in range(2)
    )
    events = [
        consent_grant(student=student, employer=company, purpose=provision, language=language)
        for company in (disclosing, refusing)
    ]
    for company in (disclosing, refusing):
        provision_record(
            student=student, employer=company, purpose=provision, data_items=value["data_items"]
        )
    ActivityRecord.objects.create(
        student=student,
        employer=disclosing,
        kind=ActivityRecord.Kind.JOB_VIEW,
        detail=value["activity_detail"],
        occurred_at=timezone.now() - timedelta(days=1),
    )
    with capture(execute=True):
        first = request_file(
            student=student,
            kind="disclosure",
            delivery_format="pdf",
            message=value["request_message"],
            language=language,
        )
    with capture(execute=True):
        for task in RecipientTask.objects.filter(request=first).select_related("employer"):
            if task.employer == disclosing:
                recipient_task_answer(
                    task=task,
                    answer="disclosed",
                    answered_by=value["answered_by"],
                    statement=value["disclosed_text"],
                    file=(f"{value['file_name']}.txt", "text/plain", b"score: 82"),
                )
            else:
                recipient_task_answer(
                    task=task,
                    answer="refused",
                    answered_by=value["answered_by"],
                    statement=value["reason"],
                )
    certificate, _name = certificate_pdf(request_id=first.pk)
    # A second request's report tells of the first one and every company's answer to it.
    with capture(execute=True):
        second = request_file(
            student=student, kind="disclosure", delivery_format="pdf", language=language
        )
    # With the PDF comes the CSV of the activity records.
    [(_kind, _file, _type, report), _csv] = disclosure_report_files(request_id=second.pk)
    return {
        "receipt": acceptance_receipt_pdf(acceptance),
        "consent-receipt": event_receipt_pdf(events[0]),
        "disclosure-report": report,
        "certificate": certificate,
    }


# Ten payloads, two languages, four PDFs each: a minute of WeasyPrint per pass. What is
# checked is the renderer and the fetcher, whose input does not depend on the database.
@pytest.mark.same_on_every_database
@pytest.mark.parametrize("name", PAYLOADS)
def test_nothing_typed_into_any_field_makes_a_pdf_fetch_anything_and_it_shows_as_text(
    name, server, django_capture_on_commit_callbacks, tmp_path
):
    payload = PAYLOADS[name].format(at=f"http://127.0.0.1:{server.port}")
    tried = set()
    for language in LANGUAGES:
        documents = documents_with(payload, language, django_capture_on_commit_callbacks)
        for document, content in documents.items():
            pdf = write(content, tmp_path, f"{language}-{document}.pdf")
            text = flat("".join(page_texts(pdf)))
            assert "root:" not in text  # nothing of /etc/passwd
            for field in FIELDS:
                if shown_in(field, document, language):
                    tried.add(field)
                    wanted = flat(tagged(field, payload))
                    assert wanted in text, f"{field} in the {document} ({language}): {payload}"
    assert server.hits == [], f"a PDF fetched {server.hits}"
    # The payload went through every field: 12 fields × 10 payloads = 120 tried in all.
    assert tried == set(FIELDS)


RAW_REFERENCES = [
    '<img src="file:///etc/passwd">',
    '<img src="/etc/passwd">',
    '<img src="../../../../etc/passwd">',
    '<link rel="stylesheet" href="file:///etc/passwd">',
    '<img src="{at}/img">',
    '<img src="//127.0.0.1:{port}/scheme-relative">',
    '<link rel="stylesheet" href="{at}/css">',
    "<style>@import url({at}/import);</style>",
    "<style>@font-face {{ font-family: x; src: url({at}/font) }} p {{ font-family: x }}</style>",
    "<p style=\"background: url('{at}/style')\">x</p>",
    '<iframe src="{at}/iframe"></iframe>',
    '<object data="{at}/object"></object>',
    '<embed src="{at}/embed">',
    '<svg xmlns="http://www.w3.org/2000/svg"><image href="{at}/svg" width="9" height="9"/></svg>',
    '<img src="data:image/svg+xml,<svg xmlns=%22http://www.w3.org/2000/svg%22>'
    '<image href=%22{at}/data-svg%22/></svg>">',
    '<img src="ftp://127.0.0.1:{port}/ftp">',
    '<img src="portal-static:../portal/settings.py">',
    '<img src="portal-static:portal/../../portal/settings.py">',
    '<img src="portal-static:/etc/passwd">',
    '<img src="portal-static:portal%2F..%2F..%2Fportal%2Fsettings.py">',
    '<link rel="attachment" href="file:///etc/passwd">',
]


def test_the_fetcher_refuses_every_url_but_our_static_files_even_in_raw_html(
    server, tmp_path, caplog
):
    at = f"http://127.0.0.1:{server.port}"
    body = "".join(ref.format(at=at, port=server.port) for ref in RAW_REFERENCES)
    html = (
        '<!DOCTYPE html><html><head><link rel="stylesheet" href="portal-static:portal/pdf.css">'
        f"</head><body><p>RAW REFERENCES</p>{body}</body></html>"
    )
    with caplog.at_level(logging.WARNING, logger="portal.shared.pdf"):
        content = pdf_bytes(html)
    pdf = write(content, tmp_path)
    text = "".join(page_texts(pdf))
    assert "RAW REFERENCES" in text
    assert "root:" not in text and "/bin/" not in text
    assert server.hits == [], f"the renderer fetched {server.hits}"
    refused = [r.getMessage() for r in caplog.records if r.name == "portal.shared.pdf"]
    assert refused, "no refusal was logged"
    assert all(
        r.levelno == logging.WARNING for r in caplog.records if r.name == "portal.shared.pdf"
    )
    for url in ("file:///etc/passwd", f"{at}/img", f"{at}/css", f"{at}/font"):
        assert any(url in message for message in refused), f"{url} was not refused: {refused}"
    # The stylesheet was fetched, not refused: the portal's own static file.
    assert not any("pdf.css" in message for message in refused)


@pytest.mark.parametrize(
    "url",
    [
        "portal-static:../portal/settings.py",
        "portal-static:portal/../../portal/settings.py",
        "portal-static:./portal/pdf.css",
        "portal-static:/etc/passwd",
        "portal-static://etc/passwd",
        "portal-static:portal%2Fpdf.css",
        "portal-static:portal\\pdf.css",
        "portal-static:portal/pdf.css?x=1",
        "portal-static:portal/",
        "portal-static:portal/link-out.css",
        "file:///etc/passwd",
        "http://127.0.0.1/",
        "data:text/css,p{}",
        "portal/pdf.css",
    ],
)
def test_a_static_url_that_leaves_the_static_folder_names_no_file(url, settings, tmp_path):
    static = tmp_path / "static"
    (static / "portal").mkdir(parents=True)
    (static / "portal" / "pdf.css").write_text("p {}")
    secret = tmp_path / "secret.css"
    secret.write_text("secret")
    # A symlink inside the folder pointing out of it is refused like "..".
    (static / "portal" / "link-out.css").symlink_to(secret)
    settings.STATICFILES_DIRS = [static]
    assert static_file_for(url) is None
    assert static_file_for("portal-static:portal/pdf.css") == (static / "portal" / "pdf.css")


def test_the_fetcher_serves_the_stylesheet_with_its_type():
    response = pdf_url_fetcher()("portal-static:portal/pdf.css")
    try:
        assert response.content_type == "text/css"
        assert response.read() == Path(settings.BASE_DIR, "static/portal/pdf.css").read_bytes()
    finally:
        response.close()
