import pytest

from tests.sso.site import portal_settings_for


@pytest.fixture
def job_site(oidc_provider, settings):
    """The portal configured for the stand-in job site, as OIDC_ISSUER and friends would."""
    settings.SOCIALACCOUNT_PROVIDERS = portal_settings_for(oidc_provider)
    return oidc_provider
