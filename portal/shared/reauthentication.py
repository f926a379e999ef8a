"""allauth's `reauthentication_required`, asking the database only when it must.

allauth's check first lists every way the user could re-authenticate (their email addresses
for a code, then one query per kind of second factor: four queries), and only then reads
the session's record of the last re-authentication. A student with a password always has a
way, so for them the session alone answers: a filing during the 2019 wave sends four
statements fewer. Anyone else, or a session without a recent record, goes through allauth's
own check unchanged (and its page, when it says no).
"""

import time

from allauth.account import app_settings
from allauth.account.decorators import reauthentication_required as allauth_required
from allauth.account.internal.flows.login import get_authentication_records
from django.http import HttpRequest


def recently_reauthenticated_by_password(request: HttpRequest) -> bool:
    """allauth's `did_recently_reauthenticate` for a user with a usable password, from the
    session alone; False whenever it would need to ask more."""
    user = request.user
    if not user.is_authenticated or not user.has_usable_password():
        return False
    if "password" not in app_settings.REAUTHENTICATION_METHODS:
        return False
    records = [
        record
        for record in get_authentication_records(request, user)
        if record.get("reauthenticated")
        and record.get("method") in app_settings.REAUTHENTICATION_METHODS
    ]
    return bool(records) and time.time() - records[-1]["at"] < app_settings.REAUTHENTICATION_TIMEOUT


def reauthentication_required(view):
    """A GET shows the page; any other method needs a recent re-authentication."""
    return allauth_required(
        allow_get=True, enabled=lambda request: not recently_reauthenticated_by_password(request)
    )(view)
