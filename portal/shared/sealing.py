"""Secrets that reach a person by email but never rest readable.

A message that carries a secret (a company's answer link, a password-reset link, an email
confirmation key, a sign-in code) is stored with a placeholder where each secret goes; the
secrets themselves are kept sealed (Fernet: AES-128-CBC with an HMAC-SHA256, under a key
derived from SECRET_KEY) beside it. The worker unseals them into the copy it hands to SMTP
and erases the sealed value in the same UPDATE that records the message sent, or failed for
good. The stored body shows the placeholder to staff, now and forever; a backup taken while
the message waits holds only ciphertext, and one taken after holds nothing.

Sessions seal their data with the same derivation, each under its own cookie's value
(`sealing_keys`, portal/sessions.py).

Rotating SECRET_KEY: list the old key in SECRET_KEY_FALLBACKS until the queue has drained;
a message sealed under a key no longer listed fails with a reason and is resent by staff.
"""

import base64
import functools
import json
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.utils.crypto import salted_hmac
from django.utils.html import escape

SALT = "portal.shared.sealing.email-secrets"


class Unreadable(Exception):
    """The sealed secrets were made under a key that is no longer configured."""


def _fernet(key: str, purpose: str) -> Fernet:
    digest = salted_hmac(SALT, purpose, secret=key, algorithm="sha256").digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _keys(purpose: str = "email secrets") -> MultiFernet:
    return _derived(purpose, (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS))


def _fernets(purpose: str, keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_fernet(key, purpose) for key in keys])


# Derived once per key set, not for every message the worker sends.
_derived = functools.lru_cache(maxsize=8)(_fernets)


def sealing_keys(purpose: str) -> MultiFernet:
    """The keys for `purpose` under SECRET_KEY and its fallbacks (the first seals, any
    opens), derived afresh: for a purpose of its own each time, as a session's (its cookie),
    which a cache of a few would only churn."""
    return _fernets(purpose, (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS))


def seal(values: dict[str, str]) -> str:
    if not values:
        return ""
    return _keys().encrypt(json.dumps(values).encode()).decode()


def unseal(sealed: str) -> dict[str, str]:
    if not sealed:
        return {}
    try:
        return json.loads(_keys().decrypt(sealed.encode()))
    except InvalidToken as exc:
        raise Unreadable from exc


# Second factors' secrets (allauth's MFA adapter): one text each, marked so that a value
# stored before sealing began is still read (and sealed by the migration that follows it).
SEALED_PREFIX = "sealed:"


def seal_text(text: str, purpose: str = "second factors") -> str:
    return SEALED_PREFIX + _keys(purpose).encrypt(text.encode()).decode()


def unseal_text(stored: str, purpose: str = "second factors") -> str:
    if not stored.startswith(SEALED_PREFIX):
        return stored
    try:
        return _keys(purpose).decrypt(stored[len(SEALED_PREFIX) :].encode()).decode()
    except InvalidToken as exc:
        raise Unreadable from exc


class Slots:
    """The placeholders of one message's secrets.

    A placeholder carries a random nonce of its message, so text a person typed (a name, a
    statement) can never be a placeholder that the worker would fill with a secret.
    """

    def __init__(self) -> None:
        self.nonce = secrets.token_hex(4)
        self.values: dict[str, str] = {}

    def hide(self, value: str) -> str:
        placeholder = f"[secret {len(self.values) + 1}, only in the sent email · {self.nonce}]"
        self.values[placeholder] = value
        return placeholder

    def sealed(self) -> str:
        return seal(self.values)


def reveal(text: str, values: dict[str, str], *, html: bool = False) -> str:
    """`text` with each placeholder replaced by its secret: the copy handed to SMTP."""
    for placeholder, value in values.items():
        text = text.replace(placeholder, escape(value) if html else value)
    return text
