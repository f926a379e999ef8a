"""The impact report proves that no result was made for a purpose without a grant at the time:
the count is zero for what the intake let in, and a row written around the intake (inserted
directly) shows, with the query that found it."""

from datetime import timedelta

import pytest
from django.urls import reverse

from consent.models import Purpose
from consent.services import consent_withdraw
from inferences.reports import inferences_without_grant, inferences_without_grant_sql
from tests.factories import EmployerFactory, InferenceFactory, StaffFactory

pytestmark = pytest.mark.django_db


def impact(client, purpose):
    client.force_login(StaffFactory())
    return client.get(reverse("admin:consent_purpose_impact", args=[purpose.pk]))


def test_what_the_intake_let_in_counts_zero_and_the_page_says_so(client, scored):
    assert not inferences_without_grant(purpose=scored.analysis).exists()

    response = impact(client, scored.analysis)

    assert response.context["inferences_without_grant"] == 0
    assert "その時点で同意がないまま作られた推測結果" in response.content.decode()


def test_a_row_inserted_around_the_intake_without_a_grant_shows(client, scored):
    # A company the student never said yes to: written straight to the table.
    stranger = EmployerFactory(name="株式会社よその会社")
    row = InferenceFactory(
        student=scored.student, model=scored.model, employer=stranger, sender=scored.pipeline
    )

    assert list(inferences_without_grant(purpose=scored.analysis)) == [row]
    response = impact(client, scored.analysis)
    assert response.context["inferences_without_grant"] == 1
    page = response.content.decode()
    assert "株式会社よその会社" in page and "NOT EXISTS" in page


def test_a_row_made_before_the_grant_or_after_a_withdrawal_shows(scored):
    grant = scored.student.consent_events.get(employer=scored.aoba, purpose=scored.analysis)
    before = InferenceFactory(
        student=scored.student,
        model=scored.model,
        employer=scored.aoba,
        sender=scored.pipeline,
        made_at=grant.occurred_at - timedelta(days=1),
    )
    # Within the intake's clock skew of the grant: the intake accepts it, so does the report.
    InferenceFactory(
        student=scored.student,
        model=scored.model,
        employer=scored.aoba,
        sender=scored.pipeline,
        made_at=grant.occurred_at - timedelta(minutes=4),
    )
    event = consent_withdraw(student=scored.student, employer=scored.kaede, purpose=scored.analysis)
    after = InferenceFactory(
        student=scored.student,
        model=scored.model,
        employer=scored.kaede,
        sender=scored.pipeline,
        made_at=event.occurred_at + timedelta(seconds=1),
    )

    assert set(inferences_without_grant(purpose=scored.analysis)) == {before, after}


def test_another_purposes_report_counts_only_its_own_models(scored):
    InferenceFactory(
        student=scored.student,
        model=scored.model,
        employer=EmployerFactory(),
        sender=scored.pipeline,
    )
    other = Purpose.objects.exclude(pk=scored.analysis.pk).get(requires_opt_in=True)

    assert inferences_without_grant(purpose=scored.analysis).count() == 1
    assert not inferences_without_grant(purpose=other).exists()
    assert f"= {other.pk}" in inferences_without_grant_sql(purpose=other)
