"""After a form the portal sends the browser only to one of its own paths.

A table of `next` values that try to leave the site (or smuggle a header) goes to each place
that takes one: the language switcher, allauth's sign-in, sign-out and re-authentication,
and the policy acceptance page; each is refused there, and each honest path is followed.
"""

import pytest
from django.urls import reverse

from portal.shared.redirects import is_own_path
from tests.factories import PASSWORD, UserFactory, published_version

pytestmark = pytest.mark.django_db

LEAVING = [
    "//evil.example",
    "//evil.example/consent/",
    "///evil.example",
    "////evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\\/evil.example",
    "https://evil.example",
    "http://evil.example/consent/",
    "HTTPS://evil.example",
    "https:evil.example",
    "https:/evil.example",
    "ftp://evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "%2F%2Fevil.example",
    "/%2F/evil.example",
    "/%2f%2fevil.example",
    "/%5Cevil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",
    "/%09/evil.example",
    "/consent/\r\nSet-Cookie: sessionid=x",
    "/consent/%0d%0aSet-Cookie:%20sessionid=x",
    "/\u3000/evil.example",
    "evil.example",
    "consent/",
    "http://testserver/consent/",  # this site's own host, absolute: a path is all we take
    "//testserver/consent/",
    "https://testserver@evil.example/",
    "/" + "a" * 2001,
]
OWN = [
    "/consent/",
    "/consent/?page=2",
    "/policies/#purposes",
    "/accounts/email/",
    "/consent/?q=%E5%B1%B1%E7%94%B0%20%E8%8A%B1%E5%AD%90",
    "/dashboard/?next=%2F%2Fevil.example",  # its own next is checked where it is used
]


@pytest.mark.parametrize("url", LEAVING)
def test_a_url_that_leaves_the_site_is_not_one_of_our_paths(url):
    assert not is_own_path(url)


@pytest.mark.parametrize("url", OWN)
def test_a_path_of_ours_is(url):
    assert is_own_path(url)


def location(response) -> str:
    assert response.status_code == 302, response.status_code
    return response["Location"]


@pytest.mark.parametrize("url", LEAVING)
def test_the_language_switcher_goes_home_instead(client, url):
    response = client.post(reverse("set_language"), {"language": "en", "next": url})
    target = location(response)
    # Home, or (for a raw non-ASCII character, which Django percent-encodes into the
    # Location) a path of ours that only looks odd.
    assert target == "/" or (is_own_path(target) and url.isascii() is False), target
    assert "Set-Cookie: sessionid" not in str(response.serialize_headers())


def test_the_language_switcher_does_not_follow_a_foreign_referer_either(client):
    response = client.post(
        reverse("set_language"), {"language": "en"}, HTTP_REFERER="https://evil.example/"
    )
    assert location(response) == "/"


@pytest.mark.parametrize("url", OWN)
def test_the_language_switcher_goes_back_to_our_page(client, url):
    response = client.post(reverse("set_language"), {"language": "en", "next": url})
    assert location(response) == url


def sign_in(client, student, url):
    return client.post(
        reverse("account_login"), {"login": student.email, "password": PASSWORD, "next": url}
    )


@pytest.mark.parametrize("url", LEAVING)
def test_sign_in_goes_to_the_dashboard_instead(client, url):
    student = UserFactory()
    assert location(sign_in(client, student, url)) == reverse("dashboard")
    assert "_auth_user_id" in client.session  # signed in, only not sent away


@pytest.mark.parametrize("url", OWN)
def test_sign_in_goes_on_to_our_page(client, url):
    assert location(sign_in(client, UserFactory(), url)) == url


@pytest.mark.parametrize("url", LEAVING)
def test_sign_out_goes_home_instead(client, url):
    client.force_login(UserFactory())
    response = client.post(reverse("account_logout"), {"next": url})
    assert location(response) == "/"
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("url", OWN[:2])
def test_sign_out_goes_on_to_our_page(client, url):
    client.force_login(UserFactory())
    assert location(client.post(reverse("account_logout"), {"next": url})) == url


@pytest.mark.parametrize("url", [*LEAVING, *OWN])
def test_re_authentication_goes_only_to_our_pages(client, url):
    client.force_login(UserFactory())
    response = client.post(reverse("account_reauthenticate"), {"password": PASSWORD, "next": url})
    target = location(response)
    assert is_own_path(target), target
    assert (target == url) == (url in OWN), target


@pytest.mark.parametrize("url", LEAVING)
def test_the_acceptance_page_does_not_carry_a_foreign_next(client, url):
    published_version()
    client.force_login(UserFactory())  # has accepted nothing: the form is shown
    page = client.get(reverse("consent:accept"), {"next": url}).content.decode()
    assert 'name="next" value=""' in page
