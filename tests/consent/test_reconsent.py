from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from consent.models import PolicyAcceptance, Screen
from tests.factories import PurposeFactory, UserFactory, accept, published_version

pytestmark = pytest.mark.django_db

DATA_RIGHTS_PAGES = ["consent:policy_list"]


@pytest.fixture
def student_with_old_acceptance():
    old = published_version(label="2018.04", at=timezone.now() - timedelta(days=400))
    student = UserFactory()
    accept(student, old, at=timezone.now() - timedelta(days=399))
    return student


def test_a_material_version_asks_for_re_acceptance_on_the_next_visit(
    client, student_with_old_acceptance
):
    published_version(
        label="2019.03",
        material=True,
        purposes=[PurposeFactory(code="account"), PurposeFactory(code="behaviour_analysis")],
    )
    client.force_login(student_with_old_acceptance)

    response = client.get(reverse("dashboard"), follow=True)

    assert response.redirect_chain[0][0].startswith(reverse("consent:accept"))
    assert 'name="screen" value="reconsent"' in response.content.decode()


def test_re_acceptance_is_recorded_with_the_reconsent_screen(client, student_with_old_acceptance):
    new = published_version(label="2019.03", material=True)
    client.force_login(student_with_old_acceptance)
    client.post(
        reverse("consent:accept"),
        {
            "version": new.pk,
            "language": "ja",
            "text_sha256": new.text_sha256_ja,
            "screen": "reconsent",
            "confirm": "on",
        },
    )
    latest = PolicyAcceptance.objects.latest_for(student_with_old_acceptance)
    assert latest.version == new
    assert latest.screen == Screen.RECONSENT
    assert client.get(reverse("dashboard")).status_code == 200


def test_a_non_material_version_does_not_interrupt(client, student_with_old_acceptance):
    published_version(label="2018.10", material=False)
    client.force_login(student_with_old_acceptance)
    response = client.get(reverse("dashboard"))
    assert response.status_code == 200  # the dashboard itself, not a redirect


@pytest.mark.parametrize("url_name", DATA_RIGHTS_PAGES)
def test_data_rights_pages_stay_reachable_while_re_acceptance_is_pending(
    client, student_with_old_acceptance, url_name
):
    published_version(label="2019.03", material=True)
    client.force_login(student_with_old_acceptance)
    response = client.get(reverse(url_name))
    assert response.status_code == 200


def test_own_acceptance_pages_and_receipts_stay_reachable_while_re_acceptance_is_pending(
    client, student_with_old_acceptance
):
    published_version(label="2019.03", material=True)
    acceptance = PolicyAcceptance.objects.get(student=student_with_old_acceptance)
    client.force_login(student_with_old_acceptance)
    for name in ("acceptance_detail", "acceptance_diff", "receipt_json"):
        response = client.get(reverse(f"consent:{name}", args=[acceptance.receipt_id]))
        assert response.status_code == 200, name


def test_account_pages_stay_reachable_while_re_acceptance_is_pending(
    client, student_with_old_acceptance
):
    published_version(label="2019.03", material=True)
    client.force_login(student_with_old_acceptance)
    assert client.get(reverse("account_email")).status_code == 200
    assert client.get(reverse("account_logout")).status_code == 200


def test_staff_are_never_asked_to_accept(client):
    from tests.factories import StaffFactory

    published_version()
    client.force_login(StaffFactory())
    assert client.get(reverse("admin:index")).status_code == 200


def test_what_is_due_follows_the_versions_in_force_and_the_newest_acceptance(
    django_assert_num_queries,
):
    from consent.models import PolicyVersion
    from consent.services import policy_acceptance_due

    student = UserFactory()
    assert policy_acceptance_due(student=student) is None  # nothing published yet

    now = timezone.now()
    account = PurposeFactory(code="account")
    old = published_version(
        label="2018.04",
        purposes=[account],
        at=now - timedelta(days=400),
        effective_at=now - timedelta(days=400),
    )
    due = policy_acceptance_due(student=student)
    assert (due.version, due.screen) == (old, Screen.SIGNUP)

    accept(student, old, at=now - timedelta(days=399))
    with django_assert_num_queries(1):  # nothing due: one query, the version not loaded
        assert policy_acceptance_due(student=student) is None

    published_version(
        label="2018.10",
        material=False,
        purposes=[account],
        at=now - timedelta(days=100),
        effective_at=now - timedelta(days=100),
    )
    assert policy_acceptance_due(student=student) is None  # not material: no interruption

    # A material version published ahead of its date is not due until it takes effect.
    ahead = published_version(
        label="2019.03",
        material=True,
        purposes=[account, PurposeFactory(code="behaviour_analysis")],
        effective_at=now + timedelta(days=10),
    )
    assert policy_acceptance_due(student=student) is None

    PolicyVersion.objects.filter(pk=ahead.pk).update(effective_at=now - timedelta(minutes=1))
    due = policy_acceptance_due(student=student)
    assert (due.version, due.screen) == (ahead, Screen.RECONSENT)

    accept(student, ahead, screen=Screen.RECONSENT)
    assert policy_acceptance_due(student=student) is None
