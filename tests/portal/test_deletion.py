"""`delete_set` (portal/shared/deletion.py): a set of rows goes with what each relation to them
asks, in a number of statements that does not grow with the rows, and where it cannot do so
safely it leaves the work to Django's own delete()."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import ProtectedError
from django.db.models.signals import pre_delete
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from disclosure.models import Correction, DataRequest
from inferences.models import Inference, InferenceDispute
from portal.models import ActivityRecord, Employer
from portal.shared.deletion import delete_set
from tests.factories import EmployerFactory, InferenceFactory, UserFactory

pytestmark = pytest.mark.django_db


def _statements(queries) -> list[str]:
    return [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE", "BEGIN"))]


def _correction(student, **about) -> Correction:
    request = DataRequest.objects.create(
        student=student,
        kind=DataRequest.Kind.CORRECTION,
        reference=f"R-DEL-{DataRequest.objects.count()}",
        due_at=timezone.now() + timedelta(days=30),
    )
    return Correction.objects.create(
        request=request, target_label="その記録", wrong="違う", outcome="disputed", **about
    )


def _records(student, count: int) -> None:
    ActivityRecord.objects.bulk_create(
        ActivityRecord(student=student, kind="page_view", occurred_at=timezone.now())
        for _ in range(count)
    )


@pytest.mark.parametrize("count", [3, 450])
def test_records_a_correction_points_at_go_in_three_statements_however_many(count):
    student, other = UserFactory(), UserFactory()
    _records(student, count)
    _records(other, 2)
    disputed = ActivityRecord.objects.filter(student=student).first()
    correction = _correction(student, target="activity", activity=disputed)
    elsewhere = _correction(other, target="activity", activity=other.activity_records.first())

    with CaptureQueriesContext(connection) as queries:
        deleted = delete_set(ActivityRecord.objects.filter(student=student))

    assert deleted == count
    statements = _statements(queries)
    # Whether there are any; the correction's link nulled; the records deleted.
    assert [s.split()[0] for s in statements] == ["SELECT", "UPDATE", "DELETE"]
    assert not ActivityRecord.objects.filter(student=student).exists()
    assert ActivityRecord.objects.filter(student=other).count() == 2
    correction.refresh_from_db()
    elsewhere.refresh_from_db()
    assert correction.activity_id is None and correction.target_label == "その記録"
    assert elsewhere.activity_id is not None


def test_a_cascade_goes_below_in_set_based_statements_and_counts_only_the_rows_asked():
    student = UserFactory()
    first = InferenceFactory(student=student)
    results = [first] + [
        InferenceFactory(student=student, sender=first.sender, model=first.model) for _ in range(5)
    ]
    disputes = [
        InferenceDispute.objects.create(
            inference=result, student=student, statement="違う", language="ja"
        )
        for result in results[:4]
    ]
    correction = _correction(student, target="inference", inference=first, dispute=disputes[0])
    kept = InferenceFactory(sender=first.sender, model=first.model)

    with CaptureQueriesContext(connection) as queries:
        deleted = delete_set(Inference.objects.filter(student=student))

    assert deleted == 6  # the four disputes that went with them are not counted
    # Whether there are any, then one statement a relation, whatever the count: the
    # disputes' correction link, the disputes, the results' correction link, the results
    # (their provision stays: it points the other way).
    assert len(_statements(queries)) == 5
    assert list(Inference.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not InferenceDispute.objects.exists()
    correction.refresh_from_db()
    assert (correction.inference_id, correction.dispute_id) == (None, None)


def test_nothing_to_delete_is_one_look():
    student = UserFactory()
    with CaptureQueriesContext(connection) as queries:
        assert delete_set(Inference.objects.filter(student=student)) == 0
    assert len(_statements(queries)) == 1


def test_what_is_protected_is_left_to_django_and_refused():
    employer = EmployerFactory()
    InferenceFactory(employer=employer)

    with pytest.raises(ProtectedError):
        delete_set(Employer.objects.filter(pk=employer.pk))

    assert Employer.objects.filter(pk=employer.pk).exists()


def test_a_delete_signal_is_heard_for_each_row_as_with_django():
    student = UserFactory()
    _records(student, 3)
    heard = []

    def receiver(sender, instance, **kwargs):
        heard.append(instance.pk)

    pre_delete.connect(receiver, sender=ActivityRecord)
    try:
        deleted = delete_set(ActivityRecord.objects.filter(student=student))
    finally:
        pre_delete.disconnect(receiver, sender=ActivityRecord)

    assert deleted == 3 and len(heard) == 3
    assert not ActivityRecord.objects.filter(student=student).exists()
