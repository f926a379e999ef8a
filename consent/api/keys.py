"""API keys: made once, shown once, stored as SHA-256 (DESIGN.md, "Secrets are hashed")."""

import hashlib
import secrets

from django.db import transaction
from django.utils import timezone

from consent.models import ApiClient
from portal.models import Employer

# A leaked key is recognisable (by secret scanners, in a log) by its prefix.
KEY_PREFIX = "sdp_"
SHOWN_PREFIX_LENGTH = 8


class RevokeRefused(Exception):
    """No live key matches, or more than one does."""


class ScopeRefused(ValueError):
    """A scope that does not exist, or one this kind of key may not hold."""


# Activity records are what the job site itself collects, and inferences what its pipeline
# computes: a company's key never sends either.
PIPELINE_ONLY_SCOPES = {ApiClient.Scope.ACTIVITY_WRITE, ApiClient.Scope.INFERENCES_WRITE}
# A company's requests are its own to read and answer: the pipeline has none.
EMPLOYER_ONLY_SCOPES = {ApiClient.Scope.REQUESTS_READ, ApiClient.Scope.REQUESTS_ANSWER}


def scopes_refusal(*, employer: Employer | None, scopes) -> str | None:
    """Why this kind of key may not hold these scopes, or None. The admin form and
    api_key_create both ask."""
    if employer is not None and PIPELINE_ONLY_SCOPES & set(scopes):
        return (
            "activity:write and inferences:write are for the site's pipeline, not a company's key."
        )
    if employer is None and EMPLOYER_ONLY_SCOPES & set(scopes):
        return "requests:read and requests:answer are for a company's key, not the pipeline's."
    return None


def key_sha256(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def api_key_create(
    *, name: str, employer: Employer | None = None, scopes: list[str] | None = None
) -> tuple[ApiClient, str]:
    """A new API client with a 256-bit random key. Returns the client and the key, which is
    not stored anywhere: the caller shows it once. `scopes` defaults to consents only."""
    scopes = sorted(set(scopes or [ApiClient.Scope.CONSENTS]))
    unknown = set(scopes) - set(ApiClient.Scope.values)
    if unknown:
        raise ScopeRefused(f"Unknown scope {sorted(unknown)[0]!r}.")
    refusal = scopes_refusal(employer=employer, scopes=scopes)
    if refusal:
        raise ScopeRefused(refusal)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    client = ApiClient.objects.create(
        name=name,
        kind=ApiClient.Kind.PIPELINE if employer is None else ApiClient.Kind.EMPLOYER,
        employer=employer,
        key_prefix=key[:SHOWN_PREFIX_LENGTH],
        key_sha256=key_sha256(key),
        scopes=[str(scope) for scope in scopes],
    )
    return client, key


def api_key_revoke(*, prefix_or_key: str) -> ApiClient:
    """Revoke the live key with this prefix (or this whole key). Revoking takes effect on
    the next request: every request looks its key up."""
    with transaction.atomic():
        if len(prefix_or_key) > SHOWN_PREFIX_LENGTH:
            clients = ApiClient.objects.filter(key_sha256=key_sha256(prefix_or_key))
        else:
            clients = ApiClient.objects.filter(key_prefix=prefix_or_key)
        live = list(clients.filter(revoked_at=None).select_for_update())
        if not live:
            raise RevokeRefused(f"No live key starts with {prefix_or_key!r}.")
        if len(live) > 1:
            names = ", ".join(f"{c.name} (id {c.pk})" for c in live)
            raise RevokeRefused(
                f"{len(live)} live keys start with {prefix_or_key!r} ({names}); "
                "give the whole key to say which."
            )
        client = live[0]
        client.revoked_at = timezone.now()
        client.save(update_fields=["revoked_at"])
    return client
