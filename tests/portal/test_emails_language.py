"""Every email is in its recipient's language: a company's in its primary privacy contact's,
a student's in the language of their account, whatever language the page was in when the
action that sends it happened (a student on a Japanese page, a clerk answering in English)."""

import re

import pytest
from django.utils import translation

from consent.models import ConsentEvent
from consent.services import consent_grant, provision_record
from disclosure.models import DataRequest
from disclosure.services import recipient_task_answer, request_file
from portal.models import EmailMessage
from tests.factories import EmployerFactory, opt_in_purposes, student_who_accepted

pytestmark = pytest.mark.django_db

JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
OTHER = {"ja": "en", "en": "ja"}


def translated(language: str, msgid: str, **values) -> str:
    with translation.override(language):
        return translation.gettext(msgid) % values


def kind_label(kind: str, language: str) -> str:
    with translation.override(language):
        return str(DataRequest.Kind(kind).label)


def assert_in_language(message: EmailMessage, language: str, *, subject: str, greeting: str):
    assert message.language == language
    assert message.subject == subject
    assert greeting in message.body_text
    assert greeting in message.body_html
    if language == "en":
        # Names and data are ASCII in these tests: any Japanese would be an untranslated
        # word or a label in the wrong language.
        assert not JAPANESE.search(message.subject + message.body_text), message.body_text
    else:
        assert JAPANESE.search(message.subject)


@pytest.fixture
def provision():
    return opt_in_purposes()[1]


def student_whose_data_went_to(employer, provision, **student):
    student, _version = student_who_accepted(provision, **student)
    consent_grant(student=student, employer=employer, purpose=provision)
    provision_record(student=student, employer=employer, purpose=provision, data_items="score")
    return student


@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_company_gets_the_request_in_its_primary_contacts_language(
    language, provision, django_capture_on_commit_callbacks
):
    employer = EmployerFactory(name_en="Kita Trading")
    contact = employer.contacts.get(is_primary=True)
    contact.name, contact.language = "HR privacy desk", language
    contact.save()
    # Another contact in the other language is copied, but does not decide the language.
    employer.contacts.create(name="Legal", email="legal@example.co.jp", language=OTHER[language])
    student = student_whose_data_went_to(employer, provision, display_name="Ken Sato")

    # The student files from a page in the other language.
    with translation.override(OTHER[language]), django_capture_on_commit_callbacks(execute=True):
        request = request_file(student=student, kind="deletion", language=OTHER[language])

    message = EmailMessage.objects.get(kind=f"company_request:{request.reference}")
    assert message.to == contact.email
    assert message.cc == ["legal@example.co.jp"]
    assert_in_language(
        message,
        language,
        subject=translated(
            language,
            "Personal data request %(reference)s (%(kind)s): please answer",
            reference=request.reference,
            kind=kind_label("deletion", language),
        ),
        greeting=translated(language, "Dear %(name)s,", name="HR privacy desk"),
    )


@pytest.mark.parametrize("language", ["ja", "en"])
def test_a_student_gets_the_request_emails_and_the_consent_receipt_in_their_language(
    language, provision, django_capture_on_commit_callbacks
):
    employer = EmployerFactory(name_en="Kita Trading", language=OTHER[language])
    student, _version = student_who_accepted(provision, display_name="Ken Sato", language=language)
    greeting = translated(language, "Dear %(name)s,", name="Ken Sato")

    # Every action happens on a page in the other language.
    with translation.override(OTHER[language]):
        with django_capture_on_commit_callbacks(execute=True):
            consent_grant(
                student=student, employer=employer, purpose=provision, language=OTHER[language]
            )
        provision_record(student=student, employer=employer, purpose=provision, data_items="x")
        with django_capture_on_commit_callbacks(execute=True):
            request = request_file(student=student, kind="deletion", language=OTHER[language])
        with django_capture_on_commit_callbacks(execute=True):
            recipient_task_answer(
                task=request.tasks.get(), answer="deleted", answered_by="Kita Trading HR"
            )

    # The grant's receipt; the withdrawal the deletion request made is receipted in the
    # request's own "received" email, one email where there were two at the same moment.
    [granted] = EmailMessage.objects.filter(kind="consent_change")
    assert granted.to == student.email
    assert_in_language(
        granted,
        language,
        subject=translated(language, "Consent receipt: turned on"),
        greeting=greeting,
    )
    received = EmailMessage.objects.get(kind=f"request_received:{request.reference}")
    assert_in_language(
        received,
        language,
        subject=translated(
            language, "We received your request %(reference)s", reference=request.reference
        ),
        greeting=greeting,
    )
    withdrawal = ConsentEvent.objects.get(student=student, action=ConsentEvent.Action.WITHDRAW)
    turned_off = translated(language, "Turned off")
    for body in (received.body_text, received.body_html):
        assert str(withdrawal.receipt_id) in body
        assert f"{turned_off}: " in body
    completed = EmailMessage.objects.get(kind=f"request_completed:{request.reference}")
    assert_in_language(
        completed,
        language,
        subject=translated(
            language, "Your request %(reference)s is complete", reference=request.reference
        ),
        greeting=greeting,
    )
    # The company, meanwhile, was written to in its own language.
    company = EmailMessage.objects.get(kind=f"company_request:{request.reference}")
    assert company.language == OTHER[language]


def test_an_english_student_reads_the_companys_english_name_in_the_answer_email(
    provision, django_capture_on_commit_callbacks
):
    """Issue 17, item 4: the subject carried the company's Japanese name where the pages
    use its English one."""
    employer = EmployerFactory(name="桜商事株式会社", name_en="Sakura Trading")
    student = student_whose_data_went_to(
        employer, provision, display_name="Ann Lee", email="ann@example.jp", language="en"
    )
    with django_capture_on_commit_callbacks(execute=True):
        filed = request_file(student=student, kind="deletion", language="en")
        recipient_task_answer(task=filed.tasks.get(), answer="held_none", answered_by="Sato")
    message = EmailMessage.objects.get(kind=f"request_answered:{filed.reference}")
    assert "Sakura Trading" in message.subject and "Sakura Trading" in message.body_html
    assert not JAPANESE.search(message.subject + message.body_text), message.subject
