"""The student's request pages: the form, filing with reauthentication, the list, the
request page, downloads, and who may see them."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from consent.models import Provision
from consent.services import consent_grant, consent_withdraw, provision_record
from disclosure.models import DataRequest, RecipientTask, RequestFile
from disclosure.services import (
    RequestRefused,
    recipient_task_answer,
    request_file,
    request_recipients,
)
from portal.models import ActivityRecord, Employer
from tests.factories import (
    PASSWORD,
    ActivityRecordFactory,
    EmployerFactory,
    UserFactory,
    opt_in_purposes,
    student_who_accepted,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(client, settings):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"


def make_student(companies: int = 0):
    """A student whose data went to `companies` companies (each holds a live grant)."""
    analysis, provision = opt_in_purposes()
    student, _ = student_who_accepted(analysis, provision)
    employers = []
    for i in range(companies):
        employer = EmployerFactory(name_en=f"Company {i:02d} Ltd")
        consent_grant(student=student, employer=employer, purpose=provision)
        provision_record(student=student, employer=employer, purpose=provision, data_items="score")
        employers.append(employer)
    return student, provision, employers


def reauthenticate(client, next_url=None):
    """Enter the password on allauth's page, as its form does: with `next`, allauth replays
    the POST it held back (if that POST was to `next`)."""
    data = {"password": PASSWORD}
    if next_url:
        data["next"] = next_url
    response = client.post(reverse("account_reauthenticate"), data)
    assert response.status_code == 302
    return response


def form_data(**overrides):
    data = {"kind": "deletion", "scope": "all", "delivery_format": "pdf_json", "message": ""}
    data.update(overrides)
    return data


def test_the_form_lists_each_company_and_why_before_filing(client):
    student, provision, _ = make_student()
    received = EmployerFactory(name_en="Minato Trading")
    granted_only = EmployerFactory(name_en="Kita Systems")
    withdrawn = EmployerFactory(name_en="Nishi Foods")
    EmployerFactory(name_en="Never Involved Inc")
    for employer in (received, granted_only, withdrawn):
        consent_grant(student=student, employer=employer, purpose=provision)
    for _ in range(3):
        provision_record(student=student, employer=received, purpose=provision, data_items="score")
    provision_record(student=student, employer=withdrawn, purpose=provision, data_items="score")
    consent_withdraw(student=student, employer=withdrawn, purpose=provision)
    client.force_login(student)

    response = client.get(reverse("disclosure:request_new"))

    assert response.status_code == 200
    html = response.content.decode()
    rows = {
        name: row
        for row in html.split('<tr class="recipient">')[1:]
        for name in ("Minato Trading", "Kita Systems", "Nishi Foods")
        if name in row
    }
    assert set(rows) == {"Minato Trading", "Kita Systems", "Nishi Foods"}
    assert "Never Involved Inc" not in html
    assert "Received your data 3 times, first on" in rows["Minato Trading"]
    assert "Holds your consent now" in rows["Minato Trading"]
    assert "Holds your consent now" in rows["Kita Systems"]
    assert "Received your data" not in rows["Kita Systems"]
    assert "Received your data once, on" in rows["Nishi Foods"]
    assert "Holds your consent now" not in rows["Nishi Foods"]
    assert "There is no fee." in html
    # Each kind says what happens, the portal's own part included.
    assert "keeps only the records of which company received your data" in html
    assert "for 3 years" in html
    assert "withdraws your consents at once, so no company receives your data" in html
    assert html.count('name="kind"') == 3
    assert 'value="pdf_json"' in html and 'value="pdf"' in html and 'value="json"' in html


def test_a_student_without_recipients_is_told_the_portal_still_does_its_part(client):
    student, _, _ = make_student()
    client.force_login(student)

    html = client.get(reverse("disclosure:request_new")).content.decode()

    assert "your request goes to no company" in html
    assert "a disclosure still gives you the portal's own report" in html
    assert 'name="employers"' not in html


def test_filing_a_deletion_asks_for_the_password_then_files_and_shows_the_request(
    client, django_capture_on_commit_callbacks
):
    student, _, employers = make_student(companies=2)
    ActivityRecordFactory(student=student)
    client.force_login(student)

    # A signed-in session has not reauthenticated: the POST is held while the password is asked.
    response = client.post(reverse("disclosure:request_new"), form_data(message="Please hurry."))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert not DataRequest.objects.exists()

    page = client.get(response["Location"]).content.decode()
    assert 'name="password"' in page
    assert 'name="next" value="/requests/new/"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = reauthenticate(client, reverse("disclosure:request_new"))

    filed = DataRequest.objects.get()
    assert response["Location"] == reverse("disclosure:request_detail", args=[filed.reference])
    assert (filed.student, filed.kind, filed.all_recipients) == (student, "deletion", True)
    assert filed.message == "Please hurry." and filed.language == "en"
    assert not ActivityRecord.objects.filter(student=student).exists()
    assert filed.tasks.filter(status=RecipientTask.Status.SENT).count() == 2

    html = client.get(response["Location"]).content.decode()
    assert f"Your request {filed.reference} is filed." in html
    assert "We are sending the request to 2 companies, each asked to answer by" in html
    assert "Erased 1 record of your activity" in html
    assert "Withdrew 2 consents" in html
    assert "Kept 2 records of which company received your data" in html
    assert "Articles 29 and 30" in html


def test_filing_a_deletion_sends_as_many_queries_for_1000_activity_records_as_for_3(client):
    # Django's delete() read every record and deleted them a hundred at a time (a
    # correction's link to a record made it), while the student waited: 128 queries and
    # half a second at 10,000 records.
    def filing_queries(records: int) -> int:
        student, _, _ = make_student(companies=2)
        ActivityRecord.objects.bulk_create(
            ActivityRecordFactory.build(student=student) for _ in range(records)
        )
        client.force_login(student)
        reauthenticate(client)
        with CaptureQueriesContext(connection) as queries:
            response = client.post(reverse("disclosure:request_new"), form_data())
        assert response.status_code == 302 and "/requests/R-" in response["Location"]
        assert not ActivityRecord.objects.filter(student=student).exists()
        filed = DataRequest.objects.get(student=student)
        assert filed.portal_summary["activity_records_deleted"] == records
        return len(queries)

    assert filing_queries(1000) == filing_queries(3)


def test_a_filing_asks_the_database_only_what_it_needs(client):
    # The wave's first hour is thousands of filings: each statement saved is time a student
    # does not wait. A password re-authentication is read from the session (allauth asked
    # four queries first), the student's lock is taken once, the withdrawals take no
    # savepoint, and the request's row is written once, its two first events together.
    student, provision, employers = make_student(companies=3)
    provision_record(student=student, employer=employers[0], purpose=provision, data_items="x")
    client.force_login(student)
    reauthenticate(client)

    with CaptureQueriesContext(connection) as queries:
        response = client.post(reverse("disclosure:request_new"), form_data())

    assert response.status_code == 302 and "/requests/R-" in response["Location"]
    sql = [q["sql"] for q in queries.captured_queries]
    assert not [s for s in sql if "mfa_authenticator" in s or "account_emailaddress" in s]
    # The lock's statement (FOR NO KEY UPDATE on PostgreSQL; SQLite has no row locks).
    assert sum(s.startswith('SELECT "portal_user"."id" AS "pk"') for s in sql) == 1
    assert sum(s.startswith("SAVEPOINT") for s in sql) <= 1  # the filing's own, in a test
    assert not [s for s in sql if s.startswith('UPDATE "disclosure_datarequest"')]
    assert sum(s.startswith('INSERT INTO "disclosure_requestevent"') for s in sql) == 1
    assert not [s for s in sql if '"__count"' in s]  # the kept provisions: counted already
    filed = DataRequest.objects.get(student=student)
    assert filed.portal_done_at is not None
    assert filed.portal_summary["consents_withdrawn"] == 3
    assert filed.portal_summary["kept"]["provision_records"] == 4 == student.provisions.count()
    assert [e.kind for e in filed.events.order_by("at", "pk")] == ["submitted", "portal_done"]
    assert "kept by law: 4 provision records" in filed.events.get(kind="portal_done").detail


def test_the_recipients_are_the_companies_that_received_the_data_or_hold_a_grant(
    django_assert_num_queries,
):
    student, provision, (both, provided_only) = make_student(companies=2)
    provision_record(student=student, employer=both, purpose=provision, data_items="again")
    consent_withdraw(student=student, employer=provided_only, purpose=provision)
    granted_only = EmployerFactory(name_en="Granted Only")
    consent_grant(student=student, employer=granted_only, purpose=provision)
    granted_only.is_active = False  # left the job site after the grant: still answers
    granted_only.save()
    stranger = EmployerFactory()  # received another student's data, not this one's
    other, _ = student_who_accepted(provision)
    for employer in (stranger, both):
        consent_grant(student=other, employer=employer, purpose=provision)
        provision_record(student=other, employer=employer, purpose=provision, data_items="x")

    with django_assert_num_queries(1):
        recipients = request_recipients(student=student)

    found = {r.employer.pk: r for r in recipients}
    assert set(found) == {both.pk, provided_only.pk, granted_only.pk}
    assert [r.employer.name for r in recipients] == sorted(r.employer.name for r in recipients)
    mine = Provision.objects.filter(student=student, employer=both).order_by("provided_at")
    assert found[both.pk].provisions == 2 == mine.count()
    assert found[both.pk].first_provided_at == mine.first().provided_at
    assert found[both.pk].last_provided_at == mine.last().provided_at
    assert found[both.pk].live_grant is True
    assert (found[provided_only.pk].provisions, found[provided_only.pk].live_grant) == (1, False)
    assert found[granted_only.pk].as_json() == {
        "provisions": 0,
        "first_provided_at": None,
        "last_provided_at": None,
        "live_grant": True,
    }
    # Each company whole, its fields as the ORM reads them (SQLite keeps times as text).
    for recipient in recipients:
        stored = Employer.objects.get(pk=recipient.employer.pk)
        for model_field in Employer._meta.concrete_fields:
            name = model_field.attname
            assert getattr(recipient.employer, name) == getattr(stored, name), name
            assert type(getattr(recipient.employer, name)) is type(getattr(stored, name)), name


def test_a_stale_reauthentication_is_asked_again(client, settings):
    student, _, _ = make_student(companies=1)
    client.force_login(student)
    reauthenticate(client)
    settings.ACCOUNT_REAUTHENTICATION_TIMEOUT = 0

    response = client.post(reverse("disclosure:request_new"), form_data())

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_reauthenticate"))
    assert not DataRequest.objects.exists()


def test_chosen_companies_only_and_a_tick_is_required(client):
    student, _, employers = make_student(companies=3)
    client.force_login(student)
    reauthenticate(client)

    response = client.post(reverse("disclosure:request_new"), form_data(scope="chosen"))

    assert response.status_code == 200
    assert "Tick at least one company" in response.content.decode()
    assert not DataRequest.objects.exists()

    response = client.post(
        reverse("disclosure:request_new"),
        form_data(kind="cessation", scope="chosen", employers=[employers[1].pk]),
    )

    filed = DataRequest.objects.get()
    assert response.status_code == 302
    assert not filed.all_recipients
    assert list(filed.employers.all()) == [employers[1]]
    assert list(filed.tasks.values_list("employer", flat=True)) == [employers[1].pk]


def test_a_second_identical_open_request_is_refused_with_a_link_to_the_first(client):
    student, _, _ = make_student(companies=1)
    client.force_login(student)
    reauthenticate(client)
    client.post(reverse("disclosure:request_new"), form_data(kind="disclosure"))
    first = DataRequest.objects.get()

    response = client.post(reverse("disclosure:request_new"), form_data(kind="disclosure"))

    assert response.status_code == 200
    html = response.content.decode()
    assert f"You already have the same request open ({first.reference})" in html
    assert f'<a href="{reverse("disclosure:request_detail", args=[first.reference])}">' in html
    assert DataRequest.objects.count() == 1


def test_a_request_of_the_same_companies_is_refused_and_one_of_others_or_of_all_is_not():
    student, _, (first, second) = make_student(companies=2)
    scoped = request_file(student=student, kind="cessation", employers=[second, first])

    with pytest.raises(RequestRefused) as refused:
        request_file(student=student, kind="cessation", employers=[first, second])
    assert refused.value.code == "duplicate" and refused.value.existing == scoped

    other = request_file(student=student, kind="cessation", employers=[first])
    everyone = request_file(student=student, kind="cessation")
    with pytest.raises(RequestRefused) as refused:
        request_file(student=student, kind="cessation")
    assert refused.value.existing == everyone
    assert DataRequest.objects.filter(student=student).count() == 3
    assert other.reference != scoped.reference


def test_the_request_page_shows_progress_and_each_company_s_answer(
    client, django_capture_on_commit_callbacks
):
    student, _, employers = make_student(companies=3)
    with django_capture_on_commit_callbacks(execute=True):
        filed = request_file(student=student, kind="deletion", language="en")
    tasks = {t.employer_id: t for t in filed.tasks.all()}
    with django_capture_on_commit_callbacks(execute=True):
        recipient_task_answer(
            task=tasks[employers[0].pk],
            answer="deleted",
            answered_by="Yamada Taro",
            statement="Every copy and derived score deleted.",
        )
        recipient_task_answer(
            task=tasks[employers[1].pk],
            answer="refused",
            answered_by="Sato Hanako",
            statement="Kept for an ongoing hiring dispute.",
        )
    RecipientTask.objects.filter(pk=tasks[employers[2].pk].pk).update(overdue=True)
    client.force_login(student)

    html = client.get(reverse("disclosure:request_detail", args=[filed.reference])).content.decode()

    assert "2 of 3 companies answered" in html
    assert re.search(r'<progress id="request-progress" max="3" value="2">', html)
    cards = {
        e.name_en: html.split(f'id="task-{tasks[e.pk].pk}"')[1].split("</li>")[0] for e in employers
    }
    first, second, third = (cards[e.name_en] for e in employers)
    assert "Answered: deleted" in first and "Yamada Taro" in first
    assert "Every copy and derived score deleted." in first
    assert "Answered: cannot comply" in second and "Sato Hanako" in second
    assert "Kept for an ongoing hiring dispute." in second
    assert "waiting for the company" in third and "Overdue" in third
    assert "In progress" in html
    # The timeline, newest first, in words.
    timeline = html.split('<ol class="timeline">')[1]
    assert timeline.index("The company answered") < timeline.index("Request received")
    assert "Answer: cannot comply" in timeline


def test_a_failed_email_is_shown_as_being_handled(client, django_capture_on_commit_callbacks):
    student, _, employers = make_student(companies=1)
    with django_capture_on_commit_callbacks(execute=True):
        filed = request_file(student=student, kind="cessation", language="en")
    task = filed.tasks.get()
    task.email.status = "failed"
    task.email.save(update_fields=["status"])
    client.force_login(student)

    html = client.get(reverse("disclosure:request_detail", args=[filed.reference])).content.decode()

    assert "The email could not be delivered — our staff are on it." in html


def test_the_list_shows_each_request_with_status_due_date_and_progress(
    client, django_capture_on_commit_callbacks
):
    student, _, employers = make_student(companies=2)
    with django_capture_on_commit_callbacks(execute=True):
        cessation = request_file(student=student, kind="cessation", language="en")
        deletion = request_file(student=student, kind="deletion", language="en")
    task = deletion.tasks.order_by("pk").first()
    with django_capture_on_commit_callbacks(execute=True):
        recipient_task_answer(task=task, answer="deleted", answered_by="Yamada")
    other, _, _ = make_student(companies=1)
    with django_capture_on_commit_callbacks(execute=True):
        theirs = request_file(student=other, kind="deletion", language="en")
    client.force_login(student)

    html = client.get(reverse("disclosure:request_list")).content.decode()

    assert theirs.reference not in html
    assert html.index(deletion.reference) < html.index(cessation.reference)  # newest first
    rows = html.split('<tr class="request')[1:]
    assert "1 of 2" in rows[0] and "0 of 2" in rows[1]
    assert "In progress" in rows[0]
    assert 'aria-hidden="true">◔</span>' in rows[0]  # an icon beside the words
    assert f'href="{reverse("disclosure:request_list")}" aria-current="page"' in html  # nav
    dashboard = client.get(reverse("dashboard")).content.decode()
    assert f'href="{reverse("disclosure:request_new")}"' in dashboard


def test_another_student_gets_404_for_the_page_and_the_files(
    client, django_capture_on_commit_callbacks
):
    student, _, employers = make_student(companies=1)
    with django_capture_on_commit_callbacks(execute=True):
        filed = request_file(student=student, kind="disclosure", language="en")
    with django_capture_on_commit_callbacks(execute=True):
        recipient_task_answer(
            task=filed.tasks.get(),
            answer="disclosed",
            answered_by="Yamada",
            statement="See the file.",
            file=("held.txt", "text/plain", "氏名とスコア".encode()),
        )
    files = {f.kind: f for f in RequestFile.objects.filter(request=filed)}
    assert {"report_pdf", "report_json", "company_file"} <= set(files)

    client.force_login(student)
    page = client.get(reverse("disclosure:request_detail", args=[filed.reference]))
    html = page.content.decode()
    for stored in files.values():
        assert reverse("disclosure:file", args=[filed.reference, stored.pk]) in html
    response = client.get(
        reverse("disclosure:file", args=[filed.reference, files["company_file"].pk])
    )
    assert response.status_code == 200
    # Checked as UTF-8 at upload, so served as such (no charset left to a browser's guess).
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "held.txt" in response["Content-Disposition"]
    assert response.content == "氏名とスコア".encode()
    pdf = client.get(reverse("disclosure:file", args=[filed.reference, files["report_pdf"].pk]))
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")

    client.force_login(UserFactory())
    assert (
        client.get(reverse("disclosure:request_detail", args=[filed.reference])).status_code == 404
    )
    for stored in files.values():
        url = reverse("disclosure:file", args=[filed.reference, stored.pk])
        assert client.get(url).status_code == 404

    # Nor can the owner reach a file through another of their requests' references.
    client.force_login(student)
    with django_capture_on_commit_callbacks(execute=True):
        other = request_file(student=student, kind="cessation", language="en")
    url = reverse("disclosure:file", args=[other.reference, files["report_pdf"].pk])
    assert client.get(url).status_code == 404


def test_a_disclosure_report_is_being_prepared_until_it_is_ready(client):
    student, _, _ = make_student(companies=1)
    filed = request_file(student=student, kind="disclosure", language="en")  # tasks not run
    client.force_login(student)

    html = client.get(reverse("disclosure:request_detail", args=[filed.reference])).content.decode()

    assert "Your report: being prepared." in html
    assert "is being prepared" in html


def _detail_queries(client, reference) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("disclosure:request_detail", args=[reference]))
    assert response.status_code == 200
    return len(queries)


def test_the_request_page_s_queries_do_not_grow_with_companies_or_events(
    client, django_capture_on_commit_callbacks, django_assert_max_num_queries
):
    def request_with(companies: int):
        student, _, employers = make_student(companies=companies)
        with django_capture_on_commit_callbacks(execute=True):
            filed = request_file(student=student, kind="disclosure", language="en")
        for task in list(filed.tasks.all())[: companies - 1]:
            with django_capture_on_commit_callbacks(execute=True):
                recipient_task_answer(
                    task=task,
                    answer="disclosed",
                    answered_by="Yamada",
                    file=("held.txt", "text/plain", b"data"),
                )
        return student, filed

    small_student, small = request_with(2)
    large_student, large = request_with(8)
    assert large.events.count() > small.events.count() + 10

    client.force_login(small_student)
    small_count = _detail_queries(client, small.reference)
    client.force_login(large_student)
    large_count = _detail_queries(client, large.reference)
    assert large_count == small_count
    with django_assert_max_num_queries(10):
        client.get(reverse("disclosure:request_detail", args=[large.reference]))
