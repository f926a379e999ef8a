"""The audit log: a hash chain that names the first edited, deleted or reordered entry, a
PostgreSQL trigger that refuses UPDATE and DELETE, admin sign-ins recorded, a read-only admin."""

import threading

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from audit.log import GENESIS, audit_record, audit_verify, entry_hash
from audit.models import AuditEntry
from tests.factories import StaffFactory, UserFactory, totp_code

ON_POSTGRESQL = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
needs_postgresql = pytest.mark.skipif(
    not ON_POSTGRESQL, reason="the trigger is PostgreSQL's (CI's second pass); SQLite has none"
)

pytestmark = pytest.mark.django_db


def _entries(count: int, actor=None) -> list[AuditEntry]:
    actor = actor or StaffFactory()
    return [
        audit_record(
            action=AuditEntry.Action.ACTION,
            actor=actor,
            name="test.step",
            target=actor,
            changes={"step": [n, n + 1], "note": "日本語も"},
            reason=f"reason {n}",
        )
        for n in range(count)
    ]


def _tamper(sql: str, params: list) -> None:
    """What someone with database access could do: on PostgreSQL they must first switch
    the trigger off (which needs the table's owner); the chain still shows it."""
    with connection.cursor() as cursor:
        if ON_POSTGRESQL:
            cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_append_only")
        cursor.execute(sql, params)
        if ON_POSTGRESQL:
            cursor.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER audit_entry_append_only")


def test_each_entry_carries_the_hash_of_the_one_before_and_of_itself():
    first, second, third = _entries(3)
    assert [first.seq, second.seq, third.seq] == [1, 2, 3]
    assert first.prev_hash == GENESIS
    assert second.prev_hash == first.entry_hash
    assert third.prev_hash == second.entry_hash
    stored = AuditEntry.objects.get(pk=second.pk)
    # Recomputed from what the database gives back, not from the object in memory.
    assert entry_hash(stored) == stored.entry_hash
    assert len(stored.entry_hash) == 64
    assert stored.changes == {"step": [1, 2], "note": "日本語も"}


def test_an_intact_chain_verifies(capsys):
    _entries(5)
    report = audit_verify()
    assert report.intact and report.checked == 5
    call_command("verify_audit_log")
    assert "intact: 5 entries" in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_an_edited_entry_is_named():
    entries = _entries(5)
    _tamper("UPDATE audit_auditentry SET reason = %s WHERE id = %s", ["nothing", entries[2].pk])
    report = audit_verify()
    assert not report.intact
    assert report.first_break.seq == 3
    assert "changed" in report.first_break.problem
    with pytest.raises(CommandError, match="entry #3"):
        call_command("verify_audit_log")


@pytest.mark.django_db(transaction=True)
def test_an_entry_edited_with_its_hash_recomputed_breaks_the_next_link():
    entries = _entries(4)
    forged = AuditEntry.objects.get(pk=entries[1].pk)
    forged.reason = "a better story"
    forged.entry_hash = entry_hash(forged)
    _tamper(
        "UPDATE audit_auditentry SET reason = %s, entry_hash = %s WHERE id = %s",
        [forged.reason, forged.entry_hash, forged.pk],
    )
    report = audit_verify()
    assert report.first_break.seq == 3
    assert "does not follow" in report.first_break.problem


@pytest.mark.django_db(transaction=True)
def test_a_deleted_entry_is_named():
    entries = _entries(5)
    _tamper("DELETE FROM audit_auditentry WHERE id = %s", [entries[1].pk])
    report = audit_verify()
    assert report.first_break.seq == 2
    assert "deleted" in report.first_break.problem
    with pytest.raises(CommandError, match="entry #2"):
        call_command("verify_audit_log")


@needs_postgresql
def test_postgresql_refuses_to_update_an_entry():
    (entry,) = _entries(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(reason="rewritten")
    assert AuditEntry.objects.get(pk=entry.pk).reason == "reason 0"


@needs_postgresql
def test_postgresql_refuses_to_delete_an_entry():
    (entry,) = _entries(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


@needs_postgresql
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_do_not_fork_the_chain():
    actor = StaffFactory()
    barrier = threading.Barrier(6)
    errors = []

    def write():
        try:
            barrier.wait()
            for _ in range(5):
                audit_record(action=AuditEntry.Action.ACTION, actor=actor, name="race")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert AuditEntry.objects.count() == 30
    assert audit_verify().intact


def test_an_entry_rolls_back_with_the_change_it_records():
    with pytest.raises(RuntimeError), transaction.atomic():
        _entries(1)
        raise RuntimeError("the change failed")
    assert not AuditEntry.objects.exists()
    _entries(1)
    assert audit_verify().intact


# --- sign-ins -------------------------------------------------------------------------------


def test_a_staff_sign_in_to_the_admin_is_recorded_once_the_second_factor_is_given(client):
    staff = StaffFactory(password="staff-pass-2026")
    response = client.post(
        reverse("account_login"),
        {"login": staff.email, "password": "staff-pass-2026", "next": "/admin/"},
        REMOTE_ADDR="192.0.2.7",
    )
    assert response.url == reverse("mfa_authenticate")
    assert not AuditEntry.objects.exists()  # the password alone signs nobody in
    response = client.post(
        reverse("mfa_authenticate"), {"code": totp_code(staff.totp_secret)}, REMOTE_ADDR="192.0.2.7"
    )
    assert response.status_code == 302 and response.url == "/admin/"
    entry = AuditEntry.objects.get()
    assert entry.action == AuditEntry.Action.LOGIN
    assert entry.actor == staff and entry.actor_label == staff.email
    assert entry.ip == "192.0.2.7"


def test_a_failed_staff_sign_in_is_recorded_with_the_name_tried(client):
    StaffFactory(email="agent@example.jp", password="right-pass-2026")
    response = client.post(
        reverse("account_login"), {"login": "agent@example.jp", "password": "wrong"}
    )
    assert response.status_code == 200
    entry = AuditEntry.objects.get()
    assert entry.action == AuditEntry.Action.LOGIN_FAILED
    assert entry.actor is None and entry.actor_label == "agent@example.jp"


def test_a_student_s_failed_sign_in_is_not_in_the_staff_log(client):
    UserFactory(email="pupil@example.jp")
    client.post(reverse("account_login"), {"login": "pupil@example.jp", "password": "wrong"})
    assert not AuditEntry.objects.exists()


def test_a_student_signing_in_is_not_in_the_staff_log(client):
    student = UserFactory(password="student-pass-2026")
    client.post(reverse("account_login"), {"login": student.email, "password": "student-pass-2026"})
    assert client.session.get("_auth_user_id") == str(student.pk)
    assert not AuditEntry.objects.exists()


# --- the admin ------------------------------------------------------------------------------


def test_the_log_is_read_only_in_the_admin_even_for_a_superuser(client):
    staff = StaffFactory()
    (entry,) = _entries(1, actor=staff)
    client.force_login(staff)
    change_url = reverse("admin:audit_auditentry_change", args=[entry.pk])
    page = client.get(change_url)
    assert page.status_code == 200
    assert "reason 0" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    client.post(change_url, {"reason": "rewritten"})
    assert client.post(reverse("admin:audit_auditentry_add"), {}).status_code == 403
    delete_url = reverse("admin:audit_auditentry_delete", args=[entry.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.get(pk=entry.pk).reason == "reason 0"


def test_the_log_filters_by_staff_member_and_object(client):
    alice, bob = StaffFactory(email="alice@example.jp"), StaffFactory(email="bob@example.jp")
    _entries(2, actor=alice)
    _entries(1, actor=bob)
    client.force_login(alice)
    url = reverse("admin:audit_auditentry_changelist")

    def listed(**query):
        response = client.get(url, query)
        assert response.status_code == 200
        return [(entry.actor_label, entry.name) for entry in response.context["cl"].result_list]

    assert listed(actor__id__exact=bob.pk) == [("bob@example.jp", "test.step")]
    # alice's sign-in (force_login) is an entry of its own, with no name.
    assert (
        listed(actor__id__exact=alice.pk, action="action")
        == [("alice@example.jp", "test.step")] * 2
    )
    assert len(listed(target_type="portal.user", q="alice")) == 3


@pytest.mark.django_db(transaction=True)
def test_the_verify_button_reports_the_chain(client):
    staff = StaffFactory()
    client.force_login(staff)  # a staff sign-in: entry 1
    _entries(3, actor=staff)
    response = client.post(reverse("admin:audit_auditentry_verify"), follow=True)
    assert "4 件" in str(list(response.context["messages"])[0])
    _tamper("UPDATE audit_auditentry SET reason = %s WHERE seq = 3", ["nothing"])
    response = client.post(reverse("admin:audit_auditentry_verify"), follow=True)
    assert "entry #3" in str(list(response.context["messages"])[0])
