"""The outbox's email as MIME, made as Django makes it, with two of the standard library's
costs taken out of every message a worker sends (docs/performance.md, "Passing a request on").

- **The boundary between the text and the HTML.** Left to the standard library, each message
  draws a random boundary and compiles a regular expression from it to search both parts for
  it (0.16 ms a message; the compiled pattern never comes again, so it misses `re`'s cache).
  Here the boundary is 128 random bits, checked against the parts by a plain substring test.
- **Headers folded only when they need it.** The policy Django's messages carry (`compat32`)
  passes every header through `email.header.Header`, even `MIME-Version: 1.0`: sixteen
  a message, 0.17 ms. A header that is printable ASCII and fits on one line comes out of
  that unchanged, so it is written as it is; any other goes through `compat32` as before.
  tests/portal/test_mime.py holds both to the standard library's bytes.
- **What repeats, written once.** A request's 38 company emails share their subject, and a
  worker writes to the same few hundred addresses: a Japanese subject went through
  `email.header.Header` twice a message (Django's header check, then the folding), and each
  address through Django's `sanitize_address` (a full RFC 5322 parse) twice more for the
  envelope, about 0.17 ms a message together. Their results, pure functions of the value,
  are kept (`_repeated`, and `envelope_address` for the SMTP backend,
  portal/shared/mail_connection.py).
"""

import functools
import secrets
from email.mime.multipart import MIMEMultipart
from email.policy import Compat32

from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import (
    SafeMIMEMultipart,
    forbid_multi_line_headers,
    sanitize_address,
)

# A header value this long is not kept (a body is never a header; a long Cc list may be).
_KEPT_LENGTH = 2000


class _Compat32Unfolded(Compat32):
    """`compat32`, without a round through `Header` for a header that needs no folding."""

    def _fold(self, name, value, sanitize):
        if (
            isinstance(value, str)
            and value.isascii()
            # No control character: str.splitlines() breaks a value at \x0b, \x0c, \x1c-\x1e.
            and value.isprintable()
            and len(name) + 2 + len(value) <= (self.max_line_length or 78)
        ):
            return f"{name}: {value}{self.linesep}"
        if isinstance(value, str) and len(value) <= _KEPT_LENGTH:
            return _folded(self.linesep, self.max_line_length, name, value, sanitize)
        return super()._fold(name, value, sanitize)


@functools.lru_cache(maxsize=1024)
def _folded(linesep: str, max_line_length: int | None, name: str, value: str, sanitize: bool):
    # What compat32's folding depends on, all of it in the key (the generator clones the
    # policy for every message, so the policy itself cannot be).
    policy = Compat32(linesep=linesep, max_line_length=max_line_length)
    return Compat32._fold(policy, name, value, sanitize)


@functools.lru_cache(maxsize=1024)
def _repeated(name: str, value: str, encoding: str) -> tuple[str, str]:
    return forbid_multi_line_headers(name, value, encoding)


# Headers whose values repeat from one message to the next (not Date or Message-ID).
_REPEATED = frozenset({"subject", "from", "to", "cc", "reply-to"})


class _Multipart(SafeMIMEMultipart):
    """Django's multipart message, its repeated headers checked and encoded once a value."""

    def __setitem__(self, name, val):
        if name.lower() in _REPEATED and isinstance(val, str) and len(val) <= _KEPT_LENGTH:
            name, val = _repeated(name, val, self.encoding)
        else:
            name, val = forbid_multi_line_headers(name, val, self.encoding)
        MIMEMultipart.__setitem__(self, name, val)


@functools.lru_cache(maxsize=4096)
def envelope_address(address: str | tuple[str, str], encoding: str) -> str:
    """Django's `sanitize_address`, kept for each address: the SMTP backend asks it for the
    sender and every recipient of every message (its errors are raised, not kept)."""
    return sanitize_address(address, encoding)


UNFOLDED = _Compat32Unfolded()


def _boundary(parts: list[str]) -> str:
    while True:
        boundary = "=_" + secrets.token_hex(16)
        if not any(boundary in part for part in parts):
            return boundary


class OutgoingEmail(EmailMultiAlternatives):
    """An `EmailMultiAlternatives` whose message is written with the costs above taken out;
    the same bytes otherwise (but the boundary's form)."""

    def _create_message(self, msg):
        msg = super()._create_message(msg)
        if type(msg) is SafeMIMEMultipart:
            # Django made it (the text and the HTML): the headers message() now sets on it
            # go through _Multipart's check, the same as SafeMIMEMultipart's but kept.
            msg.__class__ = _Multipart
        return msg

    def message(self):
        message = super().message()
        if message.is_multipart():
            parts = [self.body, *(content for content, _type in self.alternatives)]
            message.set_boundary(_boundary([p for p in parts if isinstance(p, str)]))
        message.policy = UNFOLDED
        return message
