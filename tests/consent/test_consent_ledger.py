import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from consent.models import Consent, ConsentEvent, Provision, StopUseNotice
from consent.services import (
    ConsentRefused,
    ProvisionRefused,
    consent_grant,
    consent_withdraw,
    consent_withdraw_all,
    provision_record,
)
from portal.models import EmailMessage
from tests.factories import (
    EmployerFactory,
    PurposeFactory,
    accept,
    opt_in_purposes,
    published_version,
    student_who_accepted,
)

pytestmark = pytest.mark.django_db


def _state_matches_ledger(student):
    for state in Consent.objects.filter(student=student):
        last = (
            ConsentEvent.objects.filter(
                student=student, employer=state.employer, purpose=state.purpose
            )
            .order_by("-occurred_at", "-id")
            .first()
        )
        assert state.event_id == last.pk
        assert state.granted == (last.action == ConsentEvent.Action.GRANT)


def test_nothing_is_granted_by_default():
    analysis, _ = opt_in_purposes()
    student, _ = student_who_accepted(analysis)
    assert not Consent.objects.filter(student=student).exists()


def test_a_grant_records_an_event_and_the_state():
    analysis, _ = opt_in_purposes()
    student, version = student_who_accepted(analysis)
    employer = EmployerFactory()

    event = consent_grant(student=student, employer=employer, purpose=analysis)

    assert event.action == ConsentEvent.Action.GRANT
    assert event.policy_version == version
    state = Consent.objects.get(student=student, employer=employer, purpose=analysis)
    assert state.granted and state.event == event


def test_granting_twice_records_one_event():
    analysis, _ = opt_in_purposes()
    student, _ = student_who_accepted(analysis)
    employer = EmployerFactory()
    first = consent_grant(student=student, employer=employer, purpose=analysis)
    second = consent_grant(student=student, employer=employer, purpose=analysis)
    assert first == second
    assert ConsentEvent.objects.count() == 1


def test_a_grant_is_refused_when_the_accepted_version_lacks_the_purpose():
    analysis, _ = opt_in_purposes()
    student, old = student_who_accepted()  # accepted a version without behaviour analysis
    published_version(purposes=[PurposeFactory(code="account"), analysis])  # not accepted yet

    with pytest.raises(ConsentRefused) as refused:
        consent_grant(student=student, employer=EmployerFactory(), purpose=analysis)

    assert refused.value.code == "purpose_not_in_policy"
    assert refused.value.version == old
    assert not ConsentEvent.objects.exists()


def test_a_purpose_covered_by_the_policy_cannot_be_granted_separately():
    student, _ = student_who_accepted()
    with pytest.raises(ConsentRefused):
        consent_grant(
            student=student, employer=EmployerFactory(), purpose=PurposeFactory(code="account")
        )


def test_a_version_that_drops_the_purpose_lapses_the_grant(
    mailoutbox, django_capture_on_commit_callbacks
):
    analysis, _ = opt_in_purposes()
    earlier = timezone.now() - timedelta(days=30)
    version = published_version(purposes=[PurposeFactory(code="account"), analysis], at=earlier)
    from tests.factories import UserFactory

    student = UserFactory()
    accept(student, version, at=earlier)
    employer = EmployerFactory()
    consent_grant(student=student, employer=employer, purpose=analysis)
    dropped = published_version(purposes=[PurposeFactory(code="account")])

    with django_capture_on_commit_callbacks(execute=True):
        acceptance = accept(student, dropped)

    assert [e.action for e in acceptance.lapsed_events] == [ConsentEvent.Action.LAPSE]
    lapse = acceptance.lapsed_events[0]
    assert lapse.actor == ConsentEvent.Actor.SYSTEM and lapse.policy_version == dropped
    assert not Consent.objects.get(student=student, employer=employer).granted
    assert any(m.to == [student.email] for m in mailoutbox)  # told to the student
    _state_matches_ledger(student)


def test_a_withdrawal_is_recorded_and_stops_provision():
    analysis, _ = opt_in_purposes()
    student, _ = student_who_accepted(analysis)
    employer = EmployerFactory()
    consent_grant(student=student, employer=employer, purpose=analysis)

    event = consent_withdraw(student=student, employer=employer, purpose=analysis)

    assert event.action == ConsentEvent.Action.WITHDRAW
    with pytest.raises(ProvisionRefused) as refused:
        provision_record(student=student, employer=employer, purpose=analysis, data_items="score")
    assert refused.value.code == "no_valid_grant"
    _state_matches_ledger(student)


@pytest.mark.parametrize("all_at_once", [False, True])
def test_a_withdrawal_records_the_newest_accepted_version_and_its_wording(
    all_at_once, mailoutbox, django_capture_on_commit_callbacks
):
    analysis, _ = opt_in_purposes()
    earlier = timezone.now() - timedelta(days=30)
    first = published_version(purposes=[analysis], at=earlier)
    from tests.factories import UserFactory

    student = UserFactory()
    accept(student, first, at=earlier)
    employer = EmployerFactory()
    consent_grant(student=student, employer=employer, purpose=analysis)
    analysis.title_ja = "行動分析(改訂後の名前)"
    analysis.save()
    second = published_version(purposes=[analysis], material=False)
    accept(student, second)
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        if all_at_once:
            [event] = consent_withdraw_all(student=student)
        else:
            event = consent_withdraw(student=student, employer=employer, purpose=analysis)

    event.refresh_from_db()
    assert event.policy_version == second  # the grant's own event named the first
    [receipt] = [m for m in mailoutbox if m.to == [student.email]]
    assert "行動分析(改訂後の名前)" in receipt.body
    _state_matches_ledger(student)


def test_withdrawing_what_is_off_records_nothing():
    analysis, _ = opt_in_purposes()
    student, _ = student_who_accepted(analysis)
    assert consent_withdraw(student=student, employer=EmployerFactory(), purpose=analysis) is None
    assert not ConsentEvent.objects.exists()


def test_a_provision_needs_a_valid_grant_and_links_it():
    analysis, _ = opt_in_purposes()
    student, _ = student_who_accepted(analysis)
    employer = EmployerFactory()
    with pytest.raises(ProvisionRefused):
        provision_record(student=student, employer=employer, purpose=analysis, data_items="score")
    assert not Provision.objects.exists()

    grant = consent_grant(student=student, employer=employer, purpose=analysis)
    provision = provision_record(
        student=student, employer=employer, purpose=analysis, data_items="関心度スコア"
    )

    assert provision.consent_event == grant
    with pytest.raises(ProvisionRefused):  # not for another employer
        provision_record(
            student=student, employer=EmployerFactory(), purpose=analysis, data_items="x"
        )


def test_a_bulk_provision_keeps_first_and_last_times_and_refuses_them_reversed():
    analysis, _ = opt_in_purposes()
    student, _ = student_who_accepted(analysis)
    employer = EmployerFactory()
    consent_grant(student=student, employer=employer, purpose=analysis)
    now = timezone.now()
    bulk = provision_record(
        student=student,
        employer=employer,
        purpose=analysis,
        data_items="score",
        first_provided_at=now - timedelta(seconds=30),
        provided_at=now,
    )
    assert bulk.first_provided_at < bulk.provided_at
    with pytest.raises(ProvisionRefused):
        provision_record(
            student=student,
            employer=employer,
            purpose=analysis,
            data_items="score",
            first_provided_at=now,
            provided_at=now - timedelta(seconds=30),
        )


def test_a_withdrawal_tells_employers_that_received_data_after_commit(
    django_capture_on_commit_callbacks, mailoutbox
):
    analysis, provision = opt_in_purposes()
    student, _ = student_who_accepted(analysis, provision)
    received = EmployerFactory(contact_email="hr@received.example.co.jp", language="en")
    untouched = EmployerFactory(contact_email="hr@untouched.example.co.jp")
    for employer in (received, untouched):
        consent_grant(student=student, employer=employer, purpose=provision)
    provision_record(student=student, employer=received, purpose=provision, data_items="score")
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        events = consent_withdraw_all(student=student)
    assert not mailoutbox  # nothing leaves before the transaction commits
    for callback in callbacks:
        callback()

    assert len(events) == 2
    stop_mails = [m for m in mailoutbox if m.to == ["hr@received.example.co.jp"]]
    assert len(stop_mails) == 1
    assert str(student.public_id) in stop_mails[0].body
    assert student.email not in stop_mails[0].body
    assert "stop" in stop_mails[0].subject.lower()  # the company's language: English
    assert not [m for m in mailoutbox if m.to == ["hr@untouched.example.co.jp"]]
    notice = StopUseNotice.objects.get()
    assert notice.employer == received
    assert notice.email.status == EmailMessage.Status.SENT


def test_withdraw_all_records_one_event_per_employer_and_purpose_and_one_receipt_email(
    django_capture_on_commit_callbacks, mailoutbox
):
    analysis, provision = opt_in_purposes()
    student, _ = student_who_accepted(analysis, provision)
    employers = [EmployerFactory(), EmployerFactory()]
    for employer in employers:
        for purpose in (analysis, provision):
            consent_grant(student=student, employer=employer, purpose=purpose)
    mailoutbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        events = consent_withdraw_all(student=student)

    assert len(events) == 4
    assert {(e.employer_id, e.purpose_id) for e in events} == {
        (e.pk, p.pk) for e in employers for p in (analysis, provision)
    }
    assert not Consent.objects.filter(student=student, granted=True).exists()
    student_mails = [m for m in mailoutbox if m.to == [student.email]]
    assert len(student_mails) == 1
    assert all(str(e.receipt_id) in student_mails[0].body for e in events)
    _state_matches_ledger(student)


def test_each_change_emails_a_receipt_after_commit(django_capture_on_commit_callbacks, mailoutbox):
    analysis, _ = opt_in_purposes()
    student, _ = student_who_accepted(analysis)
    with django_capture_on_commit_callbacks(execute=True):
        event = consent_grant(student=student, employer=EmployerFactory(), purpose=analysis)
    assert len(mailoutbox) == 1
    assert str(event.receipt_id) in mailoutbox[0].body
    assert "閲覧履歴の分析" in mailoutbox[0].body  # the student's language: Japanese


def test_the_ledger_refuses_changes():
    from django.core.exceptions import ValidationError

    analysis, _ = opt_in_purposes()
    student, _ = student_who_accepted(analysis)
    event = consent_grant(student=student, employer=EmployerFactory(), purpose=analysis)
    event.reason = "rewritten"
    with pytest.raises(ValidationError):
        event.save()


@pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="needs PostgreSQL (CI's second pass): real row locks between threads",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_grants_and_withdrawals_leave_ledger_and_state_agreeing():
    analysis, provision = opt_in_purposes()
    student, _ = student_who_accepted(analysis, provision)
    employer = EmployerFactory()
    errors = []
    barrier = threading.Barrier(6)

    def flip(index):
        try:
            barrier.wait()
            for round_ in range(8):
                purpose = analysis if (index + round_) % 2 else provision
                if (index + round_) % 3:
                    consent_grant(student=student, employer=employer, purpose=purpose)
                else:
                    consent_withdraw(student=student, employer=employer, purpose=purpose)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=flip, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    assert ConsentEvent.objects.filter(student=student).count() > 2
    _state_matches_ledger(student)
    # No two consecutive events for one purpose repeat the same action: every event is a change.
    for purpose in (analysis, provision):
        actions = list(
            ConsentEvent.objects.filter(student=student, purpose=purpose)
            .order_by("occurred_at", "id")
            .values_list("action", flat=True)
        )
        assert all(a != b for a, b in zip(actions, actions[1:], strict=False))


@pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="needs PostgreSQL (CI's second pass): real row locks between threads",
)
@pytest.mark.django_db(transaction=True)
def test_grants_withdrawals_provisions_and_a_deletion_at_once_never_deadlock():
    """Issue 17, item 7: with one operation in five a provision, 286 of 1,200 failed with
    `deadlock detected` (a grant locked the student, then the consent row; a provision the
    consent row, then, through its foreign key, the student)."""
    from consent.services import ProvisionRefused, provision_record
    from disclosure.services import request_file

    analysis, provision = opt_in_purposes()
    student, _ = student_who_accepted(analysis, provision)
    employer = EmployerFactory()
    consent_grant(student=student, employer=employer, purpose=provision)
    errors, done = [], []
    barrier = threading.Barrier(8)

    def work(index):
        try:
            barrier.wait()
            for round_ in range(150):
                step = (index * 150 + round_) % 5
                if index == 0 and round_ == 75:
                    request_file(student=student, kind="deletion")
                elif step == 0:
                    try:
                        provision_record(
                            student=student, employer=employer, purpose=provision, data_items="x"
                        )
                    except ProvisionRefused:
                        pass  # withdrawn a moment ago: the refusal is the right answer
                elif step % 2:
                    consent_grant(student=student, employer=employer, purpose=provision)
                else:
                    consent_withdraw(student=student, employer=employer, purpose=provision)
                done.append(step)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(done) == 8 * 150
    _state_matches_ledger(student)
    # No provision relies on a grant that was withdrawn before it was recorded.
    for record in Provision.objects.filter(student=student).select_related("consent_event"):
        later = ConsentEvent.objects.filter(
            student=student,
            purpose=provision,
            action="withdraw",
            occurred_at__gt=record.consent_event.occurred_at,
            occurred_at__lt=record.recorded_at,
        )
        assert not later.exists(), record.pk
