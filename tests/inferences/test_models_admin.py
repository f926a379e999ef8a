"""Registering a model: a Privacy officer activates a complete draft (audited), after which
the model never changes, whoever asks; an incomplete draft is refused with the reason."""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AuditEntry
from backoffice.roles import PRIVACY_OFFICER
from inferences.models import ActiveModelImmutable
from inferences.services import inference_model_activate
from tests.factories import PurposeFactory, StaffFactory, inference_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def officer(client):
    staff = StaffFactory(is_superuser=False)
    staff.groups.add(Group.objects.get(name=PRIVACY_OFFICER))
    client.force_login(staff)
    return staff


def test_an_officer_activates_a_draft_and_it_is_final_from_then_on(client, officer):
    draft = inference_model(active=False)
    page = client.get(reverse("admin:inferences_inferencemodel_change", args=[draft.pk]))
    activate = reverse("admin:inferences_inferencemodel_activate", args=[draft.pk])
    assert activate in page.content.decode()

    response = client.post(activate, {"reason": "Reviewed by the privacy committee"})

    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.is_active and draft.activated_by == officer
    entry = AuditEntry.objects.get(name="inferences.activate_inferencemodel")
    assert (entry.actor, entry.reason) == (officer, "Reviewed by the privacy committee")
    # Final: the form is read-only, a forged POST changes nothing, the model refuses.
    url = reverse("admin:inferences_inferencemodel_change", args=[draft.pk])
    page = client.get(url).content.decode()
    assert activate not in page and 'name="never_en"' not in page
    client.post(url, {"never_en": "Anything goes"})
    draft.refresh_from_db()
    assert draft.never_en == "Never in a pass/fail decision"
    draft.never_en = "Anything goes"
    with pytest.raises(ActiveModelImmutable):
        draft.save()
    with pytest.raises(ActiveModelImmutable):
        inference_model_activate(model=draft, by=officer)


def test_a_draft_the_student_could_not_read_in_english_is_not_activated(client, officer):
    draft = inference_model(active=False, never_en="", number_max=None)
    activate = reverse("admin:inferences_inferencemodel_activate", args=[draft.pk])

    response = client.post(activate, {"reason": "Let's go"}, follow=True)

    draft.refresh_from_db()
    assert not draft.is_active
    assert "日本語と英語" in response.content.decode()  # the reason is said
    with pytest.raises(ValidationError) as refused:
        inference_model_activate(model=draft, by=officer)
    assert {"never_en", "number_max"} <= set(refused.value.message_dict)


def test_a_model_serves_only_a_purpose_that_needs_consent_per_employer(officer):
    draft = inference_model(purpose=PurposeFactory(code="account"), active=False)
    with pytest.raises(ValidationError) as refused:
        inference_model_activate(model=draft, by=officer)
    assert "purpose" in refused.value.message_dict


def test_a_label_model_needs_each_label_once(officer):
    draft = inference_model(
        active=False, output_kind="label", labels="A\nA", number_min=None, number_max=None
    )
    with pytest.raises(ValidationError) as refused:
        draft.full_clean()
    assert "labels" in refused.value.message_dict
    with pytest.raises(ValidationError):
        inference_model_activate(model=draft, by=officer)
