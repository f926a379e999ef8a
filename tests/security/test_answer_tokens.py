"""Attacks on the company answer page, /r/<token>/ (issue 10).

tests/disclosure/test_answer_page.py proves what each state's page shows (an unknown token
is the site's plain 404, an expired or revoked link says how to get a new one, a used link
shows the recorded answer and a second answer is a 409, the POST needs the CSRF token) and
that every hit counts towards the per-address limit. This file adds the attacker's side:
tokens no email ever held (malformed, huge, near misses), links killed by a staff resend,
and the proof that none of them changes a single row; then the rate limit against a client
that rotates X-Forwarded-For, for the answer page and for allauth's sign-in alike.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from consent.services import consent_grant, provision_record
from disclosure.models import AnswerLink, DataRequest, RecipientTask, RequestEvent, RequestFile
from disclosure.services import recipient_task_resend, request_cancel, request_file
from portal.models import EmailMessage
from portal.shared.http import client_ip
from tests.factories import (
    PASSWORD,
    EmployerFactory,
    StaffFactory,
    UserFactory,
    opt_in_purposes,
    student_who_accepted,
)

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r"/r/([A-Za-z0-9_-]+)/")
# An answer that would be recorded if the token were good.
ANSWER = {"answer": "deleted", "answered_by": "人事部長 鈴木 一郎", "attestation": "on"}


@pytest.fixture
def filed(django_capture_on_commit_callbacks, mailoutbox):
    """A deletion passed to one company; its task and the token from the company's email."""
    _analysis, provision = opt_in_purposes()
    employer = EmployerFactory()
    student, _version = student_who_accepted(provision, email="hanako@example.jp")
    consent_grant(student=student, employer=employer, purpose=provision)
    provision_record(student=student, employer=employer, purpose=provision, data_items="score")
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        data_request = request_file(student=student, kind="deletion")
    (mail,) = [m for m in mailoutbox if m.to == [employer.primary_contact.email]]
    task = RecipientTask.objects.get(request=data_request)
    return data_request, task, TOKEN.search(mail.body).group(1)


def rows() -> dict:
    """Every row an answer, or an attempt at one, could touch."""
    return {
        "requests": list(DataRequest.objects.values().order_by("pk")),
        "tasks": list(RecipientTask.objects.values().order_by("pk")),
        "links": list(AnswerLink.objects.values().order_by("pk")),
        "events": list(RequestEvent.objects.values().order_by("pk")),
        "files": list(RequestFile.objects.values("pk", "sha256").order_by("pk")),
        "emails": list(EmailMessage.objects.values("pk", "status").order_by("pk")),
    }


@pytest.fixture
def no_rate_limit(settings):
    # These tests make more hits than a minute allows; the limit has tests of its own below.
    settings.ANSWER_RATE_LIMIT_PER_MINUTE = 10_000


# --- tokens no email ever held --------------------------------------------------------------

# Path segments as a client would send them (already percent-encoded where needed).
MALFORMED = {
    "bad characters": "abc$!*()'~;:@&=+,",
    "percent-encoded NUL": "%00",
    "NUL inside a token-shaped string": "A" * 20 + "%00" + "A" * 22,
    "dot-dot": "..",
    "encoded traversal": "..%2F..%2Fetc%2Fpasswd",
    "backslash traversal": "..%5C..%5Cwindows",
    "unicode": "%E3%83%88%E3%83%BC%E3%82%AF%E3%83%B3",  # トークン
    "emoji": "%F0%9F%94%91",
    "invalid UTF-8": "%FF%FE%FD",
    "SQL quote": "'%20OR%20'1'%3D'1",
    "SQL statement": "1%3BDROP%20TABLE%20disclosure_answerlink%3B--",
    "SQL wildcard": "%25",
    "header injection": "x%0D%0ASet-Cookie:%20a%3Db",
    "4 KB": "A" * 4 * 1024,
    "100 KB": "A" * 100 * 1024,
}


def near_misses(token: str) -> dict[str, str]:
    """The real token, slightly wrong: none of these may find its link."""
    return {
        "one character short": token[:-1],
        "one character more": token + "A",
        "last character changed": token[:-1] + ("B" if token[-1] != "B" else "C"),
        "upper case": token.upper() if token.upper() != token else token.lower(),
        "its SHA-256 (what the database stores)": AnswerLink.objects.get().token_sha256,
        "with padding": token + "=",
    }


@pytest.mark.parametrize("segment", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_or_huge_token_answers_404_and_changes_nothing(
    client, filed, no_rate_limit, segment, django_capture_on_commit_callbacks
):
    before = rows()
    path = f"/r/{segment}/"
    with django_capture_on_commit_callbacks(execute=True):
        get = client.get(path)
        post = client.post(path, ANSWER)
    # A NUL byte is refused before any view (portal.middleware.RefuseNulMiddleware).
    expected = 400 if "%00" in segment else 404
    assert (get.status_code, post.status_code) == (expected, expected)
    for response in (get, post):
        assert "disclosure/answer.html" not in [t.name for t in response.templates]
        assert "hanako@example.jp" not in response.content.decode(errors="replace")
    assert rows() == before


def test_a_token_next_to_the_real_one_finds_nothing(
    client, filed, no_rate_limit, django_capture_on_commit_callbacks
):
    _request, _task, token = filed
    before = rows()
    for reason, guess in near_misses(token).items():
        path = reverse("disclosure:answer", args=[guess])
        with django_capture_on_commit_callbacks(execute=True):
            assert client.get(path).status_code == 404, reason
            assert client.post(path, ANSWER).status_code == 404, reason
    assert rows() == before
    assert client.get(reverse("disclosure:answer", args=[token])).status_code == 200


# --- links that worked once -----------------------------------------------------------------


def test_a_link_revoked_by_a_staff_resend_is_gone_and_takes_no_answer(
    client, filed, mailoutbox, no_rate_limit, django_capture_on_commit_callbacks
):
    data_request, task, old_token = filed
    mailoutbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        recipient_task_resend(task=task, by=StaffFactory(), reason="The email bounced")
    (resent,) = mailoutbox
    new_token = TOKEN.search(resent.body).group(1)
    assert new_token != old_token
    before = rows()

    old = reverse("disclosure:answer", args=[old_token])
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get(old).status_code == 410
        response = client.post(old, ANSWER)

    assert response.status_code == 410
    assert 'type="radio"' not in response.content.decode()
    assert rows() == before
    # The new link is the one that works.
    assert client.get(reverse("disclosure:answer", args=[new_token])).status_code == 200


def test_an_expired_link_takes_no_answer_and_changes_nothing(
    client, filed, no_rate_limit, django_capture_on_commit_callbacks
):
    _request, _task, token = filed
    AnswerLink.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    before = rows()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("disclosure:answer", args=[token]), ANSWER)
    assert response.status_code == 410
    assert rows() == before


def test_a_reused_link_refuses_the_second_answer_and_keeps_the_first(
    client, filed, no_rate_limit, django_capture_on_commit_callbacks
):
    _request, task, token = filed
    path = reverse("disclosure:answer", args=[token])
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(path, ANSWER).status_code == 302
    after_first = rows()
    with django_capture_on_commit_callbacks(execute=True):
        second = client.post(
            path, {"answer": "refused", "answered_by": "別の人", "reason": "やはり削除できません"}
        )
        third = client.post(path, ANSWER)
    assert (second.status_code, third.status_code) == (409, 409)
    assert rows() == after_first
    task.refresh_from_db()
    assert (task.answer, task.answered_by) == ("deleted", "人事部長 鈴木 一郎")


def test_a_link_of_a_cancelled_request_takes_no_answer(
    client, filed, no_rate_limit, django_capture_on_commit_callbacks
):
    data_request, _task, token = filed
    request_cancel(request=data_request, reason="学生が取り下げました")
    before = rows()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("disclosure:answer", args=[token]), ANSWER)
    assert response.status_code == 200 and 'type="radio"' not in response.content.decode()
    assert rows() == before


# --- the per-address rate limit against a rotating X-Forwarded-For ----------------------------


def _at_start_of_a_minute():
    return time_machine.travel(datetime.now(tz=UTC).replace(second=1, microsecond=0), tick=False)


def test_rotating_x_forwarded_for_does_not_reset_the_count_without_behind_proxy(
    client, filed, settings
):
    settings.BEHIND_PROXY = False
    settings.ANSWER_RATE_LIMIT_PER_MINUTE = 3
    _request, _task, token = filed
    with _at_start_of_a_minute():
        for n in range(3):
            response = client.get(
                f"/r/guess-{n}/",
                HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
                HTTP_X_FORWARDED_PROTO="https",
            )
            assert response.status_code == 404
        # A fresh, made-up address in the headers: still the same client, still limited,
        # and the real token gets the same answer as a guess.
        for spoofed in ("203.0.113.9", "10.0.0.1", "127.0.0.2, 192.0.2.1"):
            response = client.get(
                reverse("disclosure:answer", args=[token]),
                HTTP_X_FORWARDED_FOR=spoofed,
                HTTP_X_FORWARDED_PROTO="https",
            )
            assert response.status_code == 429, spoofed


def test_behind_the_proxy_the_proxys_last_hop_is_the_client(client, filed, settings):
    settings.BEHIND_PROXY = True
    settings.ANSWER_RATE_LIMIT_PER_MINUTE = 3
    proxy = {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_PROTO": "https"}
    with _at_start_of_a_minute():
        for n in range(3):
            # What the client sent first is ignored; the proxy appended the address it saw.
            response = client.get(
                f"/r/guess-{n}/", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 198.51.100.1", **proxy
            )
            assert response.status_code == 404
        limited = client.get(
            "/r/guess-4/", HTTP_X_FORWARDED_FOR="203.0.113.50, 198.51.100.1", **proxy
        )
        assert limited.status_code == 429
        # Another visitor behind the same proxy has a count of its own.
        other = client.get("/r/guess-5/", HTTP_X_FORWARDED_FOR="198.51.100.2", **proxy)
        assert other.status_code == 404


def test_an_ipv6_client_cannot_rotate_through_its_own_network(client, filed, settings):
    settings.ANSWER_RATE_LIMIT_PER_MINUTE = 3
    with _at_start_of_a_minute():
        for n in range(1, 4):
            response = client.get(f"/r/guess-{n}/", REMOTE_ADDR=f"2001:db8:1:2::{n:x}")
            assert response.status_code == 404
        assert client.get("/r/guess/", REMOTE_ADDR="2001:db8:1:2:ffff::1").status_code == 429
        assert client.get("/r/guess/", REMOTE_ADDR="2001:db8:1:3::1").status_code == 404


@pytest.mark.parametrize(
    ("behind_proxy", "meta", "expected"),
    [
        (False, {"HTTP_X_FORWARDED_FOR": "203.0.113.9", "HTTP_X_FORWARDED_PROTO": "https"}, "R"),
        (True, {"HTTP_X_FORWARDED_FOR": "203.0.113.9"}, "203.0.113.9"),
        (True, {"HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.9"}, "203.0.113.9"),
        (True, {"HTTP_X_FORWARDED_FOR": " 2001:DB8::1 "}, "2001:db8::1"),
        # A last hop that is not an address (a misconfigured proxy): the peer's address.
        (True, {"HTTP_X_FORWARDED_FOR": "203.0.113.9, <script>"}, "R"),
        (True, {"HTTP_X_FORWARDED_FOR": ""}, "R"),
        (True, {}, "R"),
    ],
)
def test_client_ip_trusts_the_forwarded_address_only_behind_the_proxy(
    rf, settings, behind_proxy, meta, expected
):
    settings.BEHIND_PROXY = behind_proxy
    request = rf.get("/", REMOTE_ADDR="10.0.0.5", **meta)
    assert client_ip(request) == ("10.0.0.5" if expected == "R" else expected)


# --- allauth's sign-in limit counts the same address -----------------------------------------

# allauth answers an address over its failed sign-in limit with this form error (200).
TOO_MANY = "Too many failed login attempts. Try again later."


def _sign_in(client, login: str, password: str, **meta):
    return client.post(
        reverse("account_login"),
        {"login": login, "password": password},
        HTTP_ACCEPT_LANGUAGE="en",
        **meta,
    )


def _failed_sign_in(client, n: int, **meta):
    # A different account each time, so only the per-address limit can stop the attacker.
    return _sign_in(client, f"victim{n}@example.jp", "not-the-password", **meta)


def test_rotating_x_forwarded_for_does_not_bypass_the_sign_in_limit(client, settings):
    settings.BEHIND_PROXY = False
    limit = int(settings.ACCOUNT_RATE_LIMITS["login_failed"].split("/")[0])
    for n in range(limit):
        response = _failed_sign_in(client, n, HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        assert response.status_code == 200
        assert TOO_MANY not in response.content.decode()  # a wrong password, not the limit
    response = _failed_sign_in(client, limit, HTTP_X_FORWARDED_FOR="203.0.113.77")
    assert TOO_MANY in response.content.decode()
    # Even the right password is refused now, from this address.
    user = UserFactory()
    refused = _sign_in(client, user.email, PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.78")
    assert TOO_MANY in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_behind_the_proxy_each_visitor_has_its_own_sign_in_limit(settings):
    settings.BEHIND_PROXY = True
    limit = int(settings.ACCOUNT_RATE_LIMITS["login_failed"].split("/")[0])
    proxy = {"REMOTE_ADDR": "10.0.0.5", "HTTP_X_FORWARDED_PROTO": "https"}
    attacker, visitor = Client(), Client()
    for n in range(limit):
        response = _failed_sign_in(
            attacker, n, HTTP_X_FORWARDED_FOR=f"192.0.2.{n}, 198.51.100.1", **proxy
        )
        assert TOO_MANY not in response.content.decode()
    blocked = _failed_sign_in(
        attacker, limit, HTTP_X_FORWARDED_FOR="192.0.2.99, 198.51.100.1", **proxy
    )
    assert TOO_MANY in blocked.content.decode()
    # Another student behind the same load balancer still signs in.
    user = UserFactory()
    response = _sign_in(visitor, user.email, PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.2", **proxy)
    assert response.status_code == 302
    assert visitor.session["_auth_user_id"] == str(user.pk)
