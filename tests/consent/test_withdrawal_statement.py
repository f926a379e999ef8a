"""consent_withdraw_all's withdrawals in one PostgreSQL statement
(consent/services/withdrawal_statement.py): the same ledger and states as the step-by-step
path other databases take, in one statement, in the receipt's order, within its scope."""

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from consent.models import Consent, ConsentEvent, ConsentScreen
from consent.services import consent_grant, consent_withdraw_all, withdrawal_statement
from consent.services.consents import _withdraw_all_step_by_step
from tests.factories import (
    EmployerFactory,
    StaffFactory,
    opt_in_purposes,
    student_who_accepted,
)

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="needs PostgreSQL (CI's second pass): the statement is PostgreSQL's",
    ),
]

# What an event says apart from its own keys: compared between the two paths.
SAID = (
    "employer_id",
    "purpose_id",
    "action",
    "screen",
    "policy_version_id",
    "language",
    "actor",
    "actor_user_id",
    "reason",
    "collection_method",
    "ip_address",
    "user_agent",
)


def _granted_student(employers, purposes):
    student, _version = student_who_accepted(*purposes)
    for employer in employers:
        for purpose in purposes:
            consent_grant(student=student, employer=employer, purpose=purpose)
    return student


def _ledger(student, since: int) -> list[tuple]:
    """The student's events since `since`, their version told as whether it is the one the
    student accepted (each student here accepted a version of their own)."""
    accepted = student.policy_acceptances.get().version_id
    return [
        tuple(
            v == accepted if name == "policy_version_id" else v
            for name, v in zip(SAID, row, strict=True)
        )
        for row in ConsentEvent.objects.filter(student=student, pk__gt=since)
        .order_by("pk")
        .values_list(*SAID)
    ]


def _states(student) -> list[tuple]:
    return sorted(
        Consent.objects.filter(student=student).values_list(
            "employer_id", "purpose_id", "granted", "event__action"
        )
    )


def test_it_leaves_the_ledger_the_step_by_step_path_leaves(monkeypatch):
    analysis, provision = opt_in_purposes()
    # Names out of their keys' order: the events go in the receipt's order, by name.
    employers = [EmployerFactory(name=name) for name in ("ろ商事", "い物産", "は工業")]
    staff = StaffFactory()
    change = {
        "screen": ConsentScreen.STAFF,
        "actor": ConsentEvent.Actor.STAFF,
        "actor_user": staff,
        "reason": "電話での申し出 (call 2026-12-06)",
        "ip_address": "2001:db8::1",
        "user_agent": "Mozilla/5.0 " + "x" * 500,
        "language": "en",
    }
    ledgers, states = [], []
    for one_statement in (True, False):
        monkeypatch.setattr(withdrawal_statement, "usable", lambda one=one_statement: one)
        student = _granted_student(employers, (analysis, provision))
        last = ConsentEvent.objects.order_by("-pk").values_list("pk", flat=True)[0]
        events = consent_withdraw_all(student=student, **change)
        ledgers.append(_ledger(student, last))
        states.append(_states(student))
        # What is returned is what was stored, in the same order.
        assert [(e.pk, e.receipt_id) for e in events] == list(
            ConsentEvent.objects.filter(student=student, pk__gt=last)
            .order_by("pk")
            .values_list("pk", "receipt_id")
        )
        assert [e.employer.name for e in events] == ["い物産"] * 2 + ["は工業"] * 2 + ["ろ商事"] * 2
        assert all(not e._state.adding and e.student == student for e in events)
    assert ledgers[0] == ledgers[1]
    assert len(ledgers[0]) == 6
    assert all(row[SAID.index("policy_version_id")] is True for row in ledgers[0])
    assert states[0] == states[1]
    assert {granted for _e, _p, granted, _a in states[0]} == {False}


def test_the_withdrawals_are_one_statement_and_the_states_point_at_their_events():
    analysis, provision = opt_in_purposes()
    employers = [EmployerFactory() for _ in range(5)]
    student = _granted_student(employers, (analysis, provision))

    with CaptureQueriesContext(connection) as queries:
        events = consent_withdraw_all(student=student, notify_recipients=False)

    touching = [q["sql"] for q in queries if "consent_consent" in q["sql"]]
    assert len(touching) == 1, touching  # read, inserted and updated at once
    assert len(events) == 10
    for state in Consent.objects.filter(student=student):
        assert not state.granted
        assert state.event_id in {e.pk for e in events}
        assert state.updated_at == events[0].occurred_at


def test_it_withdraws_only_within_its_scope():
    analysis, _provision = opt_in_purposes()
    kept, withdrawn = EmployerFactory(), EmployerFactory()
    student = _granted_student([kept, withdrawn], (analysis,))

    events = consent_withdraw_all(student=student, employers=[withdrawn])

    assert [e.employer_id for e in events] == [withdrawn.pk]
    assert Consent.objects.get(student=student, employer=kept).granted
    assert not Consent.objects.get(student=student, employer=withdrawn).granted
    assert consent_withdraw_all(student=student, employers=[]) == []


def test_nothing_live_records_nothing_and_sends_no_receipt(mailoutbox):
    analysis, _provision = opt_in_purposes()
    student = _granted_student([EmployerFactory()], (analysis,))
    consent_withdraw_all(student=student)
    count = ConsentEvent.objects.count()
    mailoutbox.clear()

    assert consent_withdraw_all(student=student) == []
    assert ConsentEvent.objects.count() == count
    assert not mailoutbox


def test_a_student_with_no_acceptance_takes_the_step_by_step_path(monkeypatch):
    analysis, _provision = opt_in_purposes()
    student = _granted_student([EmployerFactory()], (analysis,))
    version = ConsentEvent.objects.get(student=student).policy_version
    student.policy_acceptances.all()._raw_delete(using="default")  # the ledger's guard aside
    taken = []

    def step_by_step(**kwargs):
        taken.append(kwargs["newest"])
        return _withdraw_all_step_by_step(**kwargs)

    monkeypatch.setattr("consent.services.consents._withdraw_all_step_by_step", step_by_step)
    events = consent_withdraw_all(student=student)

    assert taken == [None]
    assert [e.policy_version_id for e in events] == [version.pk]  # its grant's version
