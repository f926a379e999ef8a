"""Issue 17, item 3: a NUL byte anywhere in a URL is a 400, not a 500; every page a signed-in
person gets is `private, no-store`; an empty `since=` is refused like any non-number; and a
sign-in ends by itself (staff after 30 minutes idle, students after 60, everyone after 12
hours), returning to the page it was on after the next sign-in."""

import re
from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.resolvers import RoutePattern
from django.utils import timezone

from consent.api.keys import api_key_create
from tests.factories import PASSWORD, StaffFactory, UserFactory, accept, published_version

pytestmark = pytest.mark.django_db

CONVERTER = re.compile(r"<(?:\w+:)?\w+>")
REGEX_GROUP = re.compile(r"\(\?P<\w+>[^)]*\)|\([^)]*\)")


def url_patterns(resolver=None, prefix: str = ""):
    """Every route of the URLconf as a path, each of its parameters a NUL byte (`%00`)."""
    for entry in (resolver or get_resolver()).url_patterns:
        pattern = entry.pattern
        if isinstance(pattern, RoutePattern):
            route = CONVERTER.sub("%00", str(pattern))
        else:  # a regular expression: each group a NUL, the anchors dropped
            route = REGEX_GROUP.sub("%00", str(pattern)).lstrip("^").rstrip("$").replace("\\", "")
        if isinstance(entry, URLResolver):
            yield from url_patterns(entry, prefix + route)
        elif isinstance(entry, URLPattern):
            yield "/" + prefix + route


PATTERNS = sorted(set(url_patterns()))


@pytest.fixture
def student_client(client):
    student = UserFactory()
    accept(student, published_version())
    client.force_login(student)
    return client


def test_the_urlconf_has_the_routes_the_outside_check_named():
    assert len(PATTERNS) > 100
    for named in ("/policies/versions/%00/", "/requests/%00/", "/requests/%00/files/%00/"):
        assert named in PATTERNS


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "student"])
def test_a_nul_byte_in_any_path_of_the_urlconf_is_a_400(client, student_client, signed_in):
    browser = student_client if signed_in else client
    answers = {path: browser.get(path).status_code for path in PATTERNS if "%00" in path}
    # The API refuses it in JSON itself (4xx, never 5xx: tests/security/test_api_fuzz.py).
    api = {p: s for p, s in answers.items() if p.startswith("/api/")}
    pages = {p: s for p, s in answers.items() if not p.startswith("/api/")}
    assert set(pages.values()) == {400}, {p: s for p, s in pages.items() if s != 400}
    assert all(400 <= s < 500 for s in api.values()), api


def test_a_nul_byte_in_the_query_string_of_any_page_is_a_400(student_client):
    # The API answers its own 4xx in JSON, naming the parameter (tests/security/test_api_fuzz.py).
    pages = [p for p in PATTERNS if "%00" not in p and not p.startswith("/api/")]
    answers = {p: student_client.get(p + "?q=%00").status_code for p in pages}
    answers |= {p: student_client.get(p + "?%00=1").status_code for p in pages[:20]}
    assert set(answers.values()) == {400}, {p: s for p, s in answers.items() if s != 400}
    assert student_client.get("/consents/?q=%00").content.decode().endswith("(NUL).")


@pytest.mark.parametrize(
    "page",
    [
        "dashboard",
        "consent:consent_list",
        "consent:policy_list",
        "disclosure:request_list",
        "mfa_index",
        "account_email",
    ],
)
def test_every_page_a_signed_in_student_gets_is_private_and_not_stored(student_client, page):
    response = student_client.get(reverse(page))
    assert response.status_code == 200
    directives = {d.strip() for d in response["Cache-Control"].split(",")}
    assert {"private", "no-store"} <= directives


def test_a_page_for_nobody_in_particular_may_be_cached(client):
    assert "no-store" not in client.get(reverse("home")).get("Cache-Control", "")


def test_an_empty_cursor_or_limit_in_the_changes_feed_is_refused(client):
    _client, key = api_key_create(name="Pipeline")
    auth = {"Authorization": f"Bearer {key}"}
    for query in ("since=", "limit=", "since=&limit="):
        response = client.get(f"/api/v1/consents/changes?{query}", headers=auth)
        assert response.status_code == 400, query
        assert response.json()["error"]["code"] in ("bad_cursor", "bad_limit")
    assert client.get("/api/v1/consents/changes?since=0", headers=auth).status_code == 200


# --- sessions that end by themselves ---------------------------------------------------------
@pytest.fixture
def clock(time_machine):
    start = timezone.now()
    time_machine.move_to(start, tick=False)

    def at(minutes: float):
        time_machine.move_to(start + timedelta(minutes=minutes), tick=False)

    return at


def signs_in(client, user) -> None:
    response = client.post(reverse("account_login"), {"login": user.email, "password": PASSWORD})
    assert response.status_code == 302, response.content[:300]


def test_a_student_idle_for_an_hour_is_signed_out_and_returns_to_the_page_after_signing_in(
    client, clock
):
    student = UserFactory()
    accept(student, published_version())
    signs_in(client, student)
    clock(59)
    assert client.get(reverse("consent:consent_list")).status_code == 200
    clock(59 + 61)
    response = client.get(reverse("consent:consent_list") + "?q=x")
    assert response.status_code == 302
    assert response["Location"] == reverse("account_login") + "?next=/consents/%3Fq%3Dx"
    login = client.get(response["Location"])
    assert "60 minutes without activity" in login.content.decode("utf-8") or (
        "60分" in login.content.decode()
    )
    assert client.get(reverse("dashboard")).status_code == 302  # really signed out
    back = client.post(
        response["Location"], {"login": student.email, "password": PASSWORD}, follow=False
    )
    assert back["Location"] == "/consents/?q=x"


def test_staff_are_signed_out_after_thirty_idle_minutes(client, clock):
    staff = StaffFactory()
    client.force_login(staff)
    clock(29)
    assert client.get(reverse("admin:index")).status_code == 200
    clock(29 + 31)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_a_sign_in_ends_after_twelve_hours_however_busy(client, clock):
    student = UserFactory()
    accept(student, published_version())
    client.force_login(student)
    for minute in range(0, 12 * 60, 50):
        clock(minute)
        assert client.get(reverse("dashboard")).status_code == 200, minute
    clock(12 * 60 + 1)
    assert client.get(reverse("dashboard")).status_code == 302


def test_a_form_posted_into_an_ended_session_returns_to_its_page_unsent(client, clock):
    student = UserFactory()
    accept(student, published_version())
    client.force_login(student)
    clock(61)
    response = client.post(reverse("disclosure:request_new"), {"kind": "deletion"})
    assert response.status_code == 302
    assert response["Location"] == reverse("account_login") + "?next=/requests/new/"
    assert not student.data_requests.exists()


def test_the_sign_in_page_says_how_long_a_sign_in_lasts(client):
    html = client.get(reverse("account_login"), headers={"Accept-Language": "en"}).content
    assert "signed out after 60 minutes without activity (30 minutes for portal staff)" in (
        html.decode()
    )


# --- issue 17, item 5: small things a person notices -----------------------------------------
def test_the_favicon_is_served_and_every_layout_links_it(client, settings):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"].endswith("portal/favicon.svg")
    assert "favicon.svg" in client.get(reverse("account_login")).content.decode()
    client.force_login(StaffFactory())
    assert "favicon.svg" in client.get(reverse("admin:index")).content.decode()


def test_long_text_is_refused_with_its_limit_said_never_cut(client):
    from disclosure.student_forms import RequestForm

    form = RequestForm(recipients=[], language="en")
    message = form.fields["message"]
    assert "maxlength" not in message.widget.attrs  # a paste is never cut by the browser
    assert "4,000" in str(message.help_text)
    html = client.get(reverse("account_signup")).content.decode()
    assert 'maxlength="100"' not in html and "100" in html
    long_name = "山" * 101
    response = client.post(
        reverse("account_signup"),
        {
            "email": "x@example.jp",
            "display_name": long_name,
            "password1": PASSWORD,
            "password2": PASSWORD,
        },
    )
    assert response.status_code == 200  # refused, shown again with the text kept
    assert long_name in response.content.decode()
