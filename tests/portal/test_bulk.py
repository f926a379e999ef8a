"""insert_rows and insert_values (portal/shared/bulk.py) store what bulk_create stores, field
for field."""

from datetime import timedelta

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone

from disclosure.models import DataRequest, RecipientTask
from portal.models import EmailMessage
from portal.shared.bulk import insert_rows, insert_values
from tests.factories import EmployerFactory, UserFactory

pytestmark = pytest.mark.django_db


def tasks(request, employers, now):
    # Some columns the same in every row, some differing, JSON among both, None among both.
    return [
        RecipientTask(
            request=request,
            employer=employer,
            reasons={"provisions": n, "live_grant": n % 2 == 0, "note": "100% 'quoted'"},
            created_at=now,
            changed_at=now,
            queued_at=now if n % 2 else None,
            statement="" if n % 3 else "a statement; with ' and %s",
        )
        for n, employer in enumerate(employers)
    ]


def a_request(student, now):
    return DataRequest.objects.create(
        reference=f"R-{DataRequest.objects.count()}",
        student=student,
        kind="deletion",
        submitted_at=now,
        due_at=now,
    )


def stored(objs):
    model = type(objs[0])
    rows = {row.pk: row for row in model.objects.filter(pk__in=[o.pk for o in objs])}
    return [
        {k: v for k, v in model_to_dict(rows[o.pk]).items() if k not in ("id", "request")}
        for o in objs
    ]


def test_the_rows_are_those_bulk_create_stores_and_each_object_has_its_key():
    student = UserFactory()
    now = timezone.now()
    employers = EmployerFactory.create_batch(5)

    ours = insert_rows(tasks(a_request(student, now), employers, now))
    django = RecipientTask.objects.bulk_create(tasks(a_request(student, now), employers, now))

    assert all(o.pk and not o._state.adding for o in ours)
    assert len({o.pk for o in ours}) == 5
    assert stored(ours) == stored(django)
    # Each object got its own row's key, in order.
    assert [RecipientTask.objects.get(pk=o.pk).employer_id for o in ours] == [
        e.pk for e in employers
    ]


def test_rows_that_share_every_value_and_a_single_row():
    student = UserFactory()
    employer = EmployerFactory()
    now = timezone.now() - timedelta(days=1)
    requests = [a_request(student, now) for _ in range(3)]
    # Every column the same but the request: one array, the rest sent once.
    insert_rows(
        [
            RecipientTask(request=request, employer=employer, created_at=now, changed_at=now)
            for request in requests
        ]
    )
    assert RecipientTask.objects.filter(employer=employer, created_at=now).count() == 3

    request = a_request(student, now)
    one = insert_rows([RecipientTask(request=request, employer=employer, changed_at=now)])
    assert RecipientTask.objects.get(pk=one[0].pk).request_id == request.pk
    assert insert_rows([]) == []


def test_values_make_the_rows_bulk_create_makes_of_the_same_values_with_the_defaults():
    student = UserFactory()
    now = timezone.now()
    employers = EmployerFactory.create_batch(4)
    reasons = [{"provisions": n, "note": "100% 'quoted'", "none": None} for n in range(4)]
    request = a_request(student, now)
    ids = insert_values(
        RecipientTask,
        same={"request_id": request.pk, "created_at": now, "changed_at": now, "queued_at": now},
        each={"employer_id": [e.pk for e in employers], "reasons": reasons},
    )
    django = RecipientTask.objects.bulk_create(
        RecipientTask(
            request=a_request(student, now),
            employer=employer,
            reasons=reason,
            created_at=now,
            changed_at=now,
            queued_at=now,
        )
        for employer, reason in zip(employers, reasons, strict=True)
    )
    ours = list(RecipientTask.objects.filter(pk__in=ids).order_by("pk"))
    assert [t.pk for t in ours] == ids and len(set(ids)) == 4
    assert [t.employer_id for t in ours] == [e.pk for e in employers]  # in order
    assert stored(ours) == stored(django)
    assert ours[0].status == RecipientTask.Status.QUEUED  # a default


def test_values_refuse_what_the_model_does_not_have_and_ragged_columns():
    with pytest.raises(ValueError, match="no field"):
        insert_values(RecipientTask, same={"nonsense": 1}, each={"employer_id": [1]})
    with pytest.raises(ValueError, match="one value a row"):
        insert_values(RecipientTask, same={}, each={"employer_id": [1, 2], "reasons": [{}]})
    assert insert_values(RecipientTask, same={}, each={"employer_id": []}) == []


TRICKY_JSON = [
    {"quote": 'say "no"', "backslash": "C:\\path\\", "ja": "応募履歴・\u2028改行"},
    {"nested": [1, [2, {"three": None}]], "empty": {}, "list": []},
    [],
    "a JSON string with ' and \"",
    12.5,
    True,
]


def test_json_values_of_every_kind_are_stored_as_bulk_create_stores_them():
    """On PostgreSQL a JSON column's values go as one document, not an array of them."""
    student = UserFactory()
    now = timezone.now()
    employers = EmployerFactory.create_batch(len(TRICKY_JSON))

    def rows():
        request = a_request(student, now)
        return [
            RecipientTask(request=request, employer=e, reasons=v, created_at=now, changed_at=now)
            for e, v in zip(employers, TRICKY_JSON, strict=True)
        ]

    ours = insert_rows(rows())
    django = RecipientTask.objects.bulk_create(rows())
    assert [row["reasons"] for row in stored(ours)] == TRICKY_JSON
    assert stored(ours) == stored(django)


def test_a_statement_kept_for_one_count_is_not_used_for_another():
    """Rows whose only differing column is JSON unnest nothing: their count is in the
    statement, which is kept by its shape and count."""
    now = timezone.now()
    for count in (2, 3, 2):
        ids = insert_values(
            EmailMessage,
            same={"to": "a@example.jp", "subject": "s", "kind": "k", "language": "ja"},
            each={"cc": [[f"{n}@example.jp", '"quoted"'] for n in range(count)]},
        )
        assert len(ids) == count
        assert [m.cc for m in EmailMessage.objects.filter(pk__in=ids).order_by("pk")] == [
            [f"{n}@example.jp", '"quoted"'] for n in range(count)
        ]
        assert EmailMessage.objects.filter(pk__in=ids, created_at__gte=now).count() == count
