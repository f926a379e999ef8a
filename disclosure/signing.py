"""Signing the portal's calls to the site's own systems (DataSource) and their callbacks.

Both ways: `X-Portal-Timestamp: <unix seconds>` and `X-Portal-Signature: sha256=<hex>`, the
HMAC-SHA256 with the source's secret of "<timestamp>.<body>". The timestamp is signed so a
captured message cannot be replayed once it is older than MAX_AGE_SECONDS.
"""

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Portal-Signature"
TIMESTAMP_HEADER = "X-Portal-Timestamp"
MAX_AGE_SECONDS = 300


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def sign(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """The headers for `body`."""
    timestamp = str(int(now if now is not None else time.time()))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, body)}


def verify(
    secret: str, body: bytes, *, timestamp: str | None, sig: str | None, now: float | None = None
) -> str | None:
    """None if the signature is good and fresh; otherwise why not (for the error answer)."""
    if not timestamp or not sig:
        return "missing signature"
    try:
        age = (now if now is not None else time.time()) - int(timestamp)
    except ValueError:
        return "bad timestamp"
    if abs(age) > MAX_AGE_SECONDS:
        return "stale timestamp"
    if not hmac.compare_digest(signature(secret, timestamp, body).encode(), sig.encode()):
        return "bad signature"
    return None
