"""What people type reaches emails as text and cannot add a header or a recipient.

A student's display name, a company's name (in the subject of the student's email) and its
contact's name, and a company's reason, each with markup and a CRLF followed by headers,
go through the real flow (a request, the company's email, its answer, the student's email)
to a real SMTP server on loopback. Each message arrives with only the headers and the
recipients it should have; the HTML part shows the markup as text; the subject holds the
company's name as typed, on one line.
"""

import pytest

from consent.services import consent_grant, provision_record
from disclosure.services import recipient_task_answer, request_file
from tests.factories import EmployerFactory, opt_in_purposes, student_who_accepted
from tests.smtp import html_of, text_of

pytestmark = pytest.mark.django_db

INJECTED = "\r\nBcc: evil@evil.example\r\nX-Injected: 1\r\n\r\n<p>a new body</p>"
STUDENT = f"<b>山田</b> 花子{INJECTED}"
COMPANY = f"<img src=x onerror=alert(1)>株式会社みらい{INJECTED}"
CONTACT = f"<script>alert('contact')</script>人事部{INJECTED}"
REASON = f"<script>alert('reason')</script>応じられません{INJECTED}"


def test_typed_values_reach_every_email_as_text_and_add_no_header(
    smtp_server, django_capture_on_commit_callbacks
):
    analysis, provision = opt_in_purposes()
    student, _version = student_who_accepted(
        analysis, provision, display_name=STUDENT, email="hanako@example.jp"
    )
    company = EmployerFactory(
        name=COMPANY, contact_email="privacy@mirai.example", primary__name=CONTACT
    )
    consent_grant(student=student, employer=company, purpose=provision)
    provision_record(student=student, employer=company, purpose=provision, data_items="スコア")
    with django_capture_on_commit_callbacks(execute=True):
        data_request = request_file(student=student, kind="deletion")
    with django_capture_on_commit_callbacks(execute=True):
        recipient_task_answer(
            task=data_request.tasks.get(), answer="refused", answered_by="鈴木", statement=REASON
        )

    messages = smtp_server.messages
    assert {m["To"] for m in messages} == {"hanako@example.jp", "privacy@mirai.example"}
    # The envelope too: a Bcc smuggled into a header would show here, not in the headers.
    assert set(smtp_server.recipients) == {"hanako@example.jp", "privacy@mirai.example"}
    for message in messages:
        assert message["Bcc"] is None and message["X-Injected"] is None, message.keys()
        assert message["Cc"] is None
        assert "evil.example" not in str(message["To"])
        assert "\n" not in str(message["Subject"])
        html = html_of(message)
        for tag in ("<b>", "<img", "<script", "<p>a new body"):
            assert tag not in html, (message["Subject"], tag)

    [to_company] = smtp_server.received("privacy@mirai.example")
    assert "&lt;script&gt;alert(&#x27;contact&#x27;)&lt;/script&gt;人事部" in html_of(to_company)
    assert "<script>alert('contact')</script>人事部" in text_of(to_company)

    [answered] = [
        m for m in smtp_server.received("hanako@example.jp") if "株式会社みらい" in m["Subject"]
    ]
    # The company's name as typed, its line breaks made spaces: a header, not HTML.
    assert "<img src=x onerror=alert(1)>株式会社みらい Bcc: evil@" in answered["Subject"]
    html = html_of(answered)
    assert "&lt;b&gt;山田&lt;/b&gt; 花子" in html
    assert "&lt;img src=x onerror=alert(1)&gt;株式会社みらい" in html
    assert "&lt;script&gt;alert(&#x27;reason&#x27;)&lt;/script&gt;応じられません" in html
    text = text_of(answered)
    assert "<b>山田</b> 花子" in text and "<script>alert('reason')</script>応じられません" in text
    # Every email the flow sent reached the SMTP server: received, acknowledged, answered.
    assert len(messages) >= 3
