"""Deep pages of the large lists (issue 20): found by position, never by skipping rows with a
large OFFSET; numbered pages stop at MAX_PAGES; big counts stop at COUNT_UP_TO."""

import re
from datetime import datetime, timedelta
from html import unescape
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.contrib import admin
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from portal.models import ActivityRecord, User
from portal.shared import keyset, pagination
from tests.factories import ActivityRecordFactory, UserFactory

pytestmark = pytest.mark.django_db
TOKYO = ZoneInfo("Asia/Tokyo")
PER_PAGE = 10
URL = "admin:portal_activityrecord_changelist"


@pytest.fixture
def records(monkeypatch):
    """45 activity records, by time then id; five share each time, so ties cross the pages'
    edges (a page of 10 starts in the middle of a second)."""
    records_admin = admin.site._registry[ActivityRecord]
    monkeypatch.setattr(records_admin, "list_per_page", PER_PAGE)
    monkeypatch.setattr(records_admin, "ordering", ["-occurred_at"])
    start = datetime(2019, 3, 1, 9, tzinfo=TOKYO)
    student = UserFactory()
    made = [
        ActivityRecordFactory(student=student, occurred_at=start + timedelta(seconds=n // 5))
        for n in range(45)
    ]
    # The list's order: newest first, then the higher id first (the admin's -pk).
    return sorted(made, key=lambda r: (r.occurred_at, r.pk), reverse=True)


def _page(client, url: str):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    return response, captured.captured_queries


def _ids(response) -> list[int]:
    return [row.pk for row in response.context["cl"].result_list]


def _links(response) -> dict:
    return response.context["cl"].keyset


def _largest_offset(queries) -> int:
    return max([int(n) for q in queries for n in re.findall(r"OFFSET (\d+)", q["sql"])] or [0])


def test_next_walks_every_row_once_in_order_without_offset(superuser, client, records):
    client.force_login(superuser)
    base = reverse(URL)

    response, queries = _page(client, base)
    seen = _ids(response)
    pages = 1
    while (link := _links(response)["next_url"]) is not None:
        response, more = _page(client, base + link)
        queries += more
        seen += _ids(response)
        pages += 1

    assert seen == [r.pk for r in records]
    assert pages == 5
    assert _largest_offset(queries) == 0


def test_previous_walks_back_to_the_first_page_with_the_same_rows(superuser, client, records):
    client.force_login(superuser)
    base = reverse(URL)
    forward = []
    response, _ = _page(client, base)
    forward.append(_ids(response))
    while (link := _links(response)["next_url"]) is not None:
        response, _ = _page(client, base + link)
        forward.append(_ids(response))

    backward = [_ids(response)]
    while (link := _links(response)["previous_url"]) is not None:
        response, _ = _page(client, base + link)
        backward.append(_ids(response))

    # The last page is short (5 rows); walking back, each page is the one seen going forward.
    assert backward[::-1] == forward
    assert _links(response)["first_url"] is None


def test_the_last_page_reads_the_order_from_its_other_end(superuser, client, records):
    client.force_login(superuser)

    response, queries = _page(client, reverse(URL) + "?p=last")

    assert _ids(response) == [r.pk for r in records[-PER_PAGE:]]
    assert _links(response)["next_url"] is None
    assert _links(response)["previous_url"] is not None
    assert _largest_offset(queries) == 0
    previous, _ = _page(client, reverse(URL) + _links(response)["previous_url"])
    assert _ids(previous) == [r.pk for r in records[-2 * PER_PAGE : -PER_PAGE]]


def test_previous_near_the_start_shows_the_first_page_full(superuser, client, records):
    client.force_login(superuser)
    # A position three rows in: fewer than a page lies before it.
    position = keyset.position_token([records[3].occurred_at, records[3].pk])

    response, _ = _page(client, reverse(URL) + "?" + _query(p=keyset.BEFORE + position))

    assert _ids(response) == [r.pk for r in records[:PER_PAGE]]
    assert _links(response)["previous_url"] is None


def test_a_page_link_carries_its_position_and_keeps_the_filters(superuser, client, records):
    client.force_login(superuser)
    kind = records[0].kind

    first, _ = _page(client, reverse(URL) + "?" + _query(kind__exact=kind))
    link = _links(first)["next_url"]
    second, _ = _page(client, reverse(URL) + link)

    params = parse_qs(urlsplit(link).query)
    assert params["kind__exact"] == [kind]
    assert params["p"][0].startswith(keyset.AFTER)
    # Every other link of the page (filters, dates, sorting) starts again from the top.
    html = re.sub(r'<p class="paginator">.*?</p>', "", second.content.decode(), flags=re.S)
    others = re.findall(r'href="(\?[^"]*)"', html)
    assert any("occurred_at__year" in href for href in others)
    assert not any("p" in parse_qs(urlsplit(unescape(href)).query) for href in others)


def test_a_numbered_page_past_the_limit_shows_the_last_numbered_one_and_says_so(
    superuser, client, records, monkeypatch
):
    monkeypatch.setattr(keyset, "MAX_PAGES", 3)
    client.force_login(superuser)

    response, queries = _page(client, reverse(URL) + "?p=1000")

    assert _ids(response) == [r.pk for r in records[2 * PER_PAGE : 3 * PER_PAGE]]
    assert _largest_offset(queries) <= (3 - 1) * PER_PAGE
    assert _links(response)["capped"]
    assert "Pages are numbered up to 3" in response.content.decode()


@pytest.mark.parametrize(
    "position", ["after:nonsense", 'after:["x",1]', "before:[1]", "after:" + "9" * 600]
)
def test_a_broken_position_shows_the_first_page(superuser, client, records, position):
    client.force_login(superuser)

    response, _ = _page(client, reverse(URL) + "?" + _query(p=position))

    assert _ids(response) == [r.pk for r in records[:PER_PAGE]]


def test_an_order_across_a_relation_numbers_its_pages_up_to_the_limit(
    superuser, client, records, monkeypatch
):
    monkeypatch.setattr(keyset, "MAX_PAGES", 2)
    monkeypatch.setattr(pagination, "MAX_PAGES", 2)
    client.force_login(superuser)
    # The list sorted by its "student" column: the student's own order, across the relation.
    column = admin.site._registry[ActivityRecord].list_display.index("student")

    response, queries = _page(client, reverse(URL) + "?" + _query(o=column, p=5))

    assert response.context["cl"].keyset is None
    assert response.context["cl"].paginator.num_pages == 2
    assert len(_ids(response)) == PER_PAGE
    assert _largest_offset(queries) <= PER_PAGE
    assert "Only the first 2 pages are numbered" in response.content.decode()


def test_a_big_filtered_count_stops_at_its_bound(superuser, client, records, monkeypatch):
    monkeypatch.setattr(pagination, "COUNT_UP_TO", 20)
    client.force_login(superuser)

    response, queries = _page(
        client, reverse(URL) + "?" + _query(student__id__exact=records[0].student_id)
    )

    assert response.context["cl"].result_count == 20
    assert response.context["cl"].paginator.at_least
    assert "more than 20" in response.content.decode()
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 21" in sql for sql in counts)


def test_the_students_list_pages_by_email(superuser, client, monkeypatch):
    monkeypatch.setattr(admin.site._registry[User], "list_per_page", 3)
    UserFactory.create_batch(7)
    client.force_login(superuser)
    base = reverse("admin:portal_user_changelist")
    expected = list(User.objects.order_by("email").values_list("pk", flat=True))

    response, _ = _page(client, base)
    seen = _ids(response)
    while (link := _links(response)["next_url"]) is not None:
        response, _ = _page(client, base + link)
        seen += _ids(response)

    assert seen == expected


def _query(**params) -> str:
    return urlencode(params)


# The admin's lists that may number their pages: tables that staff fill by hand and that do
# not grow with the students, companies or requests.
NUMBERED_LISTS = {
    "auth.Group",
    "consent.ApiClient",
    "consent.PolicyVersion",
    "consent.Purpose",
    "disclosure.DataSource",
    "disclosure.Webhook",
    "inferences.InferenceModel",
}


@pytest.mark.parametrize(
    "label",
    sorted(m._meta.label for m in admin.site._registry if m._meta.label not in NUMBERED_LISTS),
)
def test_every_list_that_grows_pages_by_position_and_counts_by_estimate(label):
    model = next(m for m in admin.site._registry if m._meta.label == label)
    model_admin = admin.site._registry[model]

    assert issubclass(model_admin.get_changelist(None), keyset.KeysetChangeList)
    assert model_admin.paginator is pagination.EstimatedCountPaginator
    assert model_admin.show_full_result_count is False


def test_the_email_addresses_list_pages_by_position_without_offset(superuser, client, monkeypatch):
    from allauth.account.models import EmailAddress

    monkeypatch.setattr(admin.site._registry[EmailAddress], "list_per_page", 2)
    for n in range(5):
        UserFactory(email=f"address-{n}@example.jp")
    url = reverse("admin:account_emailaddress_changelist")
    client.force_login(superuser)

    first, _queries = _page(client, url)
    last, queries = _page(client, url + "?" + urlencode({"p": keyset.LAST}))

    assert _links(first)["next_url"] and _links(last)["previous_url"]
    assert _largest_offset(queries) == 0
    addresses = list(EmailAddress.objects.order_by("-pk").values_list("pk", flat=True))
    assert _ids(first) == addresses[:2]
    assert _ids(last) == addresses[-2:]
