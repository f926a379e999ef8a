"""A real OpenID Connect provider for the SSO tests: django-oauth-toolkit in a small Django
project of its own, run by tests/sso/conftest.py as a subprocess on loopback. It stands in
for the job site; nothing in the portal imports it."""
