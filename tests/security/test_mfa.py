"""MFA for staff (issue 10): the admin opens only to staff with a second factor; sign-in is
allauth's, whose code step is rate limited; MFA events of staff are audited; a Privacy officer
resets a lost factor, with a reason, audited; students may turn it on themselves."""

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from audit.models import AuditEntry
from audit.signals import (
    MFA_ADDED,
    MFA_CODE_FAILED,
    MFA_RECOVERY_CODE_USED,
    MFA_RECOVERY_CODES_REGENERATED,
)
from backoffice.roles import PRIVACY_OFFICER
from portal.second_factor import RESET_SECOND_FACTOR, second_factor_reset
from tests.factories import (
    PASSWORD,
    StaffFactory,
    UserFactory,
    published_version,
    totp_code,
)

pytestmark = pytest.mark.django_db

ADMIN = "/admin/"
MFA_REQUIRED = "/admin/two-factor-required/"


def english(client: Client) -> Client:
    client.cookies["django_language"] = "en"
    return client


def sign_in_with_password(client: Client, user, next_url: str = ADMIN):
    return client.post(
        reverse("account_login"), {"login": user.email, "password": PASSWORD, "next": next_url}
    )


def reauthenticate(client: Client) -> None:
    # allauth asks for the password again before a second factor is added or changed.
    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:500]


def code_error(response) -> str:
    """The error code allauth gave the code field (e.g. "incorrect_code")."""
    return response.context["form"].errors.as_data()["code"][0].code


def admin_paths(staff) -> list[str]:
    """Every kind of admin page: Django's own views, a ModelAdmin's, an app's extra views,
    the catch-all. Nothing here may open without a second factor."""
    user_type = ContentType.objects.get_for_model(staff)
    return [
        ADMIN,
        "/admin/portal/",
        "/admin/portal/user/",
        f"/admin/portal/user/{staff.pk}/change/",
        f"/admin/portal/user/{staff.pk}/password/",
        f"/admin/portal/user/{staff.pk}/reset-second-factor/",
        "/admin/audit/auditentry/",
        "/admin/disclosure/datarequest/",
        "/admin/disclosure/datarequest/1/extend/",
        f"/admin/consent/consentevent/record/{staff.pk}/",
        "/admin/consent/apiclient/add/",
        "/admin/password_change/",
        "/admin/autocomplete/",
        "/admin/jsi18n/",
        f"/admin/r/{user_type.pk}/{staff.pk}/",
        "/admin/no-such-page/",
    ]


# --- the gate -------------------------------------------------------------------------------


def test_staff_without_a_second_factor_are_sent_to_set_one_up_from_every_admin_page(client):
    staff = StaffFactory(mfa=False)
    client.force_login(staff)
    for path in admin_paths(staff):
        for method in (client.get, client.post):
            response = method(path)
            assert (response.status_code, response.get("Location")) == (302, MFA_REQUIRED), path


def test_recovery_codes_alone_are_not_a_second_factor(client):
    staff = StaffFactory(mfa=False)
    RecoveryCodes.activate(staff)
    client.force_login(staff)
    assert client.get(ADMIN)["Location"] == MFA_REQUIRED


def test_with_a_second_factor_the_same_pages_open(client):
    staff = StaffFactory()
    client.force_login(staff)
    assert client.get(ADMIN).status_code == 200
    assert client.get("/admin/portal/user/").status_code == 200
    assert client.get(MFA_REQUIRED)["Location"] == ADMIN


def test_signing_out_of_the_admin_stays_open_without_a_second_factor(client):
    client.force_login(StaffFactory(mfa=False))
    client.post(reverse("admin:logout"))
    assert "_auth_user_id" not in client.session


def test_the_set_up_page_says_why_and_links_to_the_set_up_in_both_languages(client):
    client.force_login(StaffFactory(mfa=False))
    page = client.get(MFA_REQUIRED)
    assert page.status_code == 200
    assert '<html lang="ja">' in page.content.decode()
    assert reverse("mfa_activate_totp") in page.content.decode()

    text = english(client).get(MFA_REQUIRED).content.decode()
    assert '<html lang="en">' in text
    assert "A password alone is not enough" in text
    assert f'href="{reverse("mfa_activate_totp")}"' in text
    assert f'href="{reverse("mfa_index")}"' in text


def test_a_student_is_refused_the_admin_rather_than_sent_round_in_circles(client):
    client.force_login(UserFactory())
    response = client.get(ADMIN, follow=True)
    assert response.status_code == 403
    assert len(response.redirect_chain) <= 2


def test_after_setting_up_totp_a_new_staff_member_reaches_the_admin(
    client, django_capture_on_commit_callbacks
):
    staff = StaffFactory(mfa=False)
    assert sign_in_with_password(client, staff).url == ADMIN
    assert client.get(ADMIN)["Location"] == MFA_REQUIRED
    assert client.get(reverse("mfa_activate_totp")).url.startswith(
        reverse("account_reauthenticate")
    )
    reauthenticate(client)

    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = page.context["form"].secret
    assert 'src="data:image/svg+xml;base64,' in page.content.decode()  # the QR code, CSP-safe
    # allauth sends "authenticator added" once the set-up has committed.
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})

    assert done.url == reverse("mfa_view_recovery_codes")
    assert client.get(done.url).status_code == 200
    assert client.get(ADMIN).status_code == 200
    added = AuditEntry.objects.filter(name=MFA_ADDED, actor=staff)
    assert sorted(added.values_list("changes__type", flat=True)) == ["recovery_codes", "totp"]


# --- sign-in ----------------------------------------------------------------------------------


def test_a_correct_password_posted_to_the_admin_login_gives_no_admin_session(client):
    staff = StaffFactory()
    response = client.post(
        reverse("admin:login"),
        {"username": staff.email, "password": PASSWORD, "next": ADMIN},
    )
    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))
    assert "_auth_user_id" not in client.session
    assert client.get(ADMIN)["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize(
    ("asked", "kept"),
    [
        ("/admin/portal/user/", "/admin/portal/user/"),
        ("https://evil.example/admin/", ADMIN),
        ("//evil.example/", ADMIN),
        ("", ADMIN),
    ],
)
def test_the_admin_login_hands_off_to_allauth_with_a_safe_next(client, asked, kept):
    response = client.get(reverse("admin:login"), {"next": asked})
    assert response.url == reverse("account_login") + "?" + f"next={kept}".replace("/", "%2F")


def test_signing_in_asks_for_the_code_before_the_admin_opens(client):
    staff = StaffFactory()
    response = sign_in_with_password(client, staff)
    assert response.url == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session
    assert client.get(ADMIN).status_code == 302

    response = client.post(reverse("mfa_authenticate"), {"code": totp_code(staff.totp_secret)})
    assert response.url == ADMIN
    assert client.get(ADMIN).status_code == 200


def test_a_code_is_good_once(client):
    staff = StaffFactory()
    code = totp_code(staff.totp_secret)
    sign_in_with_password(client, staff)
    client.post(reverse("mfa_authenticate"), {"code": code})
    other = Client()
    sign_in_with_password(other, staff)
    assert code_error(other.post(reverse("mfa_authenticate"), {"code": code})) == "incorrect_code"


def test_the_code_step_refuses_the_sixth_try_even_when_it_is_right(client):
    staff = StaffFactory()
    sign_in_with_password(client, staff)
    wrong = f"{(int(totp_code(staff.totp_secret)) + 1) % 1_000_000:06d}"
    for _try in range(5):
        response = client.post(reverse("mfa_authenticate"), {"code": wrong})
        assert code_error(response) == "incorrect_code"

    right = client.post(reverse("mfa_authenticate"), {"code": totp_code(staff.totp_secret)})

    assert code_error(right) == "too_many_login_attempts"
    assert "_auth_user_id" not in client.session
    # A fresh sign-in from elsewhere does not reset the count: it is the account's.
    elsewhere = Client(REMOTE_ADDR="198.51.100.9")
    sign_in_with_password(elsewhere, staff)
    refused = elsewhere.post(reverse("mfa_authenticate"), {"code": totp_code(staff.totp_secret)})
    assert code_error(refused) == "too_many_login_attempts"


# --- audit ------------------------------------------------------------------------------------


def test_a_wrong_code_and_a_recovery_code_used_are_in_the_audit_log(client):
    staff = StaffFactory()
    codes = RecoveryCodes.activate(staff).generate_codes()
    sign_in_with_password(client, staff)
    client.post(reverse("mfa_authenticate"), {"code": "000000x"})
    client.post(reverse("mfa_authenticate"), {"code": codes[0]})

    failed = AuditEntry.objects.get(name=MFA_CODE_FAILED)
    assert failed.actor is None and failed.actor_label == staff.email
    assert failed.target_id == str(staff.pk)
    used = AuditEntry.objects.get(name=MFA_RECOVERY_CODE_USED)
    assert used.actor == staff and used.changes["type"] == "recovery_codes"


def test_regenerating_recovery_codes_is_in_the_audit_log(
    client, django_capture_on_commit_callbacks
):
    staff = StaffFactory()
    RecoveryCodes.activate(staff)
    sign_in_with_password(client, staff)
    client.post(reverse("mfa_authenticate"), {"code": totp_code(staff.totp_secret)})
    reauthenticate(client)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("mfa_generate_recovery_codes"))

    assert response.status_code == 302
    assert AuditEntry.objects.filter(name=MFA_RECOVERY_CODES_REGENERATED, actor=staff).exists()


def test_recovery_codes_are_shown_once_then_never_again_nor_downloaded(client):
    staff = StaffFactory()
    RecoveryCodes.activate(staff)
    sign_in_with_password(client, staff)
    client.post(reverse("mfa_authenticate"), {"code": totp_code(staff.totp_secret)})
    reauthenticate(client)
    codes = RecoveryCodes(Authenticator.objects.get(user=staff, type="recovery_codes"))
    unused = codes.get_unused_codes()

    first = client.get(reverse("mfa_view_recovery_codes")).content.decode()
    assert all(code in first for code in unused)
    again = client.get(reverse("mfa_view_recovery_codes"))
    assert again.status_code == 200
    assert not any(code in again.content.decode() for code in unused)
    download = client.get(reverse("mfa_download_recovery_codes"))
    assert download.status_code != 200 or not any(
        code in download.content.decode() for code in unused
    )


def test_a_student_s_second_factor_is_not_in_the_staff_log(
    client, django_capture_on_commit_callbacks
):
    student = UserFactory()
    sign_in_with_password(client, student, next_url="/dashboard/")
    reauthenticate(client)
    page = client.get(reverse("mfa_activate_totp"))
    with django_capture_on_commit_callbacks(execute=True):
        secret = page.context["form"].secret
        client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert Authenticator.objects.filter(user=student, type="totp").exists()
    assert not AuditEntry.objects.filter(name__startswith="mfa.").exists()


# --- the Privacy officer's reset ---------------------------------------------------------------


def officer():
    user = StaffFactory(is_superuser=False)
    user.groups.add(Group.objects.get(name=PRIVACY_OFFICER))
    return user


def test_an_officer_resets_a_lost_second_factor_with_a_reason_and_it_is_audited(client):
    by, lost = officer(), StaffFactory(is_superuser=False)
    RecoveryCodes.activate(lost)
    client.force_login(by)
    url = reverse("admin:portal_user_reset_second_factor", args=[lost.pk])
    change_page = client.get(reverse("admin:portal_user_change", args=[lost.pk])).content.decode()
    assert f'href="{url}"' in change_page
    assert client.get(url).status_code == 200

    response = client.post(url, {"reason": "Lost phone; seen in person with staff card"})

    assert response.url == reverse("admin:portal_user_change", args=[lost.pk])
    assert not Authenticator.objects.filter(user=lost).exists()
    entry = AuditEntry.objects.get(name=RESET_SECOND_FACTOR)
    assert entry.actor == by and entry.target_id == str(lost.pk)
    assert entry.changes == {"authenticators": [["recovery_codes", "totp"], []]}
    assert entry.reason == "Lost phone; seen in person with staff card"
    # Their next visit to the admin asks for a new factor.
    again = Client()
    again.force_login(lost)
    assert again.get(ADMIN)["Location"] == MFA_REQUIRED


def test_a_reset_without_a_reason_changes_nothing(client):
    by, lost = officer(), StaffFactory(is_superuser=False)
    client.force_login(by)
    url = reverse("admin:portal_user_reset_second_factor", args=[lost.pk])
    response = client.post(url, {"reason": "  "})
    assert response.status_code == 200
    assert Authenticator.objects.filter(user=lost).exists()
    assert not AuditEntry.objects.filter(name=RESET_SECOND_FACTOR).exists()


def test_an_officer_cannot_reset_their_own_second_factor():
    by = officer()
    with pytest.raises(ValidationError):
        second_factor_reset(user=by, by=by, reason="I lost it")
    assert Authenticator.objects.filter(user=by).exists()


def test_a_reset_and_its_audit_entry_roll_back_together(monkeypatch):
    by, lost = officer(), StaffFactory(is_superuser=False)

    def broken(**kwargs):
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr("portal.second_factor.audit_record", broken)
    with pytest.raises(RuntimeError):
        second_factor_reset(user=lost, by=by, reason="Lost phone")
    assert Authenticator.objects.filter(user=lost).exists()


def test_allauth_s_own_authenticator_admin_is_not_offered(client):
    client.force_login(StaffFactory())
    assert client.get("/admin/mfa/authenticator/").status_code == 404


# --- students ------------------------------------------------------------------------------


def test_a_student_finds_two_factor_in_the_navigation_and_its_pages_in_the_site_s_layout(client):
    student = UserFactory()
    sign_in_with_password(client, student, next_url="/dashboard/")
    reauthenticate(client)
    for language in ("ja", "en"):
        client.cookies["django_language"] = language
        for name in ("mfa_index", "mfa_activate_totp"):
            text = client.get(reverse(name)).content.decode()
            assert f'<html lang="{language}">' in text, name
            assert 'class="site-header"' in text and "portal/portal.css" in text, name
            assert f'href="{reverse("mfa_index")}"' in text, name


def test_a_student_who_must_accept_a_new_policy_can_still_reach_the_two_factor_pages(client):
    published_version()
    student = UserFactory()
    client.force_login(student)
    assert client.get(reverse("dashboard")).url.startswith(reverse("consent:accept"))
    assert client.get(reverse("mfa_index")).status_code == 200
