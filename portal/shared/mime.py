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
- **The outbox's one shape written straight to bytes** (`OutgoingEmail.wire_bytes`). Every
  email the outbox sends is a text and an HTML part, UTF-8, no attachment, no extra header:
  its bytes are written directly, each header folded by the same policy as above (so the
  same code path and the same kept values), the parts' fixed headers as Django writes them.
  Anything else (a long line Django would quote-print, a carriage return, an attachment)
  goes through `message()`. tests/portal/test_mime.py compares the two byte for byte over
  thousands of random messages. 0.18 -> 0.02 ms a message.
"""

import functools
import secrets
from email.mime.multipart import MIMEMultipart
from email.policy import Compat32
from email.utils import formatdate, make_msgid

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import (
    RFC5322_EMAIL_LINE_LENGTH_LIMIT,
    SafeMIMEMultipart,
    forbid_multi_line_headers,
    sanitize_address,
)
from django.core.mail.utils import DNS_NAME

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


def _checked(name: str, val, encoding: str) -> tuple[str, str]:
    """Django's header check (no line break; encoded if not ASCII), kept for a header whose
    values repeat."""
    if name.lower() in _REPEATED and isinstance(val, str) and len(val) <= _KEPT_LENGTH:
        return _repeated(name, val, encoding)
    return forbid_multi_line_headers(name, val, encoding)


class _Multipart(SafeMIMEMultipart):
    """Django's multipart message, its repeated headers checked and encoded once a value."""

    def __setitem__(self, name, val):
        MIMEMultipart.__setitem__(self, *_checked(name, val, self.encoding))


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

    def wire_bytes(self) -> bytes:
        """What `message().as_bytes(linesep="\\r\\n")` writes (a boundary drawn afresh, the
        Date and Message-ID of now), written directly when the message has the outbox's
        shape (above), through `message()` otherwise."""
        wire = _wire_bytes(self)
        return wire if wire is not None else self.message().as_bytes(linesep="\r\n")


WIRE = UNFOLDED.clone(linesep="\r\n")
_SAMPLE_BOUNDARY = "=_" + "0" * 32
# The multipart's Content-Type, folded as compat32 folds it: where it breaks depends only on
# the boundary's length, which is always the same, so the boundary is put in afterwards.
_MULTIPART = (
    Compat32(linesep="\r\n")
    ._fold("Content-Type", f'multipart/alternative; boundary="{_SAMPLE_BOUNDARY}"', False)
    .encode("ascii")
    + b"MIME-Version: 1.0\r\n"
)


def _part_headers(subtype: str, cte: str) -> bytes:
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
        f"MIME-Version: 1.0\r\nContent-Transfer-Encoding: {cte}\r\n\r\n"
    ).encode("ascii")


_PART_HEADERS = {
    (subtype, cte): _part_headers(subtype, cte)
    for subtype in ("plain", "html")
    for cte in ("7bit", "8bit")
}


def _wire_part(subtype: str, text: str) -> bytes | None:
    """A text part as Django writes it (its headers, its lines ended by CRLF); None for one
    Django would write otherwise: quoted-printable for a line over 998 bytes (its check,
    word for word), or a carriage return the writer would turn into a line break."""
    if "\r" in text:
        return None
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return None
    if any(
        len(line.encode(errors="surrogateescape")) > RFC5322_EMAIL_LINE_LENGTH_LIMIT
        for line in text.splitlines()
    ):
        return None
    cte = "7bit" if len(encoded) == len(text) else "8bit"
    return _PART_HEADERS[subtype, cte] + encoded.replace(b"\n", b"\r\n")


def _wire_header(name: str, value: str) -> bytes:
    return WIRE.fold_binary(*_checked(name, value, "utf-8"))


def _wire_bytes(mail: "OutgoingEmail") -> bytes | None:
    """`mail`'s bytes for the outbox's shape of message, or None for any other."""
    if (
        mail.extra_headers
        or mail.attachments
        or mail.reply_to
        or mail.encoding
        or settings.DEFAULT_CHARSET != "utf-8"
        or not mail.to
        or len(mail.alternatives) != 1
        or not isinstance(mail.body, str)
        or not mail.body
    ):
        return None
    html, mimetype = mail.alternatives[0]
    if mimetype != "text/html" or not isinstance(html, str) or not html:
        return None
    plain_part, html_part = _wire_part("plain", mail.body), _wire_part("html", html)
    if plain_part is None or html_part is None:
        return None
    if not all(isinstance(v, str) for v in (mail.subject, mail.from_email, *mail.to, *mail.cc)):
        return None  # a lazy string, a tuple: Django's own path
    boundary = _boundary([mail.body, html]).encode("ascii")
    headers = [
        _MULTIPART.replace(_SAMPLE_BOUNDARY.encode("ascii"), boundary),
        _wire_header("Subject", mail.subject),
        _wire_header("From", mail.from_email),
        _wire_header("To", ", ".join(mail.to)),
    ]
    if mail.cc:
        headers.append(_wire_header("Cc", ", ".join(mail.cc)))
    headers.append(WIRE.fold_binary("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)))
    headers.append(WIRE.fold_binary("Message-ID", make_msgid(domain=DNS_NAME)))
    separator = b"\r\n--" + boundary
    return b"".join(
        [
            *headers,
            separator,
            b"\r\n",
            plain_part,
            separator,
            b"\r\n",
            html_part,
            separator,
            b"--\r\n",
        ]
    )
