"""A result handed over to the employer is a provision of the student's data: the intake
records it (APPI Art. 29), relying on the student's grant of giving results to that company,
and links the result to it; without that grant the hand-over is refused (409)."""

import pytest
from django.utils import timezone

from consent.models import Provision
from consent.services import consent_withdraw
from disclosure.services import request_file
from inferences.models import Inference
from tests.inferences.conftest import send

pytestmark = pytest.mark.django_db


def test_the_result_handed_over_links_to_its_provision_record(scored):
    handed = scored.results["r-1"]

    provision = handed.provision
    assert provision is not None and provision.inference == handed
    assert (provision.student, provision.employer) == (scored.student, scored.aoba)
    assert provision.purpose == scored.provision
    grant = scored.student.consents.get(employer=scored.aoba, purpose=scored.provision)
    assert provision.consent_event_id == grant.event_id
    assert provision.provided_at == handed.handed_over_at
    assert provision.recorded_by == scored.pipeline
    assert "decline_likelihood 1.0" in provision.data_items
    assert "81" not in provision.data_items  # the output is never in the record
    # The results kept are not provisions.
    assert scored.results["r-2"].provision is None
    assert Provision.objects.count() == 1


def test_handing_over_without_the_students_consent_to_receive_results_is_refused(scored):
    at = timezone.now()
    refused = send(
        scored.pipeline, scored.student, scored.kaede, id="k-1", output=3, at=at, handed=True
    )

    assert (refused.status, refused.code) == (409, "no_handover_grant")
    assert not Inference.objects.filter(source_id="k-1").exists()
    assert Provision.objects.count() == 1


def test_a_withdrawal_of_the_provision_purpose_stops_the_next_hand_over(scored):
    consent_withdraw(student=scored.student, employer=scored.aoba, purpose=scored.provision)
    at = timezone.now()

    refused = send(
        scored.pipeline, scored.student, scored.aoba, id="a-9", output=9, at=at, handed=True
    )
    kept = send(scored.pipeline, scored.student, scored.aoba, id="a-10", output=9, at=at)

    assert refused.code == "no_handover_grant"
    assert kept.result == "stored"  # the analysis itself is still granted


def test_a_retried_hand_over_records_one_provision(scored):
    result = scored.results["r-1"]
    again = send(
        scored.pipeline,
        scored.student,
        scored.aoba,
        id="r-1",
        output=81,
        at=result.made_at,
        handed=True,
    )

    assert again.result == "duplicate"
    assert Provision.objects.count() == 1


def test_the_provision_record_stays_when_a_deletion_erases_the_result(
    scored, django_capture_on_commit_callbacks
):
    provision = scored.results["r-1"].provision
    with django_capture_on_commit_callbacks(execute=True):
        request_file(student=scored.student, kind="deletion")

    assert not Inference.objects.exists()
    assert Provision.objects.filter(pk=provision.pk).exists()  # kept by law, 3 years
