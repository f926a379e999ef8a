"""Content-Security-Policy and the other browser headers on every kind of page, and a scan of
the served templates for anything inline that the policy would block.

The policy is what makes an injected <script> inert (tests/e2e/test_csp.py proves it in
Chromium); these tests make sure no kind of response goes out without it and that nothing of
the portal's own needs it loosened.
"""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from consent.models import PolicyAcceptance
from consent.services import consent_grant, provision_record
from disclosure.models import AnswerLink, RequestFile
from disclosure.services import recipient_task_answer, request_cancel, request_file
from portal.models import EmailMessage
from tests.factories import (
    EmployerFactory,
    StaffFactory,
    opt_in_purposes,
    student_who_accepted,
)

pytestmark = pytest.mark.django_db

EXPECTED_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'", "'report-sample'"],
    "style-src": ["'self'", "'report-sample'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
OTHER_HEADERS = {
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
TOKEN = re.compile(r"/r/([A-Za-z0-9_-]+)/")


def policy_of(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.request['PATH_INFO']}"
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        assert name not in directives, f"{name} twice in {header!r}"
        directives[name] = values
    return directives


def assert_protected(response, where: str) -> None:
    policy = policy_of(response)
    assert policy == EXPECTED_POLICY, f"{where}: {response['Content-Security-Policy']!r}"
    for name, value in OTHER_HEADERS.items():
        assert response.headers.get(name) == value, f"{where}: {name}={response.get(name)!r}"
    permissions = response.headers.get("Permissions-Policy", "")
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"):
        assert feature in permissions, f"{where}: {feature} not in {permissions!r}"
    # Passkeys and security keys (staff MFA) stay usable on the portal's own pages.
    assert "publickey-credentials-get=(self)" in permissions, where
    assert "publickey-credentials-create=(self)" in permissions, where


@pytest.fixture
def portal(client, django_capture_on_commit_callbacks, mailoutbox):
    """A student with a completed disclosure (its PDF and JSON) and an open deletion whose
    company link works, a staff member, and what each page needs to be reached."""
    analysis, provision = opt_in_purposes()
    student, _version = student_who_accepted(analysis, provision)
    employer = EmployerFactory()
    consent_grant(student=student, employer=employer, purpose=provision)
    provision_record(student=student, employer=employer, purpose=provision, data_items="score")
    with django_capture_on_commit_callbacks(execute=True):
        disclosure = request_file(student=student, kind="disclosure", language="en")
    with django_capture_on_commit_callbacks(execute=True):
        recipient_task_answer(task=disclosure.tasks.get(), answer="held_none", answered_by="Yamada")
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        deletion = request_file(student=student, kind="deletion", language="en")
    (mail,) = [m for m in mailoutbox if m.to == [employer.primary_contact.email]]
    return {
        "student": student,
        "staff": StaffFactory(),
        "employer": employer,
        "disclosure": disclosure,
        "deletion": deletion,
        "token": TOKEN.search(mail.body).group(1),
        "report_pdf": RequestFile.objects.get(request=disclosure, kind="report_pdf"),
        "acceptance": PolicyAcceptance.objects.filter(student=student).first(),
    }


def test_every_kind_of_page_carries_the_policy_and_the_headers(client, portal, settings):
    student, staff = portal["student"], portal["staff"]
    checked = []

    def check(path, status=200, **extra):
        response = client.get(path, **extra)
        assert response.status_code == status, f"{path}: {response.status_code}"
        assert_protected(response, path)
        checked.append(path)
        return response

    # Anybody.
    check(reverse("home"))
    check(reverse("account_login"))
    check(reverse("account_signup"))
    check("/no-such-page/", status=404)
    check(reverse("healthz"))
    check(reverse("api:openapi"))
    api = client.post(reverse("api:consents_check"), "{}", content_type="application/json")
    assert api.status_code == 401 and api["Content-Type"].startswith("application/json")
    assert_protected(api, "the API without a key")
    checked.append(reverse("api:consents_check"))

    # The company answer page, open.
    answer = reverse("disclosure:answer", args=[portal["token"]])
    check(answer)

    # The student.
    client.force_login(student)
    check(reverse("dashboard"))
    check(reverse("consent:policy_list"))
    check(reverse("consent:consent_list"))
    check(reverse("consent:timeline", args=[portal["employer"].pk]))
    check(reverse("disclosure:request_list"))
    check(reverse("disclosure:request_new"))
    check(reverse("disclosure:request_detail", args=[portal["disclosure"].reference]))
    receipt = portal["acceptance"].receipt_id
    check(reverse("consent:acceptance_detail", args=[receipt]))
    pdf = check(reverse("consent:receipt_pdf", args=[receipt]))
    assert pdf["Content-Type"] == "application/pdf"
    report = check(
        reverse("disclosure:file", args=[portal["disclosure"].reference, portal["report_pdf"].pk])
    )
    assert report["Content-Type"] == "application/pdf"
    receipt_json = check(reverse("consent:receipt_json", args=[receipt]))
    assert receipt_json["Content-Type"].startswith("application/json")

    # Staff.
    client.logout()
    check(reverse("admin:login"), status=302)  # handed to allauth's sign-in (MFA)
    client.force_login(staff)
    check(reverse("admin:index"))
    check(reverse("admin:disclosure_datarequest_changelist"))
    check(reverse("admin:disclosure_datarequest_change", args=[portal["deletion"].pk]))
    check(reverse("admin:portal_emailmessage_changelist"))
    check(reverse("admin:portal_employer_change", args=[portal["employer"].pk]))
    check(reverse("admin:jsi18n"))


def test_the_answer_page_carries_them_in_every_state(
    client, portal, django_capture_on_commit_callbacks, mailoutbox, settings
):
    answer = reverse("disclosure:answer", args=[portal["token"]])
    link = AnswerLink.objects.get(task__request=portal["deletion"])
    states = {}

    states["open"] = client.get(answer)
    states["with an error"] = client.post(answer, {"answered_by": "Suzuki"})
    assert b"error-summary" in states["with an error"].content
    AnswerLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(days=1))
    states["expired"] = client.get(answer)
    AnswerLink.objects.filter(pk=link.pk).update(
        expires_at=timezone.now() + timedelta(days=1), revoked_at=timezone.now()
    )
    states["revoked"] = client.get(answer)
    AnswerLink.objects.filter(pk=link.pk).update(revoked_at=None)
    states["unknown"] = client.get(reverse("disclosure:answer", args=["x" * 43]))
    with django_capture_on_commit_callbacks(execute=True):
        states["answering"] = client.post(answer, {"answer": "held_none", "answered_by": "Suzuki"})
    states["answered"] = client.get(answer)

    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        cessation = request_file(student=portal["student"], kind="cessation", language="en")
    cancelled = reverse("disclosure:answer", args=[TOKEN.search(mailoutbox[-1].body).group(1)])
    request_cancel(request=cessation, reason="withdrawn by the student")
    states["cancelled"] = client.get(cancelled)
    assert "disclosure/answer_cancelled.html" in [t.name for t in states["cancelled"].templates]

    settings.ANSWER_RATE_LIMIT_PER_MINUTE = 1
    with time_machine.travel(datetime.now(tz=UTC).replace(second=1), tick=False):
        client.get(answer)
        states["rate limited"] = client.get(answer)

    statuses = {state: response.status_code for state, response in states.items()}
    assert statuses == {
        "open": 200,
        "with an error": 200,
        "expired": 410,
        "revoked": 410,
        "unknown": 404,
        "answering": 302,
        "answered": 200,
        "cancelled": 200,
        "rate limited": 429,
    }
    for state, response in states.items():
        assert_protected(response, state)


def test_the_policy_allows_nothing_inline_nothing_evaluated_and_no_wildcard(client):
    policy = policy_of(client.get(reverse("home")))
    for directive, sources in policy.items():
        for source in sources:
            assert "unsafe" not in source, f"{directive} {source}"
            assert "*" not in source, f"{directive} {source}"
            assert source not in ("http:", "https:", "blob:", "filesystem:"), directive
            assert not source.startswith(("'nonce-", "'sha")), f"{directive} {source}"
    # Nothing that falls back to default-src is left open by leaving its directive out.
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == policy["base-uri"] == policy["frame-ancestors"] == ["'none'"]


def test_an_email_s_html_body_is_shown_to_staff_as_text_never_as_markup(client):
    message = EmailMessage.objects.create(
        to="company@example.co.jp",
        subject="A request",
        body_text="plain",
        body_html='<p style="color:red" onclick="steal()">Hi</p><script>steal()</script>',
        kind="company_request",
        language="en",
    )
    client.force_login(StaffFactory())
    response = client.get(reverse("admin:portal_emailmessage_change", args=[message.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "&lt;script&gt;steal()&lt;/script&gt;" in page
    assert "<script>steal()" not in page and 'onclick="steal()"' not in page
    assert_protected(response, "the email's admin page")


# --- the templates -------------------------------------------------------------------------
# Served as web pages: every template of the project's own, but the emails (mail clients need
# inline styles, and no browser shows them under the portal's policy) and the PDFs (rendered by
# WeasyPrint on the server, never sent as HTML).
EXEMPT = re.compile(r"(^|/)emails/|_pdf\.html$|^portal/pdf_base\.html$")
INLINE = [
    (re.compile(r"<style\b", re.I), "an inline <style>"),
    (re.compile(r"<[a-z][^>]*\sstyle\s*=", re.I | re.S), "a style= attribute"),
    (re.compile(r"<[a-z][^>]*\son[a-z]+\s*=", re.I | re.S), "an on*= handler"),
    (re.compile(r"javascript:", re.I), "a javascript: address"),
]
SCRIPT = re.compile(r"<script\b([^>]*)>", re.I)
# Data for a script, never run: allowed by any CSP (allauth's MFA pages use them).
DATA_SCRIPT = re.compile(r"""\stype\s*=\s*["']application/json["']""", re.I)


def template_dirs() -> list[Path]:
    dirs = [Path(d) for d in settings.TEMPLATES[0]["DIRS"]]
    for app in ("portal", "consent", "disclosure", "audit", "backoffice"):
        path = Path(settings.BASE_DIR) / app / "templates"
        if path.is_dir():
            dirs.append(path)
    return dirs


def inline_code(text: str) -> list[tuple[int, str]]:
    """(line, what) for each inline style, script or handler in a template's text."""
    found = []
    for pattern, what in INLINE:
        found += [(m.start(), what) for m in pattern.finditer(text)]
    for match in SCRIPT.finditer(text):
        attributes = match.group(1)
        if "src=" not in attributes.replace(" ", "") and not DATA_SCRIPT.search(attributes):
            found.append((match.start(), "an inline <script>"))
    return sorted((text.count("\n", 0, offset) + 1, what) for offset, what in found)


TEMPLATE_COMMENT = re.compile(r"{% comment %}.*?{% endcomment %}|{#.*?#}", re.S)


def template_code(text: str) -> str:
    """The template without its comments (which may name what they keep out), lines kept."""
    return TEMPLATE_COMMENT.sub(lambda m: "\n" * m.group().count("\n"), text)


def served_templates() -> list[tuple[Path, str]]:
    templates = []
    for root in template_dirs():
        for path in sorted(root.rglob("*.html")):
            name = path.relative_to(root).as_posix()
            if not EXEMPT.search(name):
                templates.append((path, name))
    return templates


def test_no_served_template_has_an_inline_script_style_or_handler():
    templates = served_templates()
    assert len(templates) > 50  # the scan looks where the templates are
    problems = [
        f"{path.relative_to(settings.BASE_DIR)}:{line}: {what}"
        for path, _name in templates
        for line, what in inline_code(template_code(path.read_text()))
    ]
    assert not problems, "inline code the Content-Security-Policy blocks:\n" + "\n".join(problems)


def test_nor_does_the_html_the_python_code_builds():
    problems = []
    for app in ("portal", "consent", "disclosure", "audit", "backoffice"):
        for path in sorted((Path(settings.BASE_DIR) / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            # (comments may name what they keep out)
            code = re.sub(r"(?m)^\s*#.*$", "", path.read_text())
            problems += [
                f"{path.relative_to(settings.BASE_DIR)}:{line}: {what}"
                for line, what in inline_code(code)
            ]
    assert not problems, "\n".join(problems)


def test_the_scan_finds_each_kind_of_inline_code_and_spares_what_is_allowed():
    text = "\n".join(
        [
            "<style>p { color: red }</style>",
            '<p style="color: red">',
            '<button type="button"\n  onclick="go()">',
            '<a href="javascript:go()">',
            "<script>go()</script>",
            # allowed: a file, a data block, a class, words that only look like it
            '<script src="/static/portal/admin.js" defer></script>',
            '<script type="application/json" id="data">{"a": 1}</script>',
            '<p class="onward">Style matters; so does online help.</p>',
        ]
    )
    assert inline_code(text) == [
        (1, "an inline <style>"),
        (2, "a style= attribute"),
        (3, "an on*= handler"),
        (5, "a javascript: address"),
        (6, "an inline <script>"),
    ]


def test_what_a_template_comment_says_is_not_code():
    text = "{% comment %}\nno <style> here\n{% endcomment %}\n{# nor <script> #}\n<p style=x>"
    assert inline_code(template_code(text)) == [(5, "a style= attribute")]


def test_the_exemptions_are_the_emails_and_the_pdfs_only():
    names = {name for _path, name in served_templates()}
    assert "disclosure/answer_head.html" in names
    assert "admin/consent/policyversion/preview.html" in names
    assert not {n for n in names if "emails/" in n or n.endswith("_pdf.html")}
    assert "portal/pdf_base.html" not in names
