"""Dates and times are written the way each language writes them, always in Japan time:
`2026年11月22日 14:05` in Japanese, `22 Nov 2026, 14:05` in English, for 05:05 UTC, in the
pages, the emails and the PDFs (portal/formats/<language>/formats.py; templates use the
named formats, never a pattern of their own)."""

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.template import Context, Template
from django.urls import reverse
from django.utils import formats, timezone, translation

from consent.receipts import acceptance_receipt_pdf, event_receipt_pdf
from consent.services import consent_grant
from disclosure.services import request_file
from portal.models import EmailMessage
from tests.factories import (
    EmployerFactory,
    UserFactory,
    accept,
    opt_in_purposes,
    published_version,
)
from tests.factories import student_who_accepted as accepted_student
from tests.portal.test_pdfs import page_texts, write

pytestmark = pytest.mark.django_db

MOMENT = datetime(2026, 11, 22, 5, 5, tzinfo=UTC)  # 14:05 in Tokyo
DATETIME = {"ja": "2026年11月22日 14:05", "en": "22 Nov 2026, 14:05"}
DATE = {"ja": "2026年11月22日", "en": "22 Nov 2026"}
LANGUAGES = ("ja", "en")
OTHER = {"ja": "en", "en": "ja"}
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def in_page(client, url: str, language: str) -> str:
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    response = client.get(url)
    assert response.status_code == 200, response
    html = response.content.decode()
    assert f'<html lang="{language}"' in html
    return html


# --- The formats -------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_language_has_its_date_and_time_formats_in_japan_time(language):
    with translation.override(language):
        local = timezone.localtime(MOMENT)
        assert str(local.tzinfo) == "Asia/Tokyo"
        assert formats.date_format(local, "DATETIME_FORMAT") == DATETIME[language]
        assert formats.date_format(local, "DATE_FORMAT") == DATE[language]
        # A template's {{ value|date:"DATETIME_FORMAT" }} and a bare {{ value }} agree.
        rendered = Template('{{ at|date:"DATETIME_FORMAT" }}|{{ at }}').render(
            Context({"at": MOMENT})
        )
        assert rendered == f"{DATETIME[language]}|{DATETIME[language]}"


def test_no_template_formats_a_date_with_a_pattern_of_its_own():
    """`|date:"Y/m/d"` would show the same text in both languages: only the named formats,
    and the machine-readable ones (c: ISO 8601 in <time datetime>, T: the zone's name)."""
    allowed = {"DATETIME_FORMAT", "SHORT_DATETIME_FORMAT", "DATE_FORMAT", "SHORT_DATE_FORMAT"}
    allowed |= {"TIME_FORMAT", "YEAR_MONTH_FORMAT", "c", "T"}
    found = []
    for path in TEMPLATES.rglob("*"):
        if path.suffix not in (".html", ".txt"):
            continue
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"\|\s*(date|time)\s*:\s*(['\"])(.*?)\2", text):
            if match[3] not in allowed:
                found.append(f"{path.relative_to(TEMPLATES)}: {match[0]}")
        found += [
            f"{path.relative_to(TEMPLATES)}: {m[0]}"
            for m in re.finditer(r"\{%\s*now\b.*?%\}", text)
        ]
    assert not found, "use a named format (DATETIME_FORMAT, DATE_FORMAT...):\n" + "\n".join(found)


# --- Pages -------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_my_privacy_policies_shows_when_i_accepted_in_my_language(client, language):
    student = UserFactory()
    accept(student, published_version(), at=MOMENT)
    client.force_login(student)

    html = in_page(client, reverse("consent:policy_list"), language)

    assert DATETIME[language] in html
    assert DATETIME[OTHER[language]] not in html


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_request_page_shows_when_it_was_filed_in_my_language(client, language):
    student, _version = accepted_student()
    with time_machine.travel(MOMENT, tick=False):
        request = request_file(student=student, kind="disclosure")
    client.force_login(student)

    html = in_page(client, reverse("disclosure:request_detail", args=[request.reference]), language)

    assert DATETIME[language] in html
    assert DATETIME[OTHER[language]] not in html


# --- Emails ------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_consent_receipt_email_gives_the_time_in_the_students_language(
    language, django_capture_on_commit_callbacks
):
    _analysis, provision = opt_in_purposes()
    student, _version = accepted_student(provision, language=language)
    with django_capture_on_commit_callbacks(execute=True), time_machine.travel(MOMENT, tick=False):
        consent_grant(student=student, employer=EmployerFactory(), purpose=provision)

    message = EmailMessage.objects.get(kind="consent_change", to=student.email)
    assert message.language == language
    for body in (message.body_text, message.body_html):
        assert DATETIME[language] in body
        assert DATETIME[OTHER[language]] not in body


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_request_received_email_gives_the_due_date_in_the_students_language(
    language, settings, django_capture_on_commit_callbacks
):
    settings.REQUEST_DUE_DAYS = 14
    student, _version = accepted_student(language=language)
    filed = MOMENT - timedelta(days=14)  # so that it is due at MOMENT
    with django_capture_on_commit_callbacks(execute=True), time_machine.travel(filed, tick=False):
        request = request_file(student=student, kind="disclosure", language=OTHER[language])

    message = EmailMessage.objects.get(kind=f"request_received:{request.reference}")
    assert message.language == language
    assert DATETIME[language] in message.body_text
    assert DATETIME[language] in message.body_html


# --- PDFs --------------------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_receipts_give_the_time_in_their_language_even_if_another_zone_is_active(
    language, tmp_path
):
    analysis, _provision = opt_in_purposes()
    student = UserFactory(language=language)
    _other, version = accepted_student(analysis)
    acceptance = accept(student, version, language=language, at=MOMENT)
    with time_machine.travel(MOMENT, tick=False):
        event = consent_grant(
            student=student, employer=EmployerFactory(), purpose=analysis, language=language
        )

    # Documents are always in Japan time, whatever zone a caller has activated.
    with timezone.override("UTC"):
        documents = [acceptance_receipt_pdf(acceptance), event_receipt_pdf(event)]

    for number, content in enumerate(documents):
        text = "".join(page_texts(write(content, tmp_path, f"{number}.pdf")))
        assert DATETIME[language] in text
        assert DATETIME[OTHER[language]] not in text
