from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from consent.models import PolicyVersion, Screen
from tests.factories import UserFactory, accept, published_version

pytestmark = pytest.mark.django_db

V1_BODY = (
    "1. 取得する情報\n氏名とメールアドレスを取得します。\n2. 利用目的\n求人情報の提供に利用します。"
)
V2_BODY = (
    "1. 取得する情報\n氏名とメールアドレスを取得します。\n2. 利用目的\n求人情報の提供に利用します。\n"
    "3. 行動履歴の分析\n同意いただいた企業ごとに、閲覧履歴を分析します。"
)


def _history(student, count):
    """`count` versions, each accepted by the student a day after it took effect."""
    start = timezone.now() - timedelta(days=10 * count)
    acceptances = []
    for index in range(count):
        at = start + timedelta(days=10 * index)
        version = published_version(
            label=f"20{index:02d}.01", at=at, body_ja=V1_BODY + f"\n改定{index}"
        )
        screen = Screen.SIGNUP if index == 0 else Screen.RECONSENT
        acceptances.append(accept(student, version, screen=screen, at=at + timedelta(days=1)))
    return acceptances


def test_every_accepted_version_is_listed_newest_first_with_screen_and_language(client):
    student = UserFactory()
    first, second, third = _history(student, 3)
    client.force_login(student)

    page = client.get(reverse("consent:policy_list")).content.decode()

    positions = [page.index(a.version.label) for a in (third, second, first)]
    assert positions == sorted(positions)
    assert first.get_screen_display() in page
    assert str(first.receipt_id) in page


def test_the_accepted_text_is_shown_verified(client):
    student = UserFactory()
    acceptance = accept(student, published_version(body_ja=V1_BODY))
    client.force_login(student)

    page = client.get(reverse("consent:acceptance_detail", args=[acceptance.receipt_id]))

    html = page.content.decode()
    assert "求人情報の提供に利用します。" in html
    assert 'class="notice success"' in html
    assert acceptance.text_sha256 in html


def test_a_text_that_no_longer_matches_its_hash_is_flagged(client):
    student = UserFactory()
    acceptance = accept(student, published_version(body_ja=V1_BODY))
    # Only a raw UPDATE can do this (the model refuses); the page must not hide it.
    PolicyVersion.objects.filter(pk=acceptance.version_id).update(body_ja="改ざんされた本文")
    client.force_login(student)

    html = client.get(
        reverse("consent:acceptance_detail", args=[acceptance.receipt_id])
    ).content.decode()

    assert 'class="notice error"' in html
    assert 'class="notice success"' not in html


def test_another_students_acceptance_answers_404(client):
    owner = UserFactory()
    acceptance = accept(owner, published_version())
    client.force_login(UserFactory())
    for name in ("acceptance_detail", "acceptance_diff", "receipt_pdf", "receipt_json"):
        assert (
            client.get(reverse(f"consent:{name}", args=[acceptance.receipt_id])).status_code == 404
        )


def test_the_diff_highlights_an_added_clause(client):
    student = UserFactory()
    earlier = timezone.now() - timedelta(days=30)
    title = "プライバシーポリシー"
    old = published_version(label="2018.10", title_ja=title, body_ja=V1_BODY, at=earlier)
    accept(student, old, at=earlier)
    new = published_version(label="2019.03", title_ja=title, body_ja=V2_BODY)
    newer = accept(student, new, screen=Screen.RECONSENT)
    client.force_login(student)

    html = client.get(reverse("consent:acceptance_diff", args=[newer.receipt_id])).content.decode()

    assert "2018.10" in html and "2019.03" in html
    added = html.split('class="diff-line added"')[1:]
    assert any(
        "同意いただいた企業ごとに、閲覧履歴を分析します。" in line.split("</li>")[0]
        for line in added
    )
    assert 'class="diff-line removed"' not in html


def test_the_first_acceptance_has_nothing_to_compare(client):
    student = UserFactory()
    acceptance = accept(student, published_version())
    client.force_login(student)
    response = client.get(reverse("consent:acceptance_diff", args=[acceptance.receipt_id]))
    assert response.status_code == 200
    assert 'class="diff"' not in response.content.decode()


@pytest.mark.parametrize("count", [1, 8])
def test_the_list_runs_a_fixed_number_of_queries(client, django_assert_max_num_queries, count):
    student = UserFactory()
    _history(student, count)
    client.force_login(student)
    # session, user, the acceptances, the two "is anything due" queries, and the list.
    with django_assert_max_num_queries(7):
        assert client.get(reverse("consent:policy_list")).status_code == 200


def test_the_public_version_page_compares_any_two_versions(client):
    earlier = timezone.now() - timedelta(days=30)
    published_version(label="2018.10", body_ja=V1_BODY, at=earlier)
    published_version(label="2019.03", body_ja=V2_BODY)
    html = client.get(
        reverse("consent:version_text", args=["2019.03"]), {"compare": "2018.10", "lang": "ja"}
    ).content.decode()
    assert 'class="diff-line added"' in html
    assert client.get(reverse("consent:version_text", args=["current"]))["Location"].endswith(
        "/2019.03/"
    )
