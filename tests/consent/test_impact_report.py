"""The impact report: who relies on a purpose without a policy listing it, who never accepted
one listing it, and the request to review the current version."""

import csv
import io
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from consent import reports
from consent.models import Consent, ConsentEvent, ConsentScreen
from consent.reports import (
    NEVER_ACCEPTED,
    UNLISTED,
    impact_section,
    never_accepted,
    review_request_send,
    with_impact_details,
)
from consent.services import consent_grant, provision_record
from portal.models import EmailMessage
from tests.factories import (
    EmployerFactory,
    PurposeFactory,
    StaffFactory,
    UserFactory,
    accept,
    published_version,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    """Version 1 lists only `account`; version 2 (in force) adds behaviour analysis."""
    account = PurposeFactory(code="account")
    analysis = PurposeFactory(
        code="behaviour_analysis",
        requires_opt_in=True,
        title_ja="閲覧履歴の分析",
        title_en="Analysing your browsing",
    )
    old = published_version(label="2019.02", purposes=[account])
    new = published_version(label="2019.03", purposes=[account, analysis])
    return {"analysis": analysis, "account": account, "old": old, "new": new}


def _grant_around_the_services(*, student, employer, purpose, version):
    """The state the services refuse to make: a live grant the accepted version lacks."""
    event = ConsentEvent.objects.create(
        student=student,
        employer=employer,
        purpose=purpose,
        action=ConsentEvent.Action.GRANT,
        screen=ConsentScreen.CONSENT_PAGE,
        policy_version=version,
        language="ja",
        actor=ConsentEvent.Actor.STUDENT,
    )
    Consent.objects.create(
        student=student, employer=employer, purpose=purpose, granted=True, event=event
    )


@pytest.fixture
def students(world):
    analysis, old, new = world["analysis"], world["old"], world["new"]
    old_only = UserFactory(email="old-only@example.jp", language="en")
    accept(old_only, old)
    nothing = UserFactory(email="nothing@example.jp", language="ja")
    up_to_date = UserFactory(email="up-to-date@example.jp")
    accept(up_to_date, old)
    accept(up_to_date, new)
    granted = UserFactory(email="granted@example.jp")
    accept(granted, new)
    employer = EmployerFactory()
    consent_grant(student=granted, employer=employer, purpose=analysis)
    provision_record(student=granted, employer=employer, purpose=analysis, data_items="score")
    # Accepting an older version later does not make it the newest: effective date decides.
    accept(granted, old)
    inconsistent = UserFactory(email="inconsistent@example.jp")
    accept(inconsistent, old)
    for company in (EmployerFactory(), EmployerFactory()):
        _grant_around_the_services(
            student=inconsistent, employer=company, purpose=analysis, version=old
        )
    StaffFactory(email="staff@example.jp", is_superuser=False)
    UserFactory(email="left@example.jp", is_active=False)
    return {
        "old_only": old_only,
        "nothing": nothing,
        "up_to_date": up_to_date,
        "granted": granted,
        "inconsistent": inconsistent,
    }


def _with_details(purpose, section):
    students = list(impact_section(purpose=purpose, section=section))
    return with_impact_details(purpose=purpose, section=section, students=students)


def _emails(queryset) -> list[str]:
    return list(queryset.values_list("email", flat=True))


def _impact_url(purpose, view="impact", *args):
    return reverse(f"admin:consent_purpose_{view}", args=[purpose.pk, *args])


# --- The sections -------------------------------------------------------------------------


def test_a_live_grant_the_newest_accepted_version_does_not_list_is_reported(world, students):
    [row] = _with_details(world["analysis"], UNLISTED)
    assert row == students["inconsistent"]
    assert (row.impact.grant_count, row.impact.provision_count) == (2, 0)
    assert row.impact.newest_version_label == "2019.02"


def test_a_provision_made_before_a_version_dropped_the_purpose_is_reported():
    analysis = PurposeFactory(code="behaviour_analysis", requires_opt_in=True)
    account = PurposeFactory(code="account")
    listing = published_version(purposes=[account, analysis])
    student = UserFactory()
    accept(student, listing)
    employer = EmployerFactory()
    consent_grant(student=student, employer=employer, purpose=analysis)
    provision_record(student=student, employer=employer, purpose=analysis, data_items="score")
    provision_record(student=student, employer=employer, purpose=analysis, data_items="score")
    dropping = published_version(purposes=[account])
    accept(student, dropping)  # the grant lapses; the provisions stay on record

    [row] = _with_details(analysis, UNLISTED)

    assert row == student
    assert (row.impact.grant_count, row.impact.provision_count) == (0, 2)
    assert row.impact.newest_version_label == dropping.label
    assert list(never_accepted(purpose=analysis)) == []


def test_the_newest_version_is_judged_by_effective_date_then_time_of_acceptance():
    """Every combination of four versions, two of them in force from the same moment, against
    the definition read in Python: the newest acceptance's version lists the purpose."""
    analysis = PurposeFactory(code="behaviour_analysis", requires_opt_in=True)
    account = PurposeFactory(code="account")
    base = timezone.now() - timedelta(days=400)
    day = timedelta(days=1)
    versions = {
        name: published_version(
            label=name, purposes=purposes, effective_at=base + at * day, at=base
        )
        for name, purposes, at in (
            ("A", [account, analysis], 10),
            ("B", [account], 20),
            ("C", [account, analysis], 30),
            ("D", [account], 30),  # in force from the same moment as C
        )
    }
    employer = EmployerFactory()
    # Every set of accepted versions (none included), accepted in the order written; C and D
    # together both ways round, since the later acceptance of the two is the newest.
    orders = [
        [name for bit, name in enumerate("ABCD") if number >> bit & 1] for number in range(16)
    ]
    orders += [[*order[:-2], "D", "C"] for order in orders if order[-2:] == ["C", "D"]]
    expected = set()
    for order in orders:
        student = UserFactory(verified=False)
        accepted = {}
        for step, name in enumerate(order):
            accepted[name] = base + (40 + step) * day
            accept(student, versions[name], at=accepted[name])
        _grant_around_the_services(
            student=student, employer=employer, purpose=analysis, version=versions["A"]
        )
        newest = max(accepted, key=lambda n: (versions[n].effective_at, accepted[n]), default=None)
        if newest is None or newest not in ("A", "C"):
            expected.add(student.pk)

    found = {row.pk for row in impact_section(purpose=analysis, section=UNLISTED)}

    assert found == expected
    assert 0 < len(expected) < len(orders)


def test_students_who_never_accepted_a_version_listing_the_purpose_are_reported(world, students):
    assert _emails(never_accepted(purpose=world["analysis"])) == [
        "inconsistent@example.jp",
        "nothing@example.jp",
        "old-only@example.jp",
    ]
    # Everybody but `nothing` accepted a version listing `account`.
    assert _emails(never_accepted(purpose=world["account"])) == ["nothing@example.jp"]


def test_the_report_page_shows_counts_and_both_lists(client, world, students):
    client.force_login(StaffFactory())

    response = client.get(_impact_url(world["analysis"]))

    assert response.status_code == 200
    sections = {s["key"]: s for s in response.context["sections"]}
    assert sections[UNLISTED]["page"].paginator.count == 1
    assert sections[NEVER_ACCEPTED]["page"].paginator.count == 3
    html = response.content.decode()
    for email in ("inconsistent@example.jp", "nothing@example.jp", "old-only@example.jp"):
        assert email in html
    assert "up-to-date@example.jp" not in html
    assert "granted@example.jp" not in html
    assert reverse("admin:consent_purpose_change", args=[world["analysis"].pk]) in html


def test_the_purpose_pages_link_to_the_report(client, world):
    client.force_login(StaffFactory())
    url = _impact_url(world["analysis"])
    change = client.get(reverse("admin:consent_purpose_change", args=[world["analysis"].pk]))
    assert url in change.content.decode()
    assert url in client.get(reverse("admin:consent_purpose_changelist")).content.decode()


def test_the_lists_are_paginated_by_one_hundred(client, world):
    UserFactory.create_batch(101, verified=False)
    client.force_login(StaffFactory())

    first = client.get(_impact_url(world["analysis"]))
    second = client.get(_impact_url(world["analysis"]), {"never-accepted-page": 2})

    page = {s["key"]: s for s in first.context["sections"]}[NEVER_ACCEPTED]["page"]
    assert (page.paginator.count, len(page.object_list)) == (101, 100)
    page = {s["key"]: s for s in second.context["sections"]}[NEVER_ACCEPTED]["page"]
    assert (page.number, len(page.object_list)) == (2, 1)


@pytest.mark.parametrize("extra", [0, 40])
def test_the_report_page_runs_a_fixed_number_of_queries(
    client, world, students, django_assert_max_num_queries, extra
):
    for index in range(extra):
        student = UserFactory(verified=False)
        accept(student, world["old"])
        if index % 2:
            _grant_around_the_services(
                student=student,
                employer=EmployerFactory(),
                purpose=world["analysis"],
                version=world["old"],
            )
    client.force_login(StaffFactory())

    # 13 (two of them the counts), the admin's check that the staff member has a second
    # factor, and two for the inferences made without a grant (their count and the first of
    # them); shown again, the counts are kept.
    with django_assert_max_num_queries(16):
        response = client.get(_impact_url(world["analysis"]))
    with django_assert_max_num_queries(14):
        again = client.get(_impact_url(world["analysis"]))

    for shown in (response, again):
        sections = {s["key"]: s for s in shown.context["sections"]}
        assert sections[UNLISTED]["page"].paginator.count == 1 + extra // 2
        assert sections[NEVER_ACCEPTED]["page"].paginator.count == 3 + extra


def test_the_counts_are_kept_a_few_minutes_and_counted_again_when_asked(
    client, world, students, monkeypatch
):
    client.force_login(StaffFactory())
    url = _impact_url(world["analysis"])
    first = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    UserFactory(email="newcomer@example.jp", verified=False)

    again = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    later = timezone.now() + timedelta(seconds=reports.IMPACT_COUNT_SECONDS + 1)
    monkeypatch.setattr(reports.timezone, "now", lambda: later)
    recounted = client.get(url + "?recount=1", HTTP_ACCEPT_LANGUAGE="en")

    def never(response):
        return {s["key"]: s for s in response.context["sections"]}[NEVER_ACCEPTED]

    # Kept: the count as it was, the students as they are now, and when it was counted.
    assert never(first)["page"].paginator.count == never(again)["page"].paginator.count == 3
    assert "newcomer@example.jp" in again.content.decode()
    assert again.context["counted_at"] == first.context["counted_at"]
    assert "Count again" in again.content.decode()
    assert never(recounted)["page"].paginator.count == 4
    assert recounted.context["counted_at"] == later
    # Paging after counting again does not count on every page.
    assert "recount" not in (never(recounted)["next_url"] or "")


def test_a_section_kept_as_empty_reads_no_students_until_counted_again(client, world):
    client.force_login(StaffFactory())
    url = _impact_url(world["analysis"])
    client.get(url)
    student = UserFactory(email="inconsistent@example.jp", verified=False)
    accept(student, world["old"])
    _grant_around_the_services(
        student=student, employer=EmployerFactory(), purpose=world["analysis"], version=world["old"]
    )

    kept = client.get(url)
    recounted = client.get(url + "?recount=1")

    def unlisted(response):
        return {s["key"]: s for s in response.context["sections"]}[UNLISTED]["page"]

    assert (unlisted(kept).paginator.count, list(unlisted(kept).object_list)) == (0, [])
    assert [s.email for s in unlisted(recounted).object_list] == ["inconsistent@example.jp"]


def test_a_new_version_counts_again(client, world, students):
    client.force_login(StaffFactory())
    url = _impact_url(world["analysis"])
    before = client.get(url)
    published_version(label="2019.09", purposes=[world["account"]])

    after = client.get(url)

    assert after.context["counted_at"] > before.context["counted_at"]


# --- Access -------------------------------------------------------------------------------


def test_a_student_is_sent_to_the_admin_login(client, world, students):
    client.force_login(students["nothing"])
    for url in (
        _impact_url(world["analysis"]),
        _impact_url(world["analysis"], "impact_csv", NEVER_ACCEPTED),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("admin:login"))
    response = client.post(_impact_url(world["analysis"], "impact_request_review"))
    assert response.status_code == 302
    assert EmailMessage.objects.filter(kind__startswith="review_policy").count() == 0


def test_staff_who_may_run_the_report_but_not_the_mailing_see_it_but_cannot_email(
    client, world, students
):
    staff = StaffFactory(is_superuser=False)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_purpose", "run_impact_report"])
    )
    client.force_login(staff)

    response = client.get(_impact_url(world["analysis"]))
    assert response.status_code == 200
    assert _impact_url(world["analysis"], "impact_request_review") not in (
        response.content.decode()
    )
    refused = client.post(_impact_url(world["analysis"], "impact_request_review"))
    assert refused.status_code == 403
    assert EmailMessage.objects.filter(kind__startswith="review_policy").count() == 0


def test_staff_who_may_only_view_purposes_neither_see_the_report_nor_its_link(client, world):
    staff = StaffFactory(is_superuser=False)
    staff.user_permissions.add(Permission.objects.get(codename="view_purpose"))
    client.force_login(staff)

    listing = client.get(reverse("admin:consent_purpose_changelist"))
    assert listing.status_code == 200
    assert _impact_url(world["analysis"]) not in listing.content.decode()
    page = client.get(reverse("admin:consent_purpose_change", args=[world["analysis"].pk]))
    assert _impact_url(world["analysis"]) not in page.content.decode()
    assert client.get(_impact_url(world["analysis"])).status_code == 403
    csv_url = _impact_url(world["analysis"], "impact_csv", UNLISTED)
    assert client.get(csv_url).status_code == 403


def test_staff_without_permission_on_purposes_cannot_see_the_report(client, world):
    client.force_login(StaffFactory(is_superuser=False))
    assert client.get(_impact_url(world["analysis"])).status_code == 403
    csv_url = _impact_url(world["analysis"], "impact_csv", UNLISTED)
    assert client.get(csv_url).status_code == 403


def test_the_email_action_takes_only_a_post(client, world, students):
    client.force_login(StaffFactory())
    response = client.get(_impact_url(world["analysis"], "impact_request_review"))
    assert response.status_code == 405


# --- CSV ----------------------------------------------------------------------------------


def _csv(response) -> tuple[str, list[list[str]]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    return body, list(csv.reader(io.StringIO(body.removeprefix("\ufeff"))))


def test_the_csv_export_holds_every_row_of_a_section_with_a_bom(client, world, students):
    client.force_login(StaffFactory())
    today = timezone.localdate().isoformat()

    response = client.get(_impact_url(world["analysis"], "impact_csv", NEVER_ACCEPTED))

    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="impact-behaviour_analysis-never-accepted-{today}.csv"'
    )
    body, rows = _csv(response)
    assert body.startswith("\ufeff")
    header, *data = rows
    assert len(header) == 6
    assert [row[1] for row in data] == [
        "inconsistent@example.jp",
        "nothing@example.jp",
        "old-only@example.jp",
    ]
    by_email = {row[1]: row for row in data}
    assert by_email["nothing@example.jp"][0] == str(students["nothing"].public_id)
    assert by_email["nothing@example.jp"][4:] == ["", ""]
    assert by_email["old-only@example.jp"][4] == "2019.02"
    assert by_email["old-only@example.jp"][5].startswith(
        timezone.localtime(students["old_only"].policy_acceptances.get().accepted_at).isoformat(
            timespec="seconds"
        )[:10]
    )


def test_the_csv_export_of_reliance_counts_grants_and_provisions(client, world, students):
    client.force_login(StaffFactory())
    response = client.get(_impact_url(world["analysis"], "impact_csv", UNLISTED))
    _body, (header, *data) = _csv(response)
    assert len(header) == 8
    assert [(row[1], row[6], row[7]) for row in data] == [("inconsistent@example.jp", "2", "0")]


def test_the_csv_export_does_not_let_excel_run_a_name_as_a_formula(client, world):
    UserFactory(display_name='=HYPERLINK("http://evil.example","x")', verified=False)
    client.force_login(StaffFactory())
    response = client.get(_impact_url(world["analysis"], "impact_csv", NEVER_ACCEPTED))
    _body, (_header, row) = _csv(response)
    assert row[2] == '\'=HYPERLINK("http://evil.example","x")'


def test_an_unknown_section_is_not_found(client, world):
    client.force_login(StaffFactory())
    assert client.get(_impact_url(world["analysis"], "impact_csv", "everyone")).status_code == 404


def test_the_csv_export_runs_a_fixed_number_of_queries_per_chunk(
    client, world, students, django_assert_max_num_queries
):
    UserFactory.create_batch(30, verified=False)
    client.force_login(StaffFactory())
    # session, user, second factor, purpose; the rows; the newest acceptances of the one chunk
    with django_assert_max_num_queries(6):
        response = client.get(_impact_url(world["analysis"], "impact_csv", NEVER_ACCEPTED))
        _body, rows = _csv(response)
    assert len(rows) == 1 + 3 + 30


def test_the_csv_export_is_the_same_read_in_small_chunks(client, world, students, monkeypatch):
    client.force_login(StaffFactory())
    url = _impact_url(world["analysis"], "impact_csv", UNLISTED)
    whole = _csv(client.get(url))[1]
    monkeypatch.setattr("consent.reports.CSV_CHUNK", 1)
    _grant_around_the_services(
        student=students["old_only"],
        employer=EmployerFactory(),
        purpose=world["analysis"],
        version=world["old"],
    )
    _body, rows = _csv(client.get(url))
    assert [row[1] for row in rows[1:]] == ["inconsistent@example.jp", "old-only@example.jp"]
    assert rows[:2] == whole
    assert rows[2][6:] == ["1", "0"]


def test_the_csv_export_reads_its_rows_a_chunk_at_a_time_while_it_streams(
    client, world, students, monkeypatch
):
    """Memory stays flat: the response is a stream of lines, and the students' details are
    read for one chunk of rows before the next chunk is fetched, not all at once."""
    monkeypatch.setattr("consent.reports.CSV_CHUNK", 5)
    UserFactory.create_batch(27, verified=False)  # 30 never accepted: six chunks of five
    client.force_login(StaffFactory())
    response = client.get(_impact_url(world["analysis"], "impact_csv", NEVER_ACCEPTED))
    assert response.streaming
    lines = iter(response.streaming_content)

    def details_read(queries):
        # Each chunk's newest acceptances: the query that joins the acceptances.
        return sum("consent_policyacceptance" in q["sql"] for q in queries)

    with CaptureQueriesContext(connection) as first:
        header, *first_chunk = [next(lines) for _ in range(1 + 5)]
    with CaptureQueriesContext(connection) as rest:
        remaining = list(lines)

    assert header.startswith("\ufeff".encode())
    assert len(first_chunk) + len(remaining) == 30
    assert details_read(first.captured_queries) == 2  # the rows' cursor, the first chunk's details
    assert details_read(rest.captured_queries) == 5  # one for each later chunk
    emails = [
        row[1] for row in csv.reader(io.StringIO(b"".join([*first_chunk, *remaining]).decode()))
    ]
    assert emails == sorted(emails) and len(set(emails)) == 30


# --- Asking students to review the current version ------------------------------------------


def _press(client, purpose):
    return client.post(_impact_url(purpose, "impact_request_review"), follow=True)


def test_the_action_emails_each_student_once_in_their_language(
    client, world, students, django_capture_on_commit_callbacks, mailoutbox
):
    client.force_login(StaffFactory())

    with django_capture_on_commit_callbacks(execute=True):
        response = _press(client, world["analysis"])

    assert response.redirect_chain[-1][0] == _impact_url(world["analysis"])
    messages = EmailMessage.objects.filter(kind="review_policy:behaviour_analysis")
    assert sorted(messages.values_list("to", "language")) == [
        ("inconsistent@example.jp", "ja"),
        ("nothing@example.jp", "ja"),
        ("old-only@example.jp", "en"),
    ]
    assert sorted(m.to[0] for m in mailoutbox) == [
        "inconsistent@example.jp",
        "nothing@example.jp",
        "old-only@example.jp",
    ]
    english = messages.get(to="old-only@example.jp")
    japanese = messages.get(to="nothing@example.jp")
    assert "Analysing your browsing" in english.body_text
    assert "閲覧履歴の分析" in japanese.body_text
    assert "閲覧履歴の分析" not in english.body_text
    assert '<html lang="en">' in english.body_html
    assert '<html lang="ja">' in japanese.body_html
    for message in (english, japanese):
        assert reverse("consent:accept") in message.body_text
        assert reverse("consent:accept") in message.body_html
        assert "2019.03" in message.body_text
    assert "学生" in japanese.body_text  # addressed by the display name


def test_a_second_press_within_seven_days_emails_nobody(
    client, world, students, django_capture_on_commit_callbacks, mailoutbox
):
    client.force_login(StaffFactory())
    with django_capture_on_commit_callbacks(execute=True):
        _press(client, world["analysis"])
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = _press(client, world["analysis"])

    assert mailoutbox == []
    assert EmailMessage.objects.filter(kind="review_policy:behaviour_analysis").count() == 3
    [message] = list(response.context["messages"])
    assert "0" in str(message) and "3" in str(message)


def test_the_interval_is_per_purpose_and_ends_after_seven_days(world, students):
    first = review_request_send(purpose=world["analysis"])
    assert (first.queued, first.skipped, first.remaining) == (3, 0, 0)

    assert review_request_send(purpose=world["account"]).queued == 1  # `nothing`
    six_days = review_request_send(
        purpose=world["analysis"], now=timezone.now() + timedelta(days=6)
    )
    assert (six_days.queued, six_days.skipped) == (0, 3)
    eight_days = review_request_send(
        purpose=world["analysis"], now=timezone.now() + timedelta(days=8)
    )
    assert (eight_days.queued, eight_days.skipped) == (3, 0)


def test_a_large_group_is_emailed_batch_by_batch(world, students):
    first = review_request_send(purpose=world["analysis"], batch_size=2)
    assert (first.queued, first.skipped, first.remaining) == (2, 0, 1)
    second = review_request_send(purpose=world["analysis"], batch_size=2)
    assert (second.queued, second.skipped, second.remaining) == (1, 2, 0)


def test_the_action_is_refused_when_the_version_in_force_does_not_list_the_purpose(
    client, world, students, mailoutbox, django_capture_on_commit_callbacks
):
    published_version(label="2020.01", purposes=[world["account"]])
    client.force_login(StaffFactory())

    with django_capture_on_commit_callbacks(execute=True):
        response = _press(client, world["analysis"])

    assert [m.level_tag for m in response.context["messages"]] == ["error"]
    assert mailoutbox == []
    assert not EmailMessage.objects.filter(kind__startswith="review_policy").exists()
