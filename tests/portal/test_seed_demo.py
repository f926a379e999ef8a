"""The demo data command: the 2019 story, idempotence, bulk students, and the demo logins."""

import io
from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from consent.models import PolicyAcceptance, PolicyVersion, Purpose, Screen
from consent.services import policy_acceptance_due
from demo.load import load
from portal.models import ActivityRecord, Employer, User
from tests.factories import totp_code

pytestmark = pytest.mark.django_db

DEMO_TOTP_SECRET = load().totp_secret

MODELS = (User, EmailAddress, Employer, Purpose, PolicyVersion, PolicyAcceptance, ActivityRecord)


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def test_it_publishes_the_three_versions_of_the_2019_story():
    seed()

    versions = {v.label: v for v in PolicyVersion.objects.all()}
    assert sorted(versions) == ["2018.04", "2018.10", "2019.03"]
    assert all(v.is_published for v in versions.values())
    codes = {label: set(v.purposes.values_list("code", flat=True)) for label, v in versions.items()}
    assert codes["2018.04"] == codes["2018.10"] == {"account", "job_matching"}
    assert codes["2019.03"] - codes["2018.10"] == {"behaviour_analysis", "provision_to_employer"}
    assert versions["2019.03"].material
    assert not versions["2018.10"].material
    assert versions["2019.03"].summary_ja and versions["2019.03"].summary_en
    assert PolicyVersion.objects.current() == versions["2019.03"]
    for version in versions.values():
        for language in ("ja", "en"):
            assert version.stored_sha256(language) == version.text(language).sha256
            assert version.text(language).body.count("\n") >= 15


def test_the_behaviour_purposes_need_separate_consent():
    seed()

    purposes = {p.code: p for p in Purpose.objects.all()}
    assert set(purposes) == {
        "account",
        "job_matching",
        "behaviour_analysis",
        "provision_to_employer",
    }
    assert not purposes["account"].requires_opt_in
    assert not purposes["job_matching"].requires_opt_in
    assert purposes["job_matching"].third_party_disclosure
    assert purposes["behaviour_analysis"].requires_opt_in
    assert purposes["provision_to_employer"].requires_opt_in
    assert purposes["provision_to_employer"].third_party_disclosure
    assert all(p.title_en and p.description_en and p.category for p in purposes.values())


def test_the_demo_student_accepted_2018_10_but_not_2019_03():
    seed()

    student = User.objects.get(email="student@example.jp")
    accepted = list(
        student.policy_acceptances.order_by("accepted_at").values_list("version__label", "screen")
    )
    assert accepted == [("2018.04", Screen.SIGNUP), ("2018.10", Screen.REVIEW)]
    due = policy_acceptance_due(student=student)
    assert due is not None
    assert due.version.label == "2019.03"
    assert due.screen == Screen.RECONSENT


def test_it_makes_students_who_accepted_different_versions_with_activity():
    seed()

    students = User.objects.filter(is_staff=False)
    assert students.count() == 32  # the two demo logins and 30 filler students
    latest = {PolicyAcceptance.objects.latest_for(student).version.label for student in students}
    assert latest == {"2018.04", "2018.10", "2019.03"}
    for acceptance in PolicyAcceptance.objects.select_related("version"):
        assert acceptance.text_matches
        assert acceptance.accepted_at > acceptance.version.effective_at
    # The demo's deletion request erased one student's activity, as it should.
    per_student = [
        s.activity_records.count() for s in students.exclude(data_requests__kind="deletion")
    ]
    assert min(per_student) >= 20
    assert not ActivityRecord.objects.filter(student__data_requests__kind="deletion").exists()
    assert max(per_student) <= 60
    assert ActivityRecord.objects.filter(employer__isnull=False).exists()
    assert Employer.objects.count() >= 10


def test_it_is_idempotent():
    seed()
    before = counts()
    passwords = dict(User.objects.values_list("email", "password"))

    output = seed()

    assert counts() == before
    assert dict(User.objects.values_list("email", "password")) == passwords
    assert "nothing to add" in output


def test_students_option_adds_bulk_students_with_correct_acceptances():
    seed()
    before = User.objects.count()

    output = seed("--students", "50")

    bulk = User.objects.filter(email__startswith="bulk-")
    assert bulk.count() == 50
    assert User.objects.count() == before + 50
    assert EmailAddress.objects.filter(user__in=bulk, verified=True, primary=True).count() == 50
    acceptances = PolicyAcceptance.objects.filter(student__in=bulk).select_related("version")
    assert set(acceptances.values_list("student", flat=True)) == set(
        bulk.values_list("pk", flat=True)
    )
    for acceptance in acceptances:
        assert acceptance.text_sha256 == acceptance.version.stored_sha256(acceptance.language)
        assert acceptance.screen in Screen.values
        assert acceptance.accepted_at > acceptance.version.effective_at
    assert ActivityRecord.objects.filter(student__in=bulk).count() >= 50 * 6
    assert "50/50 students" in output


def test_students_option_run_twice_adds_nobody_the_second_time():
    seed("--students", "20")
    before = counts()

    output = seed("--students", "20")

    assert counts() == before
    assert "already exist" in output


def test_it_prints_the_demo_logins():
    output = seed()

    assert "http://127.0.0.1:8000/" in output
    assert "student@example.jp / demo-pass-2026" in output
    assert "staff@example.jp / demo-pass-2026" in output
    assert "/admin/" in output


def test_the_demo_student_can_log_in_and_is_asked_to_accept_2019_03(client):
    seed()

    response = client.post(
        "/accounts/login/", {"login": "student@example.jp", "password": "demo-pass-2026"}
    )

    assert response.status_code == 302
    assert client.session.get("_auth_user_id") == str(
        User.objects.get(email="student@example.jp").pk
    )
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("consent:accept"))


def test_the_staff_user_can_log_in_to_the_admin(client):
    seed()

    staff = User.objects.get(email="staff@example.jp")
    assert staff.is_staff and staff.is_superuser
    assert staff.display_name == "サポート 太郎"
    assert client.login(email="staff@example.jp", password="demo-pass-2026")


@pytest.mark.parametrize("email", ["staff@example.jp", "support@example.jp", "officer@example.jp"])
def test_demo_staff_reach_the_admin_with_the_printed_key_or_a_printed_recovery_code(email):
    output = seed()
    assert f"otpauth://totp/demo-staff?secret={DEMO_TOTP_SECRET}" in output
    recovery_code = output.split(f"{email}: ")[1].split()[0]

    for code in (totp_code(DEMO_TOTP_SECRET), recovery_code):
        client = Client()
        client.post("/accounts/login/", {"login": email, "password": "demo-pass-2026"})
        response = client.post(reverse("mfa_authenticate"), {"code": code})
        assert response.status_code == 302, code
        assert client.get(reverse("admin:index")).status_code == 200


@pytest.mark.django_db
def test_it_seeds_consents_provisions_and_a_withdrawal_through_the_services():
    from consent.models import Consent, ConsentEvent, Provision

    call_command("seed_demo", stdout=io.StringIO())
    events = ConsentEvent.objects.count()
    assert Consent.objects.filter(granted=True).exists()
    assert Provision.objects.exists()
    assert ConsentEvent.objects.filter(action="withdraw").exists()
    # Every provision relied on a grant of the same student, employer and purpose.
    for provision in Provision.objects.select_related("consent_event"):
        grant = provision.consent_event
        assert (grant.student_id, grant.employer_id, grant.purpose_id, grant.action) == (
            provision.student_id,
            provision.employer_id,
            provision.purpose_id,
            "grant",
        )
    call_command("seed_demo", stdout=io.StringIO())
    assert ConsentEvent.objects.count() == events
