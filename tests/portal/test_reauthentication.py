"""The re-authentication check read from the session (portal/shared/reauthentication.py):
it says yes only where allauth's own check would, and otherwise leaves the answer to it."""

import time

import pytest
from allauth.account.internal.flows.login import record_authentication
from allauth.account.internal.flows.reauthentication import did_recently_reauthenticate
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from portal.shared.reauthentication import recently_reauthenticated_by_password
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def request_of(user, *, method="password", reauthenticated=True, ago=0.0):
    request = RequestFactory().post("/requests/new/")
    request.session, request.user = SessionStore(), user
    if method:
        record_authentication(request, user, method, reauthenticated=reauthenticated)
        request.session["account_authentication_methods"][-1]["at"] = time.time() - ago
    return request


def both(request) -> tuple[bool, bool]:
    return recently_reauthenticated_by_password(request), did_recently_reauthenticate(request)


def test_a_recent_password_reauthentication_passes_as_allauth_says_without_a_query(
    django_assert_num_queries,
):
    request = request_of(UserFactory())
    with django_assert_num_queries(0):
        assert recently_reauthenticated_by_password(request)
    assert did_recently_reauthenticate(request)


def test_a_stale_one_does_not(settings):
    settings.ACCOUNT_REAUTHENTICATION_TIMEOUT = 300
    assert both(request_of(UserFactory(), ago=301)) == (False, False)
    assert both(request_of(UserFactory(), ago=299)) == (True, True)


def test_a_sign_in_that_was_not_a_reauthentication_does_not():
    assert both(request_of(UserFactory(), reauthenticated=False)) == (False, False)


def test_no_record_or_no_user_does_not():
    assert both(request_of(UserFactory(), method=None)) == (False, False)
    request = request_of(UserFactory(), method=None)
    request.user = AnonymousUser()
    assert both(request) == (False, False)


def test_another_users_record_does_not():
    request = request_of(UserFactory())
    request.user = UserFactory()
    assert both(request) == (False, False)


def test_without_a_usable_password_the_answer_is_left_to_allauth():
    # A student who signs in only through the job site: allauth lists their other ways.
    user = UserFactory()
    user.set_unusable_password()
    user.save()
    request = request_of(user)
    assert recently_reauthenticated_by_password(request) is False
    assert did_recently_reauthenticate(request) is True  # by their email's code: allauth's
