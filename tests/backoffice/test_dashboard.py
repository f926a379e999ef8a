"""The admin's front page opens on the back office dashboard (issue 5, "Dashboard"): the
figures on a known data set, each linking to a list of exactly the rows it counts, the
weekly chart, who sees what, and a query budget that does not grow with the data."""

import io
import re
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from backoffice.dashboard import _nice_max
from consent.services import consent_grant, provision_record
from disclosure.models import DataRequest, RecipientTask
from disclosure.services import (
    recipient_task_answer,
    recipient_task_close,
    recipient_task_send,
    request_cancel,
    request_file,
    requests_sweep,
)
from portal.models import Employer, User
from portal.tasks import email_send
from tests.factories import (
    EmployerFactory,
    PurposeFactory,
    StaffFactory,
    UserFactory,
    accept,
    opt_in_purposes,
    published_version,
)
from tests.smtp import SmtpServer, smtp_settings
from tests.worlds import module_rows

pytestmark = pytest.mark.django_db

TOKYO = timezone.get_fixed_timezone(9 * 60)
NOW = datetime(2026, 11, 11, 10, 0, tzinfo=TOKYO)  # a Wednesday
INDEX = "/admin/"
# Every query of the admin's front page for a superuser with the whole dashboard: the
# session and user, the dashboard's five, and the admin's own (the recent actions).
QUERY_BUDGET = 10


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


@pytest.fixture(scope="module")
def _world_rows(django_db_setup, django_db_blocker):
    """The world's rows, made once for the module (each of the 19 tests made them again,
    their certificates' PDFs included) and rolled back after it (tests/worlds.py)."""
    with SmtpServer() as smtp_server, module_rows(django_db_blocker, **smtp_settings(smtp_server)):
        # The clock only while the rows are made: each test sets it again (`world`), and
        # between tests pytest's own clock must be the real one.
        with time_machine.travel(NOW, tick=False) as clock:
            made = _make_world(clock, smtp_server)
        yield made


@pytest.fixture
def world(_world_rows, time_machine):
    time_machine.move_to(NOW, tick=False)
    return _world_rows


def _make_world(time_machine, smtp_server):
    """Eleven requests at known times, seen on Wednesday 11 November 2026 at 10:00 (Tokyo).

    Open: A deletion (due in 4 days: not "due soon"), B cessation (due in 2 days), C disclosure
    (due in 3 days), D deletion (overdue: its company is escalated), E disclosure with no
    company (submitted), F deletion whose first company's email bounced. Done: G (5 days, last
    week), H (20 days), I (completed 60 days ago: outside the median's 30 days; filed on the
    Sunday before the chart's first week), J (partially: staff closed its only company, 7
    days), K cancelled."""
    analysis, provision = opt_in_purposes()
    version = published_version(purposes=[PurposeFactory(code="account"), analysis, provision])
    staff = StaffFactory()
    made = {}

    def at(when):
        time_machine.move_to(when, tick=False)

    def file(name, kind, *, filed, companies=1):
        at(filed)
        student = UserFactory()
        accept(student, version)
        for _ in range(companies):
            employer = EmployerFactory()
            consent_grant(student=student, employer=employer, purpose=provision)
            provision_record(
                student=student, employer=employer, purpose=provision, data_items="score"
            )
        request = request_file(student=student, kind=kind)
        for task in request.tasks.all():
            recipient_task_send(task_id=task.pk)
        made[name] = request
        return request

    def answer_all(request, when):
        at(when)
        answer = {"deletion": "deleted", "cessation": "stopped"}[request.kind]
        for task in request.tasks.select_related("request"):
            recipient_task_answer(task=task, answer=answer, answered_by="佐藤")

    file("I", "deletion", filed=days_ago(80))  # Sunday 23 August
    answer_all(made["I"], days_ago(60))
    file("H", "cessation", filed=days_ago(40))
    answer_all(made["H"], days_ago(20))
    file("D", "deletion", filed=days_ago(20))
    file("B", "cessation", filed=days_ago(12))
    file("C", "disclosure", filed=days_ago(11))
    file("A", "deletion", filed=days_ago(10))
    file("G", "deletion", filed=days_ago(10))
    answer_all(made["G"], days_ago(5))
    file("J", "deletion", filed=days_ago(9))
    file("K", "cessation", filed=days_ago(6))
    at(days_ago(4))
    request_cancel(request=made["K"], reason="filed by mistake", by=staff)
    at(days_ago(2))
    recipient_task_close(task=made["J"].tasks.get(), by=staff, reason="the company closed down")
    file("E", "disclosure", filed=days_ago(1), companies=0)
    # C's and E's reports are being built: a message for each is in the queue, so the sweep
    # leaves them (in-process tasks would otherwise render C's PDF for every test).
    DataRequest.objects.filter(pk__in=[made["C"].pk, made["E"].pk]).update(queued_at=NOW)
    file("F", "deletion", filed=days_ago(1), companies=2)

    at(NOW)
    requests_sweep()  # D's company is past the due date: escalated
    bounced = made["F"].tasks.order_by("pk").first()
    smtp_server.rcpt_replies = ["550 5.1.1 no such user"]
    email_send.delay(bounced.email_id)

    requests = {name: DataRequest.objects.get(pk=r.pk) for name, r in made.items()}
    assert [requests[n].status for n in "ABCDEF"] == [
        "in_progress",
        "in_progress",
        "in_progress",
        "in_progress",
        "submitted",
        "in_progress",
    ]
    assert [requests[n].status for n in "GHIJK"] == [
        "completed",
        "completed",
        "completed",
        "partially_completed",
        "cancelled",
    ]
    return SimpleNamespace(
        requests=requests,
        staff=staff,
        overdue_task=made["D"].tasks.get(),
        bounced_task=bounced,
    )


@pytest.fixture
def staff_client(client, world):
    client.force_login(world.staff)
    return client


def dashboard_of(response):
    return response.context["dashboard"]


def listed(client, url) -> set[int]:
    """The primary keys an admin list shows (every one: the lists page at 100)."""
    response = client.get(url)
    assert response.status_code == 200, url
    assert "e=1" not in response.get("Location", "")
    cl = response.context["cl"]
    assert cl.result_count <= cl.list_per_page
    return {obj.pk for obj in cl.result_list}


def pks(world, names) -> set[int]:
    return {world.requests[n].pk for n in names}


# --- the figures ----------------------------------------------------------------------------


def test_it_counts_open_requests_by_kind_and_status(staff_client, world):
    figures = dashboard_of(staff_client.get(INDEX)).requests

    table = {
        row.kind: [cell.count for cell in row.cells] + [row.total.count] for row in figures.rows
    }
    with translation.override("en"):
        assert [str(s) for s in figures.statuses] == ["submitted", "in progress"]
    assert table == {
        "disclosure": [1, 1, 2],
        "deletion": [0, 3, 3],
        "cessation": [0, 1, 1],
        "correction": [0, 0, 0],
    }
    assert figures.total.count == 6


def test_each_open_request_figure_links_to_a_list_of_exactly_those_requests(staff_client, world):
    figures = dashboard_of(staff_client.get(INDEX)).requests
    rows = {row.kind: row for row in figures.rows}
    deletion, disclosure = rows["deletion"], rows["disclosure"]

    assert listed(staff_client, deletion.cells[1].url) == pks(world, "ADF")
    assert listed(staff_client, deletion.cells[0].url) == set()
    assert listed(staff_client, deletion.total.url) == pks(world, "ADF")
    assert listed(staff_client, disclosure.cells[0].url) == pks(world, "E")
    assert listed(staff_client, disclosure.total.url) == pks(world, "CE")
    assert listed(staff_client, figures.total.url) == pks(world, "ABCDEF")


def test_requests_due_in_the_next_3_days_are_due_from_today_to_3_days_on(staff_client, world):
    figures = dashboard_of(staff_client.get(INDEX)).requests

    # B is due in 2 days, C in 3; A (in 4 days) and D (overdue) are not due soon.
    assert figures.due_soon.count == 2
    assert figures.due_soon_until == NOW.date() + timedelta(days=3)
    assert listed(staff_client, figures.due_soon.url) == pks(world, "BC")


def test_the_overdue_and_failed_company_tasks_link_to_those_tasks(staff_client, world):
    tasks = dashboard_of(staff_client.get(INDEX)).tasks

    assert tasks.overdue.count == 1
    assert listed(staff_client, tasks.overdue.url) == {world.overdue_task.pk}
    assert tasks.failed.count == 1
    assert listed(staff_client, tasks.failed.url) == {world.bounced_task.pk}


def test_from_the_overdue_tasks_list_staff_reach_the_request_and_resend_the_link(
    staff_client, world
):
    url = dashboard_of(staff_client.get(INDEX)).tasks.overdue.url
    html = staff_client.get(url).content.decode()
    task = world.overdue_task

    assert reverse("admin:disclosure_datarequest_change", args=[task.request_id]) in html
    resend = reverse("admin:disclosure_datarequest_task_resend", args=[task.request_id, task.pk])
    assert resend in html
    assert staff_client.get(resend).status_code == 200


def test_the_median_is_over_requests_completed_in_the_last_30_days(staff_client, world):
    median = dashboard_of(staff_client.get(INDEX)).median

    # G took 5 days, J 7 and H 20; I completed 60 days ago and K was cancelled.
    assert median.days == 7.0
    assert median.completed.count == 3
    assert listed(staff_client, median.completed.url) == pks(world, "GHJ")


def test_the_weeks_are_the_last_12_tokyo_weeks_with_requests_filed_and_completed(
    staff_client, world
):
    weeks = dashboard_of(staff_client.get(INDEX)).weeks

    assert len(weeks) == 12
    assert all(w.start.weekday() == 0 for w in weeks)
    assert weeks[-1].start == NOW.date() - timedelta(days=2)  # this week's Monday
    filed = {f"{w.start:%m-%d}": w.filed.count for w in weeks if w.filed.count}
    completed = {f"{w.start:%m-%d}": w.completed.count for w in weeks if w.completed.count}
    # I was filed on the Sunday before the first week: not counted.
    assert filed == {"09-28": 1, "10-19": 1, "10-26": 4, "11-02": 2, "11-09": 2}
    assert completed == {"09-07": 1, "10-19": 1, "11-02": 1, "11-09": 1}


def test_each_week_links_to_the_requests_filed_and_completed_that_week(staff_client, world):
    weeks = {f"{w.start:%m-%d}": w for w in dashboard_of(staff_client.get(INDEX)).weeks}

    assert listed(staff_client, weeks["10-26"].filed.url) == pks(world, "ABCG")
    assert listed(staff_client, weeks["11-09"].filed.url) == pks(world, "EF")
    assert listed(staff_client, weeks["11-09"].completed.url) == pks(world, "J")
    assert listed(staff_client, weeks["09-07"].completed.url) == pks(world, "I")
    assert listed(staff_client, weeks["08-24"].filed.url) == set()


# --- the page -------------------------------------------------------------------------------


def dashboard_html(response) -> str:
    html = response.content.decode()
    start = html.index('<section class="bo-dashboard"')
    return html[start : html.index("</section>", start)]


def test_the_page_draws_the_chart_as_inline_svg_with_a_table_of_the_same_figures(
    staff_client, world
):
    response = staff_client.get(INDEX, HTTP_ACCEPT_LANGUAGE="en")
    html = dashboard_html(response)

    svg = re.search(r"<svg class=\"bo-chart-svg\"[^>]*role=\"img\".*?</svg>", html, re.S).group(0)
    assert len(re.findall(r'<rect class="bo-bar-filed"[^>]*><title>', svg)) == 12
    assert len(re.findall(r'<rect class="bo-bar-completed"[^>]*><title>', svg)) == 12
    assert "Week of 2026-10-26: 4 filed" in svg
    japanese = dashboard_html(staff_client.get(INDEX, HTTP_ACCEPT_LANGUAGE="ja"))
    assert "2026-10-26 の週：請求 4 件" in japanese
    assert "<script" not in html and "<img" not in html
    # The table equivalent: a row per week, each figure a link.
    table = html[html.index("<details>") :]
    assert len(re.findall(r'<th scope="row">', table)) == 12
    for week in dashboard_of(response).weeks:
        assert week.filed.url.replace("&", "&amp;") in table


def test_every_figure_on_the_page_is_a_link_to_its_list(staff_client, world):
    response = staff_client.get(INDEX, HTTP_ACCEPT_LANGUAGE="en")
    html = dashboard_html(response)
    dashboard = dashboard_of(response)

    urls = [dashboard.tasks.overdue.url, dashboard.tasks.failed.url]
    urls += [dashboard.requests.due_soon.url, dashboard.median.completed.url]
    urls += [cell.url for row in dashboard.requests.rows for cell in row.cells]
    for url in urls:
        assert f'href="{url.replace("&", "&amp;")}"' in html
    # Status in words, not colour alone.
    assert "Needs follow-up" in html
    assert "in progress" in html.lower()


def test_the_model_list_is_still_on_the_page(staff_client, world):
    html = staff_client.get(INDEX).content.decode()

    assert 'id="content-main"' in html
    assert reverse("admin:disclosure_datarequest_changelist") in html
    assert reverse("admin:portal_user_changelist") in html


@pytest.mark.parametrize("language", ["ja", "en"])
def test_it_renders_in_both_languages(staff_client, world, language):
    response = staff_client.get(INDEX, HTTP_ACCEPT_LANGUAGE=language)

    assert response.status_code == 200
    assert f'<html lang="{language}"' in response.content.decode()
    assert dashboard_of(response).requests.total.count == 6


def test_staff_without_permission_to_view_requests_see_no_request_figures(client, world):
    agent = StaffFactory(is_superuser=False)
    agent.user_permissions.add(Permission.objects.get(codename="view_recipienttask"))
    client.force_login(agent)

    response = client.get(INDEX)

    dashboard = dashboard_of(response)
    assert dashboard.requests is None and dashboard.median is None and dashboard.chart is None
    assert dashboard.tasks.overdue.count == 1
    html = response.content.decode()
    assert "bo-bar-filed" not in html and "median days" not in html


def test_staff_with_no_view_permission_get_the_plain_index(client, world):
    client.force_login(StaffFactory(is_superuser=False))

    response = client.get(INDEX)

    assert response.status_code == 200
    assert dashboard_of(response).empty
    assert "bo-dashboard" not in response.content.decode()


def test_a_student_is_sent_to_the_admin_login(client, world):
    client.force_login(UserFactory())

    response = client.get(INDEX)

    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


# --- the query budget -----------------------------------------------------------------------


def index_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(INDEX)
    assert response.status_code == 200
    return len(queries)


def bulk_requests(n: int) -> None:
    """`n` more requests, every kind and status, spread over four months, with a task each."""
    students = list(User.objects.filter(email__startswith="bulk-").order_by("pk")[:n])
    employers = list(Employer.objects.all())
    statuses = list(DataRequest.Status.values)
    kinds = list(DataRequest.Kind.values)
    requests = []
    for i, student in enumerate(students):
        submitted = NOW - timedelta(days=i % 120, hours=i % 24)
        status = statuses[i % len(statuses)]
        closed = status not in DataRequest.OPEN
        requests.append(
            DataRequest(
                reference=f"R-BULK-{i:06d}",
                student=student,
                kind=kinds[i % len(kinds)],
                language="ja",
                status=status,
                submitted_at=submitted,
                due_at=submitted + timedelta(days=14),
                completed_at=submitted + timedelta(days=i % 13) if closed else None,
            )
        )
    DataRequest.objects.bulk_create(requests)
    RecipientTask.objects.bulk_create(
        RecipientTask(
            request=request,
            employer=employers[i % len(employers)],
            status=RecipientTask.Status.SENT if request.is_open else RecipientTask.Status.ANSWERED,
            overdue=request.is_open and request.due_at < NOW,
        )
        for i, request in enumerate(requests)
    )


def test_the_front_page_stays_within_a_fixed_query_budget(
    staff_client, world, django_assert_max_num_queries
):
    with django_assert_max_num_queries(QUERY_BUDGET):
        response = staff_client.get(INDEX)

    assert response.status_code == 200
    assert dashboard_of(response).requests.total.count == 6


def test_the_query_count_does_not_grow_with_the_data(
    staff_client, world, django_assert_max_num_queries
):
    small = index_queries(staff_client)

    call_command("seed_demo", students=300, stdout=io.StringIO())
    bulk_requests(300)
    with django_assert_max_num_queries(QUERY_BUDGET):
        response = staff_client.get(INDEX)

    assert index_queries(staff_client) == small
    assert DataRequest.objects.count() > 300
    dashboard = dashboard_of(response)
    assert (
        dashboard.requests.total.count
        == DataRequest.objects.filter(status__in=DataRequest.OPEN).count()
    )
    assert dashboard.tasks.overdue.count > 1


def test_the_scale_of_the_chart_is_a_round_number_with_a_whole_half():
    assert [_nice_max(v) for v in (0, 3, 5, 8, 9, 11, 35, 41, 99, 101, 450, 501)] == [
        4,
        4,
        8,
        8,
        10,
        20,
        40,
        50,
        100,
        200,
        500,
        1000,
    ]
