"""`Idempotency-Key` (IETF draft "The Idempotency-Key HTTP Header Field") for POST calls
that record something: a retry with the same key and the same body gets the first answer
again and records nothing; the same key with another body is refused (422).

Keys are per API client (two senders may use the same key) and per operation. Only a
success is kept: a refusal recorded nothing, so the same key may be sent again once the
cause is fixed (a grant given, say). The retention job deletes keys after
`RETENTION_IDEMPOTENCY_KEY_DAYS`.
"""

import hashlib
import json
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from consent.api.endpoint import ApiError
from consent.models import ApiClient, IdempotencyKey

REPLAYED = "Idempotent-Replayed"


def request_fingerprint(body) -> str:
    """The same JSON however it was spaced or its keys ordered."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def idempotent_answer(
    *,
    client: ApiClient,
    operation: str,
    key: str | None,
    body,
    answer: Callable[[], JsonResponse],
) -> HttpResponse:
    """`answer()` once per key: its first success is stored and replayed to a retry."""
    if key is None:
        return answer()
    fingerprint = request_fingerprint(body)
    with transaction.atomic():
        try:
            # Claim the key first: a concurrent call with the same key waits here on the
            # unique index (PostgreSQL) until this one commits, then is answered from it.
            with transaction.atomic():
                claim = IdempotencyKey.objects.create(
                    client=client,
                    operation=operation,
                    key=key,
                    request_sha256=fingerprint,
                    status=0,
                    response="",
                )
        except IntegrityError:
            return _replay(
                IdempotencyKey.objects.get(client=client, operation=operation, key=key),
                fingerprint,
            )
        response = answer()  # an ApiError rolls the claim back with everything else
        if response.status_code >= 300:
            claim.delete()
            return response
        claim.status = response.status_code
        claim.response = response.content.decode("utf-8")
        claim.save(update_fields=["status", "response"])
    return response


def _replay(stored: IdempotencyKey, fingerprint: str) -> HttpResponse:
    if stored.request_sha256 != fingerprint:
        raise ApiError(
            422,
            "idempotency_key_reused",
            _("This Idempotency-Key was used for a request with another body."),
            field="Idempotency-Key",
        )
    return HttpResponse(
        stored.response,
        content_type="application/json",
        status=stored.status,
        headers={REPLAYED: "true"},
    )
