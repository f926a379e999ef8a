"""One connection to the mail server, kept open by a worker process across the messages it
sends, instead of a new connection (TCP, EHLO, STARTTLS, login) for every message.

A Celery worker turns keeping on at start (`mail_connection_keep`, in the project's Celery
wiring), with Django's SMTP backend; everywhere else (a web process with tasks run
in-process, a management command), and with any other backend (the console, files, the
tests' memory), each message opens and closes its own connection, as Django does by default.

A kept connection can be closed by the server while it waits: after the server's idle
timeout, or after its limit of messages per connection. The next message then fails on the
way in (EHLO, MAIL FROM) with the connection gone, before the server holds any of it, and
is sent again, once, over a new connection. A failure from DATA on is never retried here:
the server may have accepted the message, so it goes back to the outbox's own retry, as any
failed attempt (portal/tasks.py). After any failure the connection is dropped; the next
message opens a new one.
"""

import logging
import smtplib
import threading
import time

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends import smtp

from portal.shared.mime import OutgoingEmail, envelope_address

log = logging.getLogger(__name__)

DJANGO_SMTP = "django.core.mail.backends.smtp.EmailBackend"
# A connection idle for longer is closed and a new one opened: a relay's idle timeout is
# usually a minute or more (Postfix's smtpd_timeout: 300 s), so most never see it expire.
IDLE_SECONDS = 30.0


class _NotesData:
    """An SMTP client that notes whether the message it is sending reached DATA: until it
    did, the server holds nothing of the message, and sending it again cannot double it."""

    data_started = False

    def sendmail(self, *args, **kwargs):
        self.data_started = False
        return super().sendmail(*args, **kwargs)

    def data(self, msg):
        self.data_started = True
        return super().data(msg)


class _SMTP(_NotesData, smtplib.SMTP):
    pass


class _SMTP_SSL(_NotesData, smtplib.SMTP_SSL):  # noqa: N801 - smtplib's name
    pass


class SMTPBackend(smtp.EmailBackend):
    """Django's SMTP backend over a client that says whether a failure came before DATA."""

    @property
    def connection_class(self):
        return _SMTP_SSL if self.use_ssl else _SMTP

    def _send(self, email_message: EmailMessage) -> bool:
        """Django's `_send`, each envelope address sanitized once per process
        (`envelope_address`), not again for every message, and the outbox's message written
        straight to bytes (`OutgoingEmail.wire_bytes`)."""
        if not email_message.recipients():
            return False
        encoding = email_message.encoding or settings.DEFAULT_CHARSET
        from_email = envelope_address(email_message.from_email, encoding)
        recipients = [envelope_address(a, encoding) for a in email_message.recipients()]
        if isinstance(email_message, OutgoingEmail):
            data = email_message.wire_bytes()
        else:
            data = email_message.message().as_bytes(linesep="\r\n")
        try:
            self.connection.sendmail(from_email, recipients, data)
        except smtplib.SMTPException:
            if not self.fail_silently:
                raise
            return False
        return True

    def failed_before_data(self) -> bool:
        return self.connection is not None and not self.connection.data_started


def _connection_lost(exc: BaseException) -> bool:
    """The server went away, or said it is closing the connection (421)."""
    if isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionError):
        return True
    return isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 421


class _Kept(threading.local):
    keep = False
    backend = None
    key: tuple = ()
    used_at = 0.0


_kept = _Kept()


def _settings_key() -> tuple:
    return (
        settings.EMAIL_BACKEND,
        settings.EMAIL_HOST,
        settings.EMAIL_PORT,
        settings.EMAIL_HOST_USER,
        settings.EMAIL_USE_TLS,
        settings.EMAIL_USE_SSL,
    )


def mail_connection_keep(keep: bool = True) -> None:
    """Keep one connection open in this process (a worker), or stop keeping it."""
    mail_connection_close()
    _Kept.keep = keep


def mail_connection_forget() -> None:
    """In a process forked from one that kept a connection: forget it without a word to the
    server (the socket is the parent's too)."""
    _kept.backend = None


def mail_connection_close() -> None:
    """Close the kept connection, if any (QUIT), quietly: it is no longer wanted."""
    backend, _kept.backend = _kept.backend, None
    if backend is not None:
        try:
            backend.close()
        except Exception:  # noqa: BLE001 - a connection already broken is closed anyway
            log.debug("closing the kept mail connection failed", exc_info=True)


def _open() -> tuple:
    """The kept backend, opened; and whether it was opened just now."""
    key = _settings_key()
    stale = time.monotonic() - _kept.used_at > IDLE_SECONDS
    if _kept.backend is not None and (_kept.key != key or stale):
        mail_connection_close()
    if _kept.backend is not None:
        return _kept.backend, False
    backend = SMTPBackend(fail_silently=False)
    backend.open()
    _kept.backend, _kept.key = backend, key
    return backend, True


def _send_kept(email: EmailMessage) -> None:
    backend, fresh = _open()
    try:
        backend.send_messages([email])
    except Exception as exc:
        retry = not fresh and backend.failed_before_data() and _connection_lost(exc)
        mail_connection_close()
        if not retry:
            raise
        log.info("the mail server closed the kept connection (%s): sending over a new one", exc)
        backend, _fresh = _open()
        try:
            backend.send_messages([email])
        except Exception:
            mail_connection_close()
            raise
    _kept.used_at = time.monotonic()


def mail_send(email: EmailMessage) -> None:
    """Hand `email` to the mail server: over this process's kept connection when it keeps
    one, else over a connection of its own. Raises what the server or the network raised."""
    if _Kept.keep and settings.EMAIL_BACKEND == DJANGO_SMTP:
        _send_kept(email)
    else:
        email.send()
