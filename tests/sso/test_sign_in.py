"""Sign-in with the job site's account, against a real OpenID Connect provider on loopback
(tests/sso/provider, started by conftest.py): the portal's test Client begins the sign-in,
`requests` plays the browser at the job site (signed in there), and the job site's redirect
back is completed in the portal. Discovery, the token request and userinfo are real HTTP."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.urls import reverse

from consent.models import PolicyAcceptance, Screen
from portal.models import User
from tests.factories import PASSWORD, StaffFactory, UserFactory, accept, published_version
from tests.sso.site import PROVIDER_ID, callback_path

pytestmark = pytest.mark.django_db

LOGIN = reverse("openid_connect_login", kwargs={"provider_id": PROVIDER_ID})


def begin(client) -> str:
    """Press "Sign in with the job site": where the portal sends the browser."""
    response = client.post(LOGIN)
    assert response.status_code == 302
    return response["Location"]


def at_the_site(site, authorize_url: str, username: str) -> str:
    """The browser, signed in at the job site, follows the portal's redirect; the site
    answers with the redirect back to the portal's callback (consent is pre-approved)."""
    answer = site.browser_session(username).get(authorize_url, allow_redirects=False)
    assert answer.status_code == 302, answer.text[:500]
    return callback_path(answer.headers["Location"])


def sign_in(client, site, username: str):
    return client.get(at_the_site(site, begin(client), username))


def signed_in_user(client):
    return (
        User.objects.get(pk=client.session["_auth_user_id"])
        if "_auth_user_id" in client.session
        else None
    )


def _accept_form(response):
    html = response.content.decode()
    return {
        name: re.search(rf'name="{name}" value="([^"]*)"', html).group(1)
        for name in ("version", "language", "text_sha256", "screen")
    }


# --- the code flow --------------------------------------------------------------------------


def test_a_new_student_signs_in_by_the_code_flow_with_pkce(client, job_site):
    sub = job_site.user("hanako", email="hanako@example.jp", name="山田 花子")
    tokens_before = job_site.control("grants/")["access_tokens"]

    authorize = begin(client)
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(f"{job_site.issuer}/authorize/")
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"]
    assert query["response_type"] == ["code"] and "openid" in query["scope"][0].split()
    callback = at_the_site(job_site, authorize, "hanako")
    # The job site stored the challenge with the code it issued...
    grant = job_site.control("grants/")["grants"][-1]
    assert (grant["user"], grant["method"]) == ("hanako", "S256")
    assert grant["challenge"] == query["code_challenge"][0]

    response = client.get(callback)

    assert response.status_code == 302
    # ...and the portal's token request carried the verifier (the site refuses one without).
    assert "code_verifier" in job_site.control("token-requests/")["requests"][-1]
    state = job_site.control("grants/")
    assert state["access_tokens"] == tokens_before + 1
    assert not [g for g in state["grants"] if g["user"] == "hanako"]  # the code is used up
    student = signed_in_user(client)
    assert student.email == "hanako@example.jp"
    assert student.display_name == "山田 花子"
    assert not student.is_staff
    assert not student.has_usable_password()  # no portal password: the site's account is the key
    link = SocialAccount.objects.get(user=student)
    assert (link.provider, link.uid) == (PROVIDER_ID, sub)
    assert EmailAddress.objects.get(user=student).verified  # email_verified said so


def test_the_first_sign_in_asks_for_the_policy_on_its_own_page(client, job_site):
    version = published_version()
    job_site.user("jiro", email="jiro@example.jp", name="佐藤 次郎")

    response = client.get(sign_in(client, job_site, "jiro")["Location"], follow=True)

    assert response.redirect_chain[-1][0].startswith(reverse("consent:accept"))
    assert response.status_code == 200
    form = _accept_form(response)
    assert form["screen"] == Screen.SIGNUP
    client.post(reverse("consent:accept"), {**form, "confirm": "on"})
    acceptance = PolicyAcceptance.objects.get(student__email="jiro@example.jp")
    assert (acceptance.version, acceptance.screen) == (version, Screen.SIGNUP)
    assert client.get(reverse("dashboard")).status_code == 200


def test_a_returning_student_is_found_by_the_subject_id(client, job_site):
    job_site.user("saburo", email="saburo@example.jp", name="鈴木 三郎")
    sign_in(client, job_site, "saburo")
    student = signed_in_user(client)
    client.logout()

    response = sign_in(client, job_site, "saburo")

    assert response.status_code == 302
    assert signed_in_user(client) == student
    assert User.objects.filter(email="saburo@example.jp").count() == 1
    assert SocialAccount.objects.filter(user=student).count() == 1


def test_without_a_name_from_the_site_the_sign_up_form_asks_for_one(client, job_site):
    sub = job_site.user("nameless", email="nameless@example.jp", name="")

    response = sign_in(client, job_site, "nameless")

    assert response["Location"] == reverse("socialaccount_signup")
    assert signed_in_user(client) is None
    response = client.post(
        reverse("socialaccount_signup"),
        {"email": "nameless@example.jp", "display_name": "名無 権兵衛"},
    )
    assert response.status_code == 302
    student = signed_in_user(client)
    assert (student.email, student.display_name) == ("nameless@example.jp", "名無 権兵衛")
    assert SocialAccount.objects.get(user=student).uid == sub


def test_the_sign_in_button_is_a_form_post_on_the_login_and_signup_pages(client, job_site):
    for page in ("account_login", "account_signup"):
        html = client.get(reverse(page)).content.decode()
        form = re.search(
            rf'<form method="post" action="{re.escape(LOGIN)}[?"][^>]*>(.*?)</form>', html, re.S
        )
        assert form, page
        assert 'name="csrfmiddlewaretoken"' in form.group(1)
        assert "求人サイト / Job site" in form.group(1)
    # A GET of the sign-in URL starts nothing: it asks for the POST.
    page = client.get(LOGIN)
    assert page.status_code == 200 and "<form" in page.content.decode()


def test_without_a_provider_configured_there_is_no_button(client):
    html = client.get(reverse("account_login")).content.decode()
    assert "/accounts/oidc/" not in html
    assert client.post(LOGIN).status_code == 404


# --- refused sign-ins -------------------------------------------------------------------------


ERROR_PAGE = "Sign-in with the job site did not complete"


def test_a_bad_state_is_refused_with_a_clear_page(client, job_site, settings):
    settings.LANGUAGE_CODE = "en"
    job_site.user("mallory", email="mallory@example.jp", name="Mallory")
    callback = at_the_site(job_site, begin(client), "mallory")
    forged = re.sub(r"state=[^&]+", "state=forged-state", callback)

    response = client.get(forged)

    assert response.status_code == 401
    assert ERROR_PAGE in response.content.decode()
    assert reverse("account_login") in response.content.decode()
    assert signed_in_user(client) is None
    assert not User.objects.filter(email="mallory@example.jp").exists()


def test_a_callback_from_another_browser_s_sign_in_is_refused(client, job_site):
    """The state is bound to the session that began the sign-in: a victim cannot be made to
    complete an attacker's sign-in (login CSRF)."""
    job_site.user("attacker", email="attacker@example.jp", name="Attacker")
    from django.test import Client

    attacker = Client()
    callback = at_the_site(job_site, begin(attacker), "attacker")

    response = client.get(callback)

    assert response.status_code == 401
    assert signed_in_user(client) is None
    assert not SocialAccount.objects.exists()


def test_a_state_works_once(client, job_site):
    job_site.user("replay", email="replay@example.jp", name="Replay")
    callback = at_the_site(job_site, begin(client), "replay")
    assert client.get(callback).status_code == 302
    client.logout()

    assert client.get(callback).status_code == 401
    assert signed_in_user(client) is None


def test_an_expired_code_is_refused_with_a_clear_page_and_no_account(client, job_site, settings):
    settings.LANGUAGE_CODE = "en"
    job_site.user("late", email="late@example.jp", name="Late")
    callback = at_the_site(job_site, begin(client), "late")
    assert job_site.control("grants/expire/", {})["expired"] >= 1

    response = client.get(callback)

    assert response.status_code == 401
    assert ERROR_PAGE in response.content.decode()
    assert signed_in_user(client) is None
    assert not User.objects.filter(email="late@example.jp").exists()
    assert not SocialAccount.objects.exists()


# --- the email address ------------------------------------------------------------------------


def test_a_changed_email_at_the_site_follows_to_the_portal(client, job_site, settings):
    settings.LANGUAGE_CODE = "en"
    sub = job_site.user("moving", email="old@example.jp", name="引越 太郎")
    sign_in(client, job_site, "moving")
    student = signed_in_user(client)
    client.logout()
    job_site.user("moving", email="new@example.jp", name="引越 太郎")

    response = sign_in(client, job_site, "moving")

    assert response.status_code == 302
    assert signed_in_user(client) == student  # still linked by the subject id
    student.refresh_from_db()
    assert student.email == "new@example.jp"
    assert list(EmailAddress.objects.filter(user=student).values_list("email", "verified")) == [
        ("new@example.jp", True)
    ]
    assert SocialAccount.objects.get(user=student).uid == sub
    page = client.get(response["Location"], follow=True)
    assert "Your email address here is now new@example.jp" in page.content.decode()


def test_an_unverified_new_email_at_the_site_is_not_taken(client, job_site):
    job_site.user("careful", email="careful@example.jp", name="慎重 花子")
    sign_in(client, job_site, "careful")
    student = signed_in_user(client)
    client.logout()
    job_site.user("careful", email="unverified@example.jp", name="慎重 花子", email_verified=False)

    sign_in(client, job_site, "careful")

    assert signed_in_user(client) == student
    student.refresh_from_db()
    assert student.email == "careful@example.jp"


def test_a_new_email_another_account_holds_is_not_taken(client, job_site):
    other = UserFactory(email="taken@example.jp")
    job_site.user("clash", email="clash@example.jp", name="衝突 一郎")
    sign_in(client, job_site, "clash")
    student = signed_in_user(client)
    client.logout()
    job_site.user("clash", email="taken@example.jp", name="衝突 一郎")

    sign_in(client, job_site, "clash")

    assert signed_in_user(client) == student
    student.refresh_from_db()
    assert student.email == "clash@example.jp"
    assert EmailAddress.objects.get(email="taken@example.jp").user == other


def test_a_verified_email_of_an_email_signup_account_signs_in_to_it_and_links_it(client, job_site):
    existing = UserFactory(email="both@example.jp")
    accept(existing, published_version())
    sub = job_site.user("both", email="both@example.jp", name="両方 さん")

    response = sign_in(client, job_site, "both")

    assert response.status_code == 302
    assert signed_in_user(client) == existing
    assert SocialAccount.objects.get(user=existing).uid == sub
    existing.refresh_from_db()
    assert existing.check_password(PASSWORD)  # a verified address: the password stays
    assert User.objects.count() == 1


def test_an_unverified_email_at_the_site_does_not_reach_an_existing_account(
    client, job_site, mailoutbox, django_capture_on_commit_callbacks
):
    existing = UserFactory(email="victim@example.jp")
    job_site.user("claimer", email="victim@example.jp", name="Claimer", email_verified=False)

    with django_capture_on_commit_callbacks(execute=True):
        response = sign_in(client, job_site, "claimer")

    assert signed_in_user(client) is None
    assert not SocialAccount.objects.exists()
    assert User.objects.count() == 1
    existing.refresh_from_db()
    assert existing.check_password(PASSWORD)
    # As for an email sign-up with a taken address (allauth's enumeration guard): the page
    # says a message was sent, and the address's owner is told an account already exists.
    assert response["Location"] == reverse("account_email_verification_sent")
    assert [m.to for m in mailoutbox] == [["victim@example.jp"]]


def test_an_unverified_email_of_a_new_student_must_be_verified_first(
    client, job_site, mailoutbox, django_capture_on_commit_callbacks
):
    job_site.user("fresh", email="fresh@example.jp", name="新人 さん", email_verified=False)

    with django_capture_on_commit_callbacks(execute=True):
        response = sign_in(client, job_site, "fresh")

    assert signed_in_user(client) is None
    assert response["Location"] == reverse("account_email_verification_sent")
    assert not EmailAddress.objects.get(email="fresh@example.jp").verified
    assert [m.to for m in mailoutbox] == [["fresh@example.jp"]]


# --- staff --------------------------------------------------------------------------------------


STAFF_PAGE = "Staff accounts cannot use the job site"


def test_a_staff_email_at_the_site_does_not_sign_in_to_the_staff_account(
    client, job_site, settings
):
    settings.LANGUAGE_CODE = "en"
    staff = StaffFactory(email="support@example.jp")
    job_site.user("impostor", email="support@example.jp", name="Support")

    response = sign_in(client, job_site, "impostor")

    assert response.status_code == 403
    assert STAFF_PAGE in response.content.decode()
    assert signed_in_user(client) is None
    assert not SocialAccount.objects.exists()
    staff.refresh_from_db()
    assert staff.check_password(PASSWORD)


def test_a_student_made_staff_can_no_longer_sign_in_through_the_site(client, job_site):
    job_site.user("promoted", email="promoted@example.jp", name="昇進 さん")
    sign_in(client, job_site, "promoted")
    student = signed_in_user(client)
    client.logout()
    User.objects.filter(pk=student.pk).update(is_staff=True)

    response = sign_in(client, job_site, "promoted")

    assert response.status_code == 403
    assert signed_in_user(client) is None


def test_a_signed_in_staff_member_cannot_link_a_site_account(client, job_site):
    staff = StaffFactory()
    job_site.user("linker", email="linker@example.jp", name="Linker")
    client.force_login(staff)

    response = client.post(LOGIN, {"process": "connect"})
    assert response.status_code == 302
    response = client.get(at_the_site(job_site, response["Location"], "linker"))

    assert response.status_code == 403
    assert not SocialAccount.objects.exists()
