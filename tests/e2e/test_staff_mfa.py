"""Journey 7 in a real Chromium, at a phone's width and a desktop's: a new staff member sets
up two-factor authentication on the way into the admin (every page through axe-core, the
320 px reflow and the Content-Security-Policy, as the other journeys)."""

import pytest
from allauth.mfa.adapter import get_adapter
from allauth.mfa.models import Authenticator

from tests.e2e.journeys import staff_mfa_setup_journey

# CI runs it on the PostgreSQL pass, with a real worker (docs/testing.md, markers).
pytestmark = pytest.mark.left_to_postgresql


def test_a_new_staff_member_sets_up_an_authenticator_app_and_reaches_the_admin(
    browse, site, viewport
):
    result = staff_mfa_setup_journey(browse("staff"), site)
    totp = Authenticator.objects.get(user=result["staff"], type=Authenticator.Type.TOTP)
    # The app the person set up is the one the portal checks codes against.
    assert get_adapter().decrypt(totp.data["secret"]) == result["secret"]
    assert Authenticator.objects.filter(user=result["staff"]).count() == 2  # + recovery codes
