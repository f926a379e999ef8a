"""Every staff look at a student's data is recorded, and the student sees it (issue 17,
item 2): the student's admin page, their ledgers filtered to them, each record's page, a
request's page and an email's body; who, role, when, which student, what, and the reason
when a link gives one. The student reads role, date, what and why on their own page and in
their disclosure report; the Privacy officer reads it per staff member, unusual ones marked.
"""

import json
from datetime import timedelta

import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone

from audit.models import StaffRead
from audit.reads import RecordsStudentReads
from backoffice.roles import PRIVACY_OFFICER, SUPPORT
from disclosure.reports import disclosure_report_data
from portal.models import EmailMessage
from tests.factories import StaffFactory, UserFactory

pytestmark = pytest.mark.django_db


def looks(**filters):
    return list(StaffRead.objects.filter(**filters).order_by("pk"))


@pytest.fixture
def support(staff_in, client):
    member = staff_in(SUPPORT, email="agent@portal.example")
    client.force_login(member)
    return member


def record_pages(world):
    """The change page of one row of every admin that records reads, with its student."""
    filed = world.ledgers
    pages = {}
    for model, model_admin in admin.site._registry.items():
        if not isinstance(model_admin, RecordsStudentReads):
            continue
        if model._meta.model_name == "user":
            row = filed.student
        elif model._meta.model_name == "emailmessage":
            row = EmailMessage.objects.filter(to=filed.student.email).first()
        else:  # the world's ledgers are all this one student's
            row = model._default_manager.order_by("pk").first()
        assert row is not None, model
        pages[model._meta.label_lower] = reverse(
            f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[row.pk]
        )
    return filed.student, pages


def test_every_page_showing_a_students_record_records_the_look(world, support, client):
    student, pages = record_pages(world)
    assert len(pages) >= 11  # profile, 5 consent ledgers, activity, emails, request, tasks, events
    for record_type, page in pages.items():
        before = StaffRead.objects.count()
        assert client.get(page).status_code == 200, page
        [look] = StaffRead.objects.order_by("-pk")[: StaffRead.objects.count() - before]
        assert (look.staff_id, look.student_id, look.role, look.record_type) == (
            support.pk,
            student.pk,
            SUPPORT,
            record_type,
        ), page


def test_a_list_filtered_to_one_student_is_a_look_and_the_whole_list_is_not(world, support, client):
    student = world.ledgers.student
    url = reverse("admin:consent_consentevent_changelist")
    assert client.get(url).status_code == 200
    assert looks() == []
    assert client.get(url, {"student__id__exact": student.pk}).status_code == 200
    [look] = looks()
    assert (look.student_id, look.what, look.record_type) == (
        student.pk,
        StaffRead.What.LEDGER,
        "consent.consentevent",
    )
    emails = reverse("admin:portal_emailmessage_changelist")
    assert client.get(emails, {"to__exact": student.email}).status_code == 200
    assert looks(what=StaffRead.What.LEDGER, record_type="portal.emailmessage")


def test_a_reason_given_by_the_link_is_recorded_and_a_staff_members_page_is_not_a_look(
    world, support, client
):
    student = world.filed.student
    page = reverse("admin:portal_user_change", args=[student.pk])
    client.get(page, {"reason": "Ticket #1234: the student asked what we hold"})
    [look] = looks()
    assert look.reason == "Ticket #1234: the student asked what we hold"
    assert look.what == StaffRead.What.PROFILE
    client.get(reverse("admin:portal_user_change", args=[StaffFactory().pk]))
    assert len(looks()) == 1


def test_recording_a_look_is_one_insert_within_the_students_page_budget(
    world, support, client, django_assert_max_num_queries
):
    student = world.ledgers.student
    page = reverse("admin:portal_user_change", args=[student.pk])
    client.get(page)  # warm: the session's last-seen write, content types
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as with_recording:
        client.get(page)
    inserts = [q for q in with_recording.captured_queries if "audit_staffread" in q["sql"]]
    assert len(inserts) == 1
    with django_assert_max_num_queries(40):
        client.get(page)


def test_the_student_sees_who_looked_by_role_with_what_and_why_in_their_language(
    world, support, client
):
    filed = world.filed
    client.get(
        reverse("admin:disclosure_datarequest_change", args=[filed.request.pk]),
        {"reason": "Checking the deletion"},
    )
    other = UserFactory()
    StaffRead.objects.create(
        staff=support, staff_label=support.email, role=SUPPORT, student=other, what="profile"
    )
    client.force_login(filed.student)
    html = client.get(reverse("staff_looks"), headers={"Accept-Language": "en"}).content.decode()
    assert "Support staff" in html
    assert filed.request.reference in html
    assert "Checking the deletion" in html
    assert support.email not in html  # the role, not the person
    assert html.count("<li>") - html.count("<li><a") >= 1
    client.cookies.load({"django_language": "ja"})
    japanese = client.get(reverse("staff_looks")).content.decode()
    assert "サポート" in japanese


def test_the_students_page_runs_a_fixed_number_of_queries(
    world, support, django_assert_max_num_queries, client
):
    student = world.filed.student
    StaffRead.objects.bulk_create(
        StaffRead(staff=support, staff_label="x", role=SUPPORT, student=student, what="ledger")
        for _ in range(120)
    )
    client.force_login(student)
    with django_assert_max_num_queries(8):
        response = client.get(reverse("staff_looks"))
    assert response.status_code == 200
    assert "2" in response.content.decode()  # "page 1 of 3"


def test_the_disclosure_report_lists_the_looks(world, support, client):
    filed = world.filed
    client.get(reverse("admin:portal_user_change", args=[filed.student.pk]), {"reason": "why"})
    data = json.loads(json.dumps(disclosure_report_data(filed.student), default=str))
    [look] = data["staff_looks"]
    assert (look["role"], look["what"], look["reason"]) == (SUPPORT, "profile", "why")
    assert data["counts"]["staff_looks"] == 1


def test_the_privacy_officer_sees_looks_per_staff_member_and_who_opened_unusually_many(
    staff_in, client
):
    students = [UserFactory() for _ in range(30)]
    busy, usual, other = (staff_in(SUPPORT) for _ in range(3))
    rows = [
        StaffRead(staff=busy, staff_label=busy.email, role=SUPPORT, student=s, what="profile")
        for s in students
    ]
    for member in (usual, other):
        rows += [
            StaffRead(
                staff=member, staff_label=member.email, role=SUPPORT, student=s, what="profile"
            )
            for s in students[:3]
        ]
    rows.append(
        StaffRead(
            staff=usual,
            staff_label=usual.email,
            role=SUPPORT,
            student=students[0],
            what="profile",
            at=timezone.now() - timedelta(days=60),
        )
    )
    StaffRead.objects.bulk_create(rows)
    officer = staff_in(PRIVACY_OFFICER)
    client.force_login(officer)
    response = client.get(reverse("admin:audit_staffread_per_staff"), {"days": "30"})
    assert response.status_code == 200
    table = {row["staff_label"]: row for row in response.context["rows"]}
    assert table[busy.email]["students"] == 30 and table[busy.email]["unusual"]
    assert table[usual.email]["looks"] == 3 and not table[usual.email]["unusual"]
    assert "Unusually many students" in response.content.decode() or "異常" in (
        response.content.decode()
    )
    filtered = client.get(
        reverse("admin:audit_staffread_changelist"), {"staff__id__exact": busy.pk}
    )
    assert filtered.status_code == 200


def test_support_cannot_read_the_looks_of_other_staff(support, client):
    assert client.get(reverse("admin:audit_staffread_changelist")).status_code == 403
    assert client.get(reverse("admin:audit_staffread_per_staff")).status_code == 403
