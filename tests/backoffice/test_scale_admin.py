"""The admin's large lists (issue 11, "Scale"): estimated counts, the date drill-down from
MIN and MAX, filters by a large related table, and the company tasks' order."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.urls import reverse

from consent.models import ConsentEvent
from disclosure.models import RecipientTask
from portal.models import ActivityRecord, User
from portal.shared import pagination
from portal.shared.pagination import EstimatedCountPaginator
from tests.factories import ActivityRecordFactory, EmployerFactory, UserFactory

pytestmark = pytest.mark.django_db
TOKYO = ZoneInfo("Asia/Tokyo")
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the estimate is PostgreSQL's"
)


def _changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def _analyze(model) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {model._meta.db_table}")


@on_postgresql
def test_an_unfiltered_large_table_is_counted_by_the_estimate(
    monkeypatch, django_assert_num_queries
):
    UserFactory.create_batch(5, verified=False)
    _analyze(User)
    monkeypatch.setattr(pagination, "ESTIMATE_ABOVE", 0)
    paginator = EstimatedCountPaginator(User.objects.order_by("pk"), 2)

    with django_assert_num_queries(1) as captured:
        count = paginator.count
    assert count == User.objects.count() == 5
    assert "pg_class" in captured.captured_queries[0]["sql"]


@on_postgresql
def test_a_filtered_list_is_counted_exactly(monkeypatch, django_assert_num_queries):
    UserFactory.create_batch(3, verified=False)
    _analyze(User)
    monkeypatch.setattr(pagination, "ESTIMATE_ABOVE", 0)
    paginator = EstimatedCountPaginator(User.objects.filter(language="ja").order_by("pk"), 2)

    with django_assert_num_queries(1) as captured:
        assert paginator.count == 3
    assert "COUNT(" in captured.captured_queries[0]["sql"].upper()


def test_a_small_table_is_counted_exactly():
    UserFactory.create_batch(3, verified=False)

    assert EstimatedCountPaginator(User.objects.order_by("pk"), 2).count == 3


def test_the_ledger_pages_show_every_row_in_order(superuser, client, monkeypatch):
    # Estimating from the first row on, so the admin's pages run through the estimate.
    monkeypatch.setattr(pagination, "ESTIMATE_ABOVE", 0)
    records = ActivityRecordFactory.create_batch(150)
    if connection.vendor == "postgresql":
        _analyze(ActivityRecord)
    client.force_login(superuser)

    first = client.get(_changelist(ActivityRecord))
    second = client.get(_changelist(ActivityRecord), {"p": 2})

    shown = [*first.context["cl"].result_list, *second.context["cl"].result_list]
    assert [r.pk for r in shown] == sorted((r.pk for r in records), reverse=True)


def test_the_date_drill_down_offers_the_years_between_the_first_and_last_row(superuser, client):
    ActivityRecordFactory(occurred_at=datetime(2018, 5, 1, 12, tzinfo=TOKYO))
    ActivityRecordFactory(occurred_at=datetime(2020, 2, 1, 12, tzinfo=TOKYO))
    client.force_login(superuser)

    response = client.get(_changelist(ActivityRecord))

    assert response.status_code == 200
    years = [c["title"] for c in _choices(response)]
    assert years == ["2018", "2019", "2020"]
    assert not any("DISTINCT" in q["sql"] for q in _queries(client, ActivityRecord))


def test_the_date_drill_down_offers_the_months_of_a_year_between_its_first_and_last_row(
    superuser, client
):
    ActivityRecordFactory(occurred_at=datetime(2019, 3, 1, 12, tzinfo=TOKYO))
    ActivityRecordFactory(occurred_at=datetime(2019, 5, 31, 23, tzinfo=TOKYO))
    ActivityRecordFactory(occurred_at=datetime(2020, 1, 1, 12, tzinfo=TOKYO))
    client.force_login(superuser)

    year = client.get(_changelist(ActivityRecord), {"occurred_at__year": 2019})
    month = client.get(
        _changelist(ActivityRecord), {"occurred_at__year": 2019, "occurred_at__month": 5}
    )

    assert len(year.context["cl"].result_list) == 2
    assert len(_choices(year)) == 3  # March, April (empty) and May
    assert [c["title"] for c in _choices(month)][-1].startswith(("5月31日", "May 31", "31"))


def _choices(response) -> list[dict]:
    from portal.templatetags.admin_scale import date_hierarchy_by_range

    return date_hierarchy_by_range(response.context["cl"])["choices"]


def _queries(client, model) -> list[dict]:
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(_changelist(model))
    return captured.captured_queries


def test_the_employer_filter_lists_only_the_chosen_employer(world, superuser, client):
    filed = world.ledgers
    chosen = filed.tasks[0].employer
    others = EmployerFactory.create_batch(3)
    client.force_login(superuser)

    plain = client.get(_changelist(ConsentEvent))
    filtered = client.get(_changelist(ConsentEvent), {"employer__id__exact": chosen.pk})

    assert all(e.name not in plain.content.decode() for e in others)
    rows = filtered.context["cl"].result_list
    assert rows and {r.employer_id for r in rows} == {chosen.pk}
    assert chosen.name in filtered.content.decode()


def test_company_tasks_are_listed_newest_request_first(world, superuser, client):
    world.filed  # noqa: B018 - a request passed on to its companies
    client.force_login(superuser)

    response = client.get(_changelist(RecipientTask))

    rows = list(response.context["cl"].result_list)
    expected = RecipientTask.objects.order_by("-request_id", "-employer_id")
    assert len(rows) > 1
    assert [t.pk for t in rows] == [t.pk for t in expected]


def _searched(client, model, q: str) -> set[int]:
    response = client.get(_changelist(model), {"q": q})
    assert response.status_code == 200
    return {row.pk for row in response.context["cl"].result_list}


def test_a_ledger_is_searched_by_its_student_and_company_through_their_keys(superuser, client):
    ann = UserFactory(email="ann.sato@example.jp", display_name="佐藤 杏")
    annie = UserFactory(email="xann.sato@example.jp", display_name="Annie")
    bob = UserFactory(email="bob@example.jp", display_name="Bob")
    acme = EmployerFactory(name="Acme 商事", name_en="Acme Trading")
    ann_at_acme = ActivityRecordFactory(student=ann, employer=acme)
    annie_record = ActivityRecordFactory(student=annie)
    bob_at_acme = ActivityRecordFactory(student=bob, employer=acme)
    bob_record = ActivityRecordFactory(student=bob)
    client.force_login(superuser)

    # "contains", case-insensitively, in the student's or the company's fields
    assert _searched(client, ActivityRecord, "ANN.SATO") == {ann_at_acme.pk, annie_record.pk}
    assert _searched(client, ActivityRecord, "trading") == {ann_at_acme.pk, bob_at_acme.pk}
    assert _searched(client, ActivityRecord, "佐藤") == {ann_at_acme.pk}
    # every word must match somewhere
    assert _searched(client, ActivityRecord, "bob acme") == {bob_at_acme.pk}
    # the pseudonymous id exactly; a word that is no UUID matches no id
    assert _searched(client, ActivityRecord, str(bob.public_id)) == {bob_at_acme.pk, bob_record.pk}
    assert _searched(client, ActivityRecord, "nobody") == set()
    # a whole email address is that student's (by the unique index), not also the
    # addresses that contain it
    assert _searched(client, ActivityRecord, "ann.sato@example.jp") == {ann_at_acme.pk}
    assert _searched(client, User, "ann.sato@example.jp") == {ann.pk}
    assert _searched(client, User, "sato@example") == {ann.pk, annie.pk}


def test_a_request_and_its_timeline_are_found_by_reference(world, superuser, client):
    from disclosure.models import DataRequest, RequestEvent

    request = world.ledgers.tasks[0].request
    client.force_login(superuser)

    assert _searched(client, DataRequest, request.reference) == {request.pk}
    assert _searched(client, DataRequest, request.student.email) == set(
        DataRequest.objects.filter(student=request.student).values_list("pk", flat=True)
    )
    events = _searched(client, RequestEvent, request.reference)
    assert events and events == set(request.events.values_list("pk", flat=True))
    tasks = _searched(client, RecipientTask, request.reference)
    assert tasks == set(request.tasks.values_list("pk", flat=True))


def test_a_short_term_without_case_is_searched_without_upper():
    from portal.shared.admin_search import search_q

    def lookup(term):
        return str(search_q(User, ["display_name"], term)).split("'")[1]

    # Two kanji: no trigram index serves them, and LIKE without UPPER() reads the table faster.
    assert lookup("佐藤") == "display_name__contains"
    # Three characters, or letters with a case: the trigram index of UPPER(...) serves them.
    assert lookup("佐藤 杏") == "display_name__icontains"
    assert lookup("an") == "display_name__icontains"
