"""How long a sign-in lasts (ASVS 3.3.2): a browser left open on a shared PC must not stay
signed in for the server's whole session age.

Staff: 30 minutes without a request, 12 hours in all. Students: 60 minutes without a
request (they read long policy texts and fill request forms on a phone between other
things; what a session opens is their own data only), 12 hours in all. The clock starts at
sign-in and is kept in the session itself; an ended session signs out and returns to the
page it was on after the next sign-in. Each limit is a setting (README, "Security").
"""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.utils.translation import gettext as _

STARTED = "portal_signed_in_at"
SEEN = "portal_seen_at"
# The last-seen time is written at most this often: not a session write on every request.
SEEN_RESOLUTION = 60


def limits(user) -> tuple[int, int]:
    """(idle, total) in seconds for `user`."""
    if user.is_staff:
        return settings.SESSION_IDLE_MINUTES_STAFF * 60, settings.SESSION_MAX_HOURS * 3600
    return settings.SESSION_IDLE_MINUTES * 60, settings.SESSION_MAX_HOURS * 3600


def session_lifetime_start(*, session, now: float | None = None) -> None:
    """At sign-in (Django's user_logged_in, force_login included)."""
    now = int(now if now is not None else time.time())
    session[STARTED] = now
    session[SEEN] = now


def session_lifetime_on_login(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        session_lifetime_start(session=request.session)


class SessionLifetimeMiddleware:
    """After AuthenticationMiddleware: ends a session that was idle or open too long."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            ended = self._check(request, user)
            if ended is not None:
                return ended
        return self.get_response(request)

    def _check(self, request, user):
        session = request.session
        now = int(time.time())
        started, seen = session.get(STARTED), session.get(SEEN)
        if started is None or seen is None:  # a session from before this was deployed
            session_lifetime_start(session=session, now=now)
            return None
        idle, total = limits(user)
        if now - seen <= idle and now - started <= total:
            if now - seen >= SEEN_RESOLUTION:
                session[SEEN] = now
            return None
        logout(request)
        if now - started > total:
            text = _("You were signed out after %(hours)d hours. Sign in again to go on.") % {
                "hours": total // 3600
            }
        else:
            text = _(
                "You were signed out after %(minutes)d minutes without activity. "
                "Sign in again to go back to the page you were on."
            ) % {"minutes": idle // 60}
        messages.info(request, text)
        # A form posted into an ended session is not replayed: it returns to its page.
        back = request.get_full_path() if request.method == "GET" else request.path
        return redirect_to_login(back, settings.LOGIN_URL)
