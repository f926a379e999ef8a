"""Employers and their privacy contacts (issue 5, "Employers and contacts"): the corporate
number's check digit, the admin with its contacts inline, messages to the primary contact
with the others copied, a company nobody can be written to, and the question a change of
contact raises while requests wait for the company's answer."""

import re
from io import StringIO
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import translation
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext

from audit.models import AuditEntry
from consent.models import StopUseNotice
from consent.services import (
    ConsentRefused,
    consent_grant,
    consent_withdraw_all,
    provision_record,
)
from disclosure.models import AnswerLink, DataRequest, RecipientTask, RequestEvent, token_hash
from disclosure.services import (
    CONTACT_CHANGED,
    employer_tasks_resend,
    recipient_task_answer,
    recipient_task_resend,
    request_file,
)
from portal.models import EmailMessage, Employer, PrivacyContact, validate_corporate_number
from tests.factories import (
    EmployerFactory,
    PrivacyContactFactory,
    StaffFactory,
    opt_in_purposes,
    student_who_accepted,
)
from tests.smtp import text_of

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r"/r/([A-Za-z0-9_-]{20,})/")


# --- the corporate number -------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "7000012050002",  # 国税庁 (National Tax Agency)
        "1000011000005",  # 国立国会図書館 (National Diet Library)
        "6011000101013",  # the demo data's first company
    ],
)
def test_a_valid_corporate_number_passes(number):
    validate_corporate_number(number)


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("8000012050002", "check_digit"),  # the NTA's number with another check digit
        ("1000011000006", "check_digit"),  # a changed last digit
        ("0000011000005", "check_digit"),
        ("700001205000", "format"),  # 12 digits
        ("70000120500020", "format"),  # 14 digits
        ("7000-01-205-0002", "format"),  # the admin form tidies this; the model does not
        ("７０００１２０５０００２", "format"),  # full-width digits
        ("A000012050002", "format"),
    ],
)
def test_an_invalid_corporate_number_is_refused_with_its_reason(number, code):
    with pytest.raises(ValidationError) as refused:
        validate_corporate_number(number)
    assert refused.value.code == code


# --- helpers for the admin ------------------------------------------------------------------


@pytest.fixture
def client(client):
    # Pages in English, whatever the translations say; one test checks the Japanese page.
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


@pytest.fixture
def staff():
    return StaffFactory()


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    """POST as whoever is logged in, running what is queued on commit (emails) here."""

    def post(url, data):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(url, data)

    return post


def add_url():
    return reverse("admin:portal_employer_add")


def change_url(employer):
    return reverse("admin:portal_employer_change", args=[employer.pk])


def changelist_url():
    return reverse("admin:portal_employer_changelist")


def resend_url(employer, next_url=None):
    url = reverse("admin:portal_employer_resend_links", args=[employer.pk])
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


def form_data(employer=None, *, contacts, **fields) -> dict:
    """The employer change form as the browser posts it: `contacts` are dicts (an `id` for
    an existing contact; `primary` and `delete` flags)."""
    data = {
        "name": employer.name if employer else "株式会社テスト商事",
        "name_en": employer.name_en if employer else "Test Shoji Co., Ltd.",
        "corporate_number": (employer.corporate_number if employer else "") or "",
        "is_active": "on",
        "contacts-TOTAL_FORMS": str(len(contacts)),
        "contacts-INITIAL_FORMS": str(sum(1 for c in contacts if c.get("id"))),
        "contacts-MIN_NUM_FORMS": "1",
        "contacts-MAX_NUM_FORMS": "1000",
    }
    data.update(fields)
    for i, contact in enumerate(contacts):
        data[f"contacts-{i}-id"] = contact.get("id", "")
        data[f"contacts-{i}-employer"] = employer.pk if employer else ""
        data[f"contacts-{i}-name"] = contact.get("name", "個人情報担当")
        data[f"contacts-{i}-email"] = contact["email"]
        data[f"contacts-{i}-language"] = contact.get("language", "ja")
        if contact.get("primary"):
            data[f"contacts-{i}-is_primary"] = "on"
        if contact.get("delete"):
            data[f"contacts-{i}-DELETE"] = "on"
    return {k: v for k, v in data.items() if v is not None}


def existing(employer) -> list[dict]:
    """The employer's contacts as the change form shows them, to edit before posting."""
    return [
        {
            "id": c.pk,
            "name": c.name,
            "email": c.email,
            "language": c.language,
            "primary": c.is_primary,
        }
        for c in employer.contacts.order_by("-is_primary", "pk")
    ]


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def page_errors(response) -> str:
    """Every error the re-rendered change form shows, as one string."""
    errors = [str(e) for e in response.context["errors"]]
    for formset in response.context["inline_admin_formsets"]:
        errors += [str(e) for e in formset.formset.non_form_errors()]
    return " ".join(errors)


# --- the admin: adding and changing, with the contacts inline --------------------------------


def test_staff_add_an_employer_with_two_contacts_and_the_tidied_corporate_number(
    staff_client, staff
):
    data = form_data(
        contacts=[
            {"email": "privacy@shoji.example.co.jp", "primary": True},
            {"name": "Legal", "email": "legal@shoji.example.co.jp", "language": "en"},
        ],
        corporate_number="７０００-０１-２０５-０００２",  # as printed: full width, hyphens
    )

    response = staff_client.post(add_url(), data)

    assert response.status_code == 302, page_errors(response)
    employer = Employer.objects.get(name="株式会社テスト商事")
    assert employer.corporate_number == "7000012050002"
    assert employer.primary_contact.email == "privacy@shoji.example.co.jp"
    assert employer.cc_emails == ["legal@shoji.example.co.jp"]
    [entry] = AuditEntry.objects.filter(target_type="portal.employer", target_id=str(employer.pk))
    assert entry.action == AuditEntry.Action.ADD
    assert entry.actor == staff
    assert entry.changes["corporate_number"] == [None, "7000012050002"]
    assert entry.changes["privacycontact[new].email"] == [None, "legal@shoji.example.co.jp"]


def test_a_wrong_check_digit_re_renders_the_form_with_the_reason_and_the_input_kept(
    staff_client,
):
    data = form_data(
        contacts=[{"email": "privacy@shoji.example.co.jp", "primary": True}],
        corporate_number="8000012050002",
    )

    response = staff_client.post(add_url(), data)

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert [e.code for e in form.errors.as_data()["corporate_number"]] == ["check_digit"]
    html = response.content.decode()
    assert "check digit" in html  # the message in the page's language (Japanese once translated)
    assert 'value="8000012050002"' in html
    assert 'value="privacy@shoji.example.co.jp"' in html
    assert not Employer.objects.filter(name="株式会社テスト商事").exists()


def test_a_corporate_number_used_by_another_employer_is_refused(staff_client):
    EmployerFactory(corporate_number="7000012050002")
    data = form_data(
        contacts=[{"email": "privacy@shoji.example.co.jp", "primary": True}],
        corporate_number="7000012050002",
    )

    response = staff_client.post(add_url(), data)

    assert response.status_code == 200
    assert "corporate_number" in response.context["adminform"].form.errors


@pytest.mark.parametrize(
    ("contacts", "error"),
    [
        (
            [
                {"email": "a@shoji.example.co.jp", "primary": True},
                {"email": "b@shoji.example.co.jp", "primary": True},
            ],
            "Mark exactly one contact as primary (now 2)",
        ),
        (
            [{"email": "a@shoji.example.co.jp"}, {"email": "b@shoji.example.co.jp"}],
            "Mark exactly one contact as primary (now 0)",
        ),
    ],
)
def test_adding_without_exactly_one_primary_contact_is_refused_and_nothing_is_lost(
    staff_client, contacts, error
):
    data = form_data(contacts=contacts, corporate_number="7000012050002")

    response = staff_client.post(add_url(), data)

    assert response.status_code == 200
    assert error in page_errors(response)
    html = response.content.decode()
    for value in ("株式会社テスト商事", "7000012050002", "a@shoji.example.co.jp", "b@shoji"):
        assert value in html
    assert not Employer.objects.filter(name="株式会社テスト商事").exists()
    assert not PrivacyContact.objects.exists()
    assert not AuditEntry.objects.filter(target_type="portal.employer").exists()


def test_removing_every_contact_is_refused(staff_client):
    employer = EmployerFactory()
    contacts = [{**c, "delete": True} for c in existing(employer)]

    response = staff_client.post(change_url(employer), form_data(employer, contacts=contacts))

    assert response.status_code == 200
    assert "Add at least one privacy contact" in page_errors(response)
    assert employer.contacts.count() == 1


def test_unticking_the_only_primary_is_refused_on_change(staff_client):
    employer = EmployerFactory()
    PrivacyContactFactory(employer=employer, email="second@example.co.jp")
    contacts = [{**c, "primary": False} for c in existing(employer)]

    response = staff_client.post(change_url(employer), form_data(employer, contacts=contacts))

    assert response.status_code == 200
    assert "Mark exactly one contact as primary (now 0)" in page_errors(response)
    assert employer.contacts.filter(is_primary=True).count() == 1


def test_the_primary_moves_to_another_contact_in_one_save(staff_client, staff):
    employer = EmployerFactory(contact_email="old@example.co.jp")
    second = PrivacyContactFactory(employer=employer, email="second@example.co.jp", language="en")
    contacts = existing(employer)
    contacts[0]["primary"], contacts[1]["primary"] = False, True
    contacts.reverse()  # the new primary saved first: the old one must step down before

    response = staff_client.post(change_url(employer), form_data(employer, contacts=contacts))

    assert response.status_code == 302, page_errors(response)
    assert response.url == changelist_url()  # no open request: no question
    employer = Employer.objects.get(pk=employer.pk)
    assert employer.primary_contact == second
    assert employer.cc_emails == ["old@example.co.jp"]
    entry = AuditEntry.objects.get(target_type="portal.employer", action="change")
    assert entry.changes[f"privacycontact[{second.pk}].is_primary"] == [False, True]


def test_a_new_contact_can_be_added_as_the_new_primary(staff_client):
    employer = EmployerFactory(contact_email="old@example.co.jp")
    contacts = [{**existing(employer)[0], "primary": False}]
    contacts.append({"email": "new@example.co.jp", "primary": True, "language": "en"})

    response = staff_client.post(change_url(employer), form_data(employer, contacts=contacts))

    assert response.status_code == 302, page_errors(response)
    employer = Employer.objects.get(pk=employer.pk)
    assert (employer.primary_contact.email, employer.primary_contact.language) == (
        "new@example.co.jp",
        "en",
    )
    assert employer.cc_emails == ["old@example.co.jp"]


def test_the_add_page_and_the_change_page_render(staff_client):
    employer = EmployerFactory()

    assert staff_client.get(add_url()).status_code == 200
    response = staff_client.get(change_url(employer))
    assert response.status_code == 200
    assert employer.primary_contact.email in response.content.decode()


# --- the admin: the list ---------------------------------------------------------------------


def test_the_list_shows_the_primary_contact_and_its_language_in_a_fixed_number_of_queries(
    staff_client, django_assert_max_num_queries
):
    companies = [EmployerFactory(language="en" if i % 2 else "ja") for i in range(12)]
    for company in companies[:6]:
        PrivacyContactFactory(employer=company)
    orphan = EmployerFactory(primary=None, name="株式会社窓口なし")

    with django_assert_max_num_queries(12):
        response = staff_client.get(changelist_url())

    assert response.status_code == 200
    html = response.content.decode()
    for company in companies:
        assert company.primary_contact.email in html
        assert company.corporate_number in html
    assert "requests to this company cannot be sent" in html
    assert orphan in response.context["cl"].result_list


def test_the_list_is_searched_by_name_corporate_number_and_any_contact_email(staff_client):
    target = EmployerFactory(name="株式会社さがし物", corporate_number="7000012050002")
    PrivacyContactFactory(employer=target, email="copied@sagashi.example.co.jp")
    PrivacyContactFactory(employer=target, email="second@sagashi.example.co.jp")
    EmployerFactory(name="株式会社ほか")

    # "@sagashi" is in two of its contacts' addresses: the company is listed once.
    for term in ("さがし物", "7000012050002", "copied@sagashi", "@sagashi"):
        response = staff_client.get(changelist_url(), {"q": term})
        assert list(response.context["cl"].result_list) == [target], term


def test_the_list_filters_by_the_primary_contacts_language_and_by_active(staff_client):
    english = EmployerFactory(language="en")
    japanese = EmployerFactory(language="ja")
    PrivacyContactFactory(employer=japanese, language="en")  # copied, not primary
    inactive = EmployerFactory(is_active=False)

    en = staff_client.get(changelist_url(), {"language": "en"})
    assert list(en.context["cl"].result_list) == [english]
    active = staff_client.get(changelist_url(), {"is_active__exact": "0"})
    assert list(active.context["cl"].result_list) == [inactive]


def test_contacts_are_listed_but_changed_only_on_their_employers_page(staff_client):
    contact = EmployerFactory().primary_contact
    list_url = reverse("admin:portal_privacycontact_changelist")
    contact_url = reverse("admin:portal_privacycontact_change", args=[contact.pk])

    listed = staff_client.get(list_url, {"q": contact.email})
    assert list(listed.context["cl"].result_list) == [contact]
    assert staff_client.post(contact_url, {"email": "x@example.jp"}).status_code == 403
    assert staff_client.get(reverse("admin:portal_privacycontact_add")).status_code == 403
    contact.refresh_from_db()
    assert contact.email != "x@example.jp"


# --- messages to a company -------------------------------------------------------------------


@pytest.fixture
def purposes():
    return opt_in_purposes()


@pytest.fixture
def make_filed(purposes, django_capture_on_commit_callbacks):
    """A student whose data went to the given companies files a deletion request."""

    def make(*employers, kind=DataRequest.Kind.DELETION, email="hanako@example.jp"):
        _analysis, provision = purposes
        student, _version = student_who_accepted(*purposes, email=email)
        for employer in employers:
            consent_grant(student=student, employer=employer, purpose=provision)
            provision_record(
                student=student, employer=employer, purpose=provision, data_items="score"
            )
        with django_capture_on_commit_callbacks(execute=True):
            data_request = request_file(student=student, kind=kind)
        tasks = {t.employer_id: t for t in data_request.tasks.select_related("email")}
        return SimpleNamespace(request=data_request, student=student, tasks=tasks)

    return make


def test_a_request_goes_to_the_primary_contact_in_its_language_with_the_others_in_cc(
    smtp_server, make_filed
):
    employer = EmployerFactory(contact_email="dpo@example.com", language="en")
    PrivacyContactFactory(employer=employer, email="jinji@example.co.jp", language="ja")
    PrivacyContactFactory(employer=employer, email="legal@example.co.jp", language="ja")

    filed = make_filed(employer)

    [message] = smtp_server.received("dpo@example.com")
    assert message["Cc"] == "jinji@example.co.jp, legal@example.co.jp"
    assert "Please open the link below" in text_of(message)  # the primary's English
    assert text_of(message).startswith("Dear 人事部 個人情報担当,")
    row = filed.tasks[employer.pk].email
    assert (row.to, row.cc, row.language) == (
        "dpo@example.com",
        ["jinji@example.co.jp", "legal@example.co.jp"],
        "en",
    )
    # One message to the company: the copied contacts get no message of their own.
    assert smtp_server.received("jinji@example.co.jp") == []
    assert smtp_server.received("legal@example.co.jp") == []


def test_a_stop_use_notice_goes_to_the_primary_contact_with_the_others_in_cc(
    purposes, mailoutbox, django_capture_on_commit_callbacks
):
    _analysis, provision = purposes
    student, _ = student_who_accepted(*purposes)
    employer = EmployerFactory(contact_email="dpo@example.com", language="en")
    PrivacyContactFactory(employer=employer, email="jinji@example.co.jp")
    consent_grant(student=student, employer=employer, purpose=provision)
    provision_record(student=student, employer=employer, purpose=provision, data_items="score")
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        consent_withdraw_all(student=student)

    [notice] = [m for m in mailoutbox if m.to == ["dpo@example.com"]]
    assert notice.cc == ["jinji@example.co.jp"]
    assert "stop" in notice.subject.lower()


def test_a_company_with_no_primary_contact_fails_visibly_and_the_others_are_sent(
    make_filed, mailoutbox, staff
):
    nobody = EmployerFactory(primary=None, name="株式会社窓口なし")
    PrivacyContactFactory(employer=nobody, email="someone@example.co.jp")  # not primary
    reachable = EmployerFactory()

    with translation.override("en"):  # the staff's reason, read here in English
        filed = make_filed(nobody, reachable)

    failed = filed.tasks[nobody.pk]
    assert failed.status == RecipientTask.Status.SENT
    assert failed.failed  # as an email the company's server refused: staff see it
    assert failed.email.to == ""
    assert "no primary privacy contact" in failed.email.last_error
    assert "株式会社窓口なし" in failed.email.last_error
    [event] = RequestEvent.objects.filter(task=failed)
    assert event.kind == RequestEvent.Kind.SEND_FAILED
    assert "no primary privacy contact" in event.detail
    assert not [m for m in mailoutbox if "someone@example.co.jp" in m.to + m.cc]
    assert not filed.tasks[reachable.pk].failed
    assert [m.to for m in mailoutbox if m.to != [filed.student.email]] == [
        [reachable.primary_contact.email]
    ]
    # Staff asked to resend are told why not, and nothing changes.
    with translation.override("en"), pytest.raises(ValidationError, match="no primary"):
        recipient_task_resend(task=failed, by=staff, reason="try again")
    assert AnswerLink.objects.filter(task=failed, revoked_at=None).count() == 1


def test_a_failed_task_for_want_of_a_contact_is_in_the_staffs_failed_list(make_filed, staff_client):
    nobody = EmployerFactory(primary=None)
    filed = make_filed(nobody)

    response = staff_client.get(
        reverse("admin:disclosure_recipienttask_changelist"), {"failed": "yes"}
    )

    assert list(response.context["cl"].result_list) == [filed.tasks[nobody.pk]]


def test_a_stop_use_notice_to_a_company_with_no_primary_contact_is_stored_failed(
    purposes, mailoutbox, django_capture_on_commit_callbacks
):
    _analysis, provision = purposes
    student, _ = student_who_accepted(*purposes)
    employer = EmployerFactory(primary=None)
    consent_grant(student=student, employer=employer, purpose=provision)
    provision_record(student=student, employer=employer, purpose=provision, data_items="score")

    with django_capture_on_commit_callbacks(execute=True):
        consent_withdraw_all(student=student)

    notice = StopUseNotice.objects.get(employer=employer)
    assert notice.email.status == EmailMessage.Status.FAILED
    assert "no primary privacy contact" in notice.email.last_error


def test_an_inactive_company_is_still_asked_about_data_it_received_but_gets_no_new_grant(
    purposes, make_filed, mailoutbox
):
    _analysis, provision = purposes
    employer = EmployerFactory()
    student, _ = student_who_accepted(*purposes, email="other@example.jp")
    filed = make_filed(employer)
    Employer.objects.filter(pk=employer.pk).update(is_active=False)
    employer.refresh_from_db()

    with pytest.raises(ConsentRefused) as refused:
        consent_grant(student=student, employer=employer, purpose=provision)
    assert refused.value.code == "employer_inactive"
    assert filed.tasks[employer.pk].status == RecipientTask.Status.SENT
    assert [m.to for m in mailoutbox].count([employer.primary_contact.email]) == 1


def test_the_answer_page_speaks_the_primary_contacts_language(make_filed, mailoutbox, client):
    employer = EmployerFactory(language="ja", name="株式会社エイ", name_en="A Corporation")
    PrivacyContactFactory(employer=employer, language="en")  # copied: not whom we wrote to
    make_filed(employer)
    [message] = [m for m in mailoutbox if m.to == [employer.primary_contact.email]]
    [token] = set(TOKEN.findall(message.body))

    response = client.get(reverse("disclosure:answer", args=[token]))  # the browser asks "en"

    assert response.status_code == 200
    assert response.headers["Content-Language"] == "ja"
    assert "株式会社エイ" in response.content.decode()


# --- a change of contact while requests are open ---------------------------------------------


@pytest.fixture
def waiting(make_filed, mailoutbox):
    """A company with two open requests (one of each of two students) waiting for its
    answer, a third already answered, and another company's request."""
    company = EmployerFactory(contact_email="old@company.example.co.jp", name="株式会社まち")
    copied = PrivacyContactFactory(employer=company, email="copied@company.example.co.jp")
    other = EmployerFactory(contact_email="other@elsewhere.example.co.jp")
    first = make_filed(company, other, email="first@example.jp")
    second = make_filed(company, kind=DataRequest.Kind.CESSATION, email="second@example.jp")
    done = make_filed(company, email="done@example.jp")
    recipient_task_answer(task=done.tasks[company.pk], answer="deleted", answered_by="佐藤")
    mailoutbox.clear()
    return SimpleNamespace(
        company=company,
        copied=copied,
        other=other,
        open_tasks=[first.tasks[company.pk], second.tasks[company.pk]],
        other_task=first.tasks[other.pk],
        done_task=done.tasks[company.pk],
    )


def change_primary_email(client, company, email, **extra):
    contacts = existing(company)
    contacts[0]["email"] = email
    return client.post(change_url(company), form_data(company, contacts=contacts, **extra))


def live_links(task) -> list[AnswerLink]:
    return list(AnswerLink.objects.filter(task=task, revoked_at=None))


def test_changing_the_primary_email_asks_whether_to_resend_the_open_requests(
    staff_client, waiting, mailoutbox, django_assert_max_num_queries
):
    response = change_primary_email(staff_client, waiting.company, "new@company.example.co.jp")

    assert response.status_code == 302
    assert response.url == resend_url(waiting.company, changelist_url())
    assert not mailoutbox  # nothing is sent before staff answer
    with django_assert_max_num_queries(12):
        page = staff_client.get(response.url)
    assert page.status_code == 200
    html = page.content.decode()
    assert (
        "2 open requests are waiting for an answer from this company. Resend their answer "
        "links to the new contact new@company.example.co.jp?"
    ) in html
    for task in waiting.open_tasks:
        assert task.request.reference in html
        assert task.request.get_kind_display() in html
    assert waiting.done_task.request.reference not in html
    assert "Resend to new contact" in html
    assert f'href="{changelist_url()}"' in html  # "Not now"
    assert "old@company.example.co.jp" in html  # where the links went


def test_resending_sends_each_open_request_once_to_the_new_contact_and_revokes_the_old_links(
    staff_client, post, waiting, mailoutbox, staff
):
    old_links = {task.pk: live_links(task) for task in waiting.open_tasks}
    done_links = live_links(waiting.done_task)
    change_primary_email(staff_client, waiting.company, "new@company.example.co.jp")

    response = post(resend_url(waiting.company), {"next": changelist_url()})

    assert response.status_code == 302
    assert response.url == changelist_url()
    sent = [m for m in mailoutbox if m.to == ["new@company.example.co.jp"]]
    assert len(sent) == len(mailoutbox) == 2
    assert all(m.cc == ["copied@company.example.co.jp"] for m in sent)
    for task in waiting.open_tasks:
        [mail] = [m for m in sent if task.request.reference in m.subject]
        [link] = live_links(task)
        assert link.pk not in {old.pk for old in old_links[task.pk]}
        for old in old_links[task.pk]:
            old.refresh_from_db()
            assert old.revoked_at is not None
        [token] = set(TOKEN.findall(mail.body))
        assert link.token_sha256 == token_hash(token)
        [event] = RequestEvent.objects.filter(task=task, kind=RequestEvent.Kind.LINK_RESENT)
        assert (event.actor_user, event.detail) == (staff, CONTACT_CHANGED)
        task.refresh_from_db()
        assert task.email.to == "new@company.example.co.jp"
    assert live_links(waiting.done_task) == done_links
    assert len(live_links(waiting.other_task)) == 1
    entries = AuditEntry.objects.filter(name="disclosure.resend_answer_link").order_by("seq")
    assert [(e.target_type, e.target_id) for e in entries] == [
        ("disclosure.datarequest", str(task.request.pk))
        for task in sorted(waiting.open_tasks, key=lambda t: t.pk)
    ]
    assert all(e.action == AuditEntry.Action.ACTION and e.actor == staff for e in entries)
    assert all(e.reason == CONTACT_CHANGED for e in entries)
    assert entries[0].changes["to"] == ["old@company.example.co.jp", "new@company.example.co.jp"]

    # Confirming again (a second click, another tab) sends nothing more.
    mailoutbox.clear()
    again = post(resend_url(waiting.company), {"next": changelist_url()})
    assert again.status_code == 302
    assert not mailoutbox
    assert AuditEntry.objects.filter(name="disclosure.resend_answer_link").count() == 2


def test_not_now_changes_nothing(staff_client, waiting, mailoutbox):
    links = {task.pk: live_links(task) for task in waiting.open_tasks}
    events = RequestEvent.objects.count()
    response = change_primary_email(staff_client, waiting.company, "new@company.example.co.jp")
    staff_client.get(response.url)

    back = staff_client.get(changelist_url())  # "Not now" is a plain link back

    assert back.status_code == 200
    assert not mailoutbox
    assert {task.pk: live_links(task) for task in waiting.open_tasks} == links
    assert RequestEvent.objects.count() == events
    assert not AuditEntry.objects.filter(name="disclosure.resend_answer_link").exists()
    assert waiting.company.contacts.get(is_primary=True).email == "new@company.example.co.jp"


def test_save_and_continue_comes_back_to_the_change_page_after_the_question(staff_client, waiting):
    response = change_primary_email(
        staff_client, waiting.company, "new@company.example.co.jp", _continue="1"
    )

    assert response.url == resend_url(waiting.company, change_url(waiting.company))


def test_moving_the_primary_to_another_contact_asks_too(staff_client, waiting):
    contacts = existing(waiting.company)
    contacts[0]["primary"], contacts[1]["primary"] = False, True

    response = staff_client.post(
        change_url(waiting.company), form_data(waiting.company, contacts=contacts)
    )

    assert response.url == resend_url(waiting.company, changelist_url())
    page = staff_client.get(response.url)
    assert "to the new contact copied@company.example.co.jp?" in page.content.decode()


def test_no_question_when_nothing_waits_or_the_primary_did_not_change(
    staff_client, waiting, mailoutbox
):
    # Only the copied contact changes: the links already went to the primary.
    contacts = existing(waiting.company)
    contacts[1]["email"] = "copied-new@company.example.co.jp"
    response = staff_client.post(
        change_url(waiting.company), form_data(waiting.company, contacts=contacts)
    )
    assert response.url == changelist_url()

    # Another company has nothing open: no question either.
    idle = EmployerFactory()
    assert change_primary_email(staff_client, idle, "new@idle.example.co.jp").url == (
        changelist_url()
    )
    assert not mailoutbox


def test_a_company_with_only_answered_requests_gets_no_question(staff_client, waiting):
    for task, answer in zip(waiting.open_tasks, ["deleted", "stopped"], strict=True):
        recipient_task_answer(task=task, answer=answer, answered_by="佐藤")

    response = change_primary_email(staff_client, waiting.company, "new@company.example.co.jp")

    assert response.url == changelist_url()


def test_a_company_that_had_no_primary_is_asked_about_its_failed_requests(
    staff_client, post, make_filed, mailoutbox
):
    nobody = EmployerFactory(primary=None)
    filed = make_filed(nobody)
    task = filed.tasks[nobody.pk]
    assert task.failed
    mailoutbox.clear()
    contacts = [{"email": "found@example.co.jp", "primary": True}]

    response = staff_client.post(change_url(nobody), form_data(nobody, contacts=contacts))
    assert response.url == resend_url(nobody, changelist_url())
    post(resend_url(nobody), {})

    assert [m.to for m in mailoutbox] == [["found@example.co.jp"]]
    task.refresh_from_db()
    assert not task.failed


def test_staff_without_the_resend_permission_see_the_requests_but_cannot_resend(
    client, post, waiting, mailoutbox
):
    clerk = StaffFactory(is_superuser=False)
    clerk.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="portal",
            codename__in=["view_employer", "change_employer", "view_privacycontact"]
            + ["add_privacycontact", "change_privacycontact", "delete_privacycontact"],
        )
    )
    client.force_login(clerk)

    response = change_primary_email(client, waiting.company, "new@company.example.co.jp")
    page = client.get(response.url)

    assert page.status_code == 200
    html = page.content.decode()
    assert "You do not have the permission to resend answer links" in html
    assert "Resend to new contact" not in html
    for task in waiting.open_tasks:
        assert task.request.reference in html
    assert post(resend_url(waiting.company), {}).status_code == 403
    assert not mailoutbox
    assert not AuditEntry.objects.filter(name="disclosure.resend_answer_link").exists()


def test_the_question_page_goes_back_safely(staff_client, waiting):
    change_primary_email(staff_client, waiting.company, "new@company.example.co.jp")

    page = staff_client.get(resend_url(waiting.company, "https://evil.example.com/"))

    assert page.context["next_url"] == change_url(waiting.company)


def test_the_resend_service_refuses_a_company_with_no_primary_contact(staff):
    nobody = EmployerFactory(primary=None)

    with translation.override("en"), pytest.raises(ValidationError, match="no primary"):
        employer_tasks_resend(employer=nobody, by=staff)


# --- the migration that made the contacts ----------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migrations_copy_each_single_contact_into_a_primary_contact_and_back():
    before = [("portal", "0002_email_kind_index")]
    executor = MigrationExecutor(connection)
    leaves = executor.loader.graph.leaf_nodes()
    executor.migrate(before)
    try:
        old_apps = executor.loader.project_state(before).apps
        OldEmployer = old_apps.get_model("portal", "Employer")
        OldEmployer.objects.create(
            name="株式会社旧", privacy_contact_name="総務部", privacy_contact_email="a@old.jp"
        )
        OldEmployer.objects.create(
            name="Old K.K.",
            privacy_contact_name="Legal",
            privacy_contact_email="b@old.example.com",
            language="en",
        )

        executor = MigrationExecutor(connection)
        executor.migrate([("portal", "0004_remove_employer_single_contact")])
        new_apps = executor.loader.project_state(
            [("portal", "0004_remove_employer_single_contact")]
        ).apps
        Contact = new_apps.get_model("portal", "PrivacyContact")
        copied = sorted(
            Contact.objects.values_list("employer__name", "name", "email", "language", "is_primary")
        )
        assert copied == [
            ("Old K.K.", "Legal", "b@old.example.com", "en", True),
            ("株式会社旧", "総務部", "a@old.jp", "ja", True),
        ]

        # And back: the primary contact fills the single contact's columns again.
        executor = MigrationExecutor(connection)
        executor.migrate([("portal", "0003_employer_contacts")])
        restored = executor.loader.project_state([("portal", "0003_employer_contacts")]).apps
        assert sorted(
            restored.get_model("portal", "Employer").objects.values_list(
                "privacy_contact_email", "language"
            )
        ) == [("a@old.jp", "ja"), ("b@old.example.com", "en")]
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(leaves)


def test_the_question_page_is_in_japanese_for_japanese_staff(staff_client, waiting):
    change_primary_email(staff_client, waiting.company, "new@company.example.co.jp")

    page = staff_client.get(resend_url(waiting.company), HTTP_ACCEPT_LANGUAGE="ja")

    assert page["Content-Language"] == "ja"
    with translation.override("ja"):
        question = ngettext(
            "%(count)d open request is waiting for an answer from this company. Resend "
            "its answer link to the new contact %(email)s?",
            "%(count)d open requests are waiting for an answer from this company. Resend "
            "their answer links to the new contact %(email)s?",
            2,
        ) % {"count": 2, "email": "new@company.example.co.jp"}
        button = gettext("Resend to new contact")
    html = page.content.decode()
    assert question in html
    assert button in html


def test_every_demo_employer_has_a_valid_corporate_number_and_one_primary_contact():
    call_command("seed_demo", stdout=StringIO())

    employers = list(Employer.objects.prefetch_related("contacts"))
    assert len(employers) >= 10
    for employer in employers:
        validate_corporate_number(employer.corporate_number)
        assert 1 <= len(employer.contact_list) <= 2
        assert sum(c.is_primary for c in employer.contact_list) == 1
    assert any(len(e.contact_list) == 2 for e in employers)
    assert {e.primary_contact.language for e in employers} == {"ja", "en"}
