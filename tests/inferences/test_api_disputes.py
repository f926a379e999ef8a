"""GET /api/v1/inferences/disputes: the change feed of disputed results. A company learns that
a result it was handed is disputed, and then the outcome; never of results it was not handed,
nor the student's words."""

from datetime import timedelta

import pytest
from django.utils import timezone

from consent.api.keys import api_key_create
from inferences import api as inferences_api
from inferences.services import inference_dispute, inference_dispute_answer
from tests.factories import StaffFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/inferences/disputes"


@pytest.fixture(autouse=True)
def settled(monkeypatch):
    monkeypatch.setattr(inferences_api, "DISPUTES_SETTLE", timedelta(0))


def feed(client, key, **query):
    response = client.get(URL, query, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def disputed(scored):
    """r-1 (handed to Aoba) disputed and answered; r-2 (kept, Aoba) and r-3 (Kaede) disputed."""
    staff = StaffFactory()
    first = inference_dispute(
        student=scored.student, inference=scored.results["r-1"], statement="第一志望です"
    )
    for source_id in ("r-2", "r-3"):
        inference_dispute(
            student=scored.student, inference=scored.results[source_id], statement="違う"
        )
    inference_dispute_answer(dispute=first, by=staff, outcome="upheld", answer="誤りでした")
    return scored


def test_a_company_reads_the_disputes_of_what_it_was_handed_and_the_outcome(client, disputed):
    key = api_key_create(name="Aoba HR", employer=disputed.aoba)[1]

    page = feed(client, key)

    assert [(c["event"], c["outcome"]) for c in page["changes"]] == [
        ("disputed", None),
        ("answered", "upheld"),
    ]
    result = page["changes"][0]["inference"]
    assert result["id"] == "r-1" and result["output"] == 81
    assert result["student"] == str(disputed.student.public_id)
    assert result["employer"] == disputed.aoba.pk and result["handed_over_at"]
    assert "第一志望" not in str(page) and "誤りでした" not in str(page)
    assert page["has_more"] is False


def test_another_company_reads_nothing_of_them(client, disputed):
    key = api_key_create(name="Kaede HR", employer=disputed.kaede)[1]

    assert feed(client, key)["changes"] == []  # r-3 was made for it but never handed over


def test_the_pipeline_reads_every_change_page_by_page(client, disputed):
    key = api_key_create(name="Pipeline")[1]
    seen, cursor = [], None
    while True:
        page = feed(client, key, limit=1, **({"cursor": cursor} if cursor else {}))
        seen += [(c["inference"]["id"], c["event"]) for c in page["changes"]]
        cursor = page["next"]
        if not page["has_more"]:
            break

    assert sorted(seen) == [
        ("r-1", "answered"),
        ("r-1", "disputed"),
        ("r-2", "disputed"),
        ("r-3", "disputed"),
    ]
    assert len(seen) == 4
    # Nothing new: the last cursor gives an empty page and stays.
    assert feed(client, key, cursor=cursor) == {"changes": [], "next": cursor, "has_more": False}


def test_a_cursor_is_only_for_the_key_it_was_given_to(client, disputed):
    mine = api_key_create(name="Pipeline")[1]
    other = api_key_create(name="Other")[1]
    cursor = feed(client, mine, limit=1)["next"]

    response = client.get(URL, {"cursor": cursor}, HTTP_AUTHORIZATION=f"Bearer {other}")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_cursor"


def test_a_change_waits_a_few_seconds_before_it_is_served(client, disputed, monkeypatch):
    monkeypatch.setattr(inferences_api, "DISPUTES_SETTLE", timedelta(seconds=5))
    key = api_key_create(name="Pipeline")[1]

    assert feed(client, key)["changes"] == []
    later = timezone.now() + timedelta(seconds=6)
    with monkeypatch.context() as m:
        m.setattr(inferences_api.timezone, "now", lambda: later)
        assert len(feed(client, key)["changes"]) == 4
