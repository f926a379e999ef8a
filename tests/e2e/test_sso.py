"""Journey 8 in a real Chromium, at a phone's width and a desktop's: sign in with the job
site's account through the stand-in provider's own sign-in page, then accept the policy
(every portal page through axe-core, the 320 px reflow and the Content-Security-Policy)."""

import pytest
from allauth.socialaccount.models import SocialAccount

from tests.e2e.journeys import sso_journey
from tests.sso.site import portal_settings_for

# CI runs it on the PostgreSQL pass, with a real worker (docs/testing.md, markers).
pytestmark = pytest.mark.left_to_postgresql


@pytest.fixture
def job_site(oidc_provider, site, settings):
    settings.SOCIALACCOUNT_PROVIDERS = portal_settings_for(oidc_provider)
    # As settings.py does for OIDC_ISSUER: the button's POST is redirected to the site.
    policy = settings.CONTENT_SECURITY_POLICY
    directives = {**policy["DIRECTIVES"]}
    directives["form-action"] = [*directives["form-action"], oidc_provider.url]
    settings.CONTENT_SECURITY_POLICY = {**policy, "DIRECTIVES": directives}
    oidc_provider.register_client("http://testserver", site.url)
    yield oidc_provider
    oidc_provider.register_client("http://testserver")


def test_a_student_signs_in_with_the_job_site_and_accepts_the_policy(
    browse, site, job_site, viewport
):
    result = sso_journey(browse("student"), site, job_site)
    student = result["student"]
    assert SocialAccount.objects.get(user=student).uid == result["sub"]
    [acceptance] = student.policy_acceptances.all()
    assert acceptance.version == result["version"]
    assert student.display_name == "佐藤 美咲"
