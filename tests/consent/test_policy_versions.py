import pytest
from django.db import transaction
from django.urls import reverse

from consent.models import PolicyVersion, PublishedVersionImmutable
from consent.services import policy_publish, policy_update_draft
from tests.factories import PolicyVersionFactory, PurposeFactory, StaffFactory, published_version

pytestmark = pytest.mark.django_db


def test_publishing_fixes_the_hash_of_each_language():
    version = published_version()
    assert version.is_published
    assert version.text_sha256_ja == version.text("ja").sha256
    assert version.text_sha256_en == version.text("en").sha256
    assert version.text_sha256_ja != version.text_sha256_en


def test_a_published_version_refuses_a_change_through_the_model():
    version = published_version()
    version.body_ja = "書き換えられた本文"
    with pytest.raises(PublishedVersionImmutable):
        version.save()
    assert PolicyVersion.objects.get(pk=version.pk).body_ja != "書き換えられた本文"


def test_a_published_version_cannot_be_deleted():
    version = published_version()
    with pytest.raises(PublishedVersionImmutable):
        version.delete()
    assert PolicyVersion.objects.filter(pk=version.pk).exists()


def test_a_published_version_refuses_a_change_of_purposes():
    version = published_version()
    extra = PurposeFactory(code="behaviour_analysis")
    with pytest.raises(PublishedVersionImmutable), transaction.atomic():
        version.purposes.add(extra)
    assert list(version.purposes.values_list("code", flat=True)) == ["account"]


def test_a_published_version_refuses_a_change_through_the_service():
    version = published_version()
    with pytest.raises(PublishedVersionImmutable):
        policy_update_draft(version=version, body_en="Rewritten")


def test_a_draft_can_be_changed_through_the_service():
    draft = PolicyVersionFactory()
    policy_update_draft(version=draft, body_en="1. New wording\r\nSecond line  ")
    draft.refresh_from_db()
    assert draft.body_en == "1. New wording\nSecond line"


def test_publishing_twice_is_refused():
    version = published_version()
    with pytest.raises(PublishedVersionImmutable):
        policy_publish(version=version, by=None)


def test_a_version_that_adds_a_purpose_is_material_even_if_not_ticked():
    published_version(purposes=[PurposeFactory(code="account")])
    version = published_version(
        material=False,
        purposes=[PurposeFactory(code="account"), PurposeFactory(code="behaviour_analysis")],
    )
    assert version.material


def test_a_version_with_the_same_purposes_keeps_its_material_flag():
    published_version()
    version = published_version(material=False)
    assert not version.material


def test_the_admin_refuses_to_change_a_published_version(client):
    version = published_version()
    client.force_login(StaffFactory())
    url = reverse("admin:consent_policyversion_change", args=[version.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="body_ja"' not in page.content.decode()  # every field read-only

    response = client.post(url, {"label": version.label, "body_ja": "書き換え"}, follow=True)

    assert "can never change" in response.content.decode() or "変更" in response.content.decode()
    assert PolicyVersion.objects.get(pk=version.pk).body_ja == version.body_ja


def test_the_admin_previews_and_publishes_a_draft(client):
    published_version(label="2026.01")
    draft = PolicyVersionFactory(label="2026.02", body_ja="1. 新しい条項\n行動履歴を分析します。")
    client.force_login(StaffFactory())

    preview = client.get(reverse("admin:consent_policyversion_preview", args=[draft.pk]))
    assert preview.status_code == 200
    assert "行動履歴を分析します。" in preview.content.decode()

    response = client.post(reverse("admin:consent_policyversion_publish", args=[draft.pk]))

    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.is_published
    assert draft.text_sha256_ja == draft.text("ja").sha256


def test_the_admin_shows_who_accepted_which_version_read_only(client):
    from tests.factories import UserFactory, accept

    version = published_version()
    student = UserFactory(email="who@example.jp")
    acceptance = accept(student, version)
    client.force_login(StaffFactory())
    listing = client.get(reverse("admin:consent_policyacceptance_changelist"))
    assert "who@example.jp" in listing.content.decode()
    detail = client.get(reverse("admin:consent_policyacceptance_change", args=[acceptance.pk]))
    assert detail.status_code == 200
    assert 'name="screen"' not in detail.content.decode()
    assert (
        client.post(
            reverse("admin:consent_policyacceptance_delete", args=[acceptance.pk]), {"post": "yes"}
        ).status_code
        == 403
    )


def test_the_versions_list_counts_each_versions_acceptances_and_sorts_by_them(client):
    from tests.factories import UserFactory, accept

    older, newer = published_version(label="2018.04"), published_version(label="2019.03")
    unaccepted = PolicyVersionFactory(label="2020.draft")
    for n in range(3):
        accept(UserFactory(), newer)
        if n:
            accept(UserFactory(), older)
    client.force_login(StaffFactory())

    response = client.get(reverse("admin:consent_policyversion_changelist"), {"o": "-6"})

    versions = list(response.context["cl"].result_list)
    assert [(v.label, v.acceptance_total) for v in versions] == [
        ("2019.03", 3),
        ("2018.04", 2),
        ("2020.draft", 0),
    ]
    assert unaccepted in versions
