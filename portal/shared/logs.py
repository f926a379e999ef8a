"""Logging that never writes a usable secret (DESIGN.md: "Secrets are hashed, and never rest
readable"). A company's answer link or a password-reset or confirmation key can reach a log
line in a request's path (Django's "Not Found: /r/…", runserver's and gunicorn's access
lines) or an exception's message; the filter masks them before any handler writes."""

import logging
import re

# /r/<token>/ (answer links), /company/w/<token>/ (workspace links),
# /accounts/password/reset/key/<uid>-<key>/, /accounts/confirm-email/<key>/: the secret part
# of each.
SECRET_PATHS = re.compile(
    r"(?P<path>/r/|/company/w/|/accounts/password/reset/key/|/accounts/confirm-email/)(?P<secret>[^\s/?\"'<>]+)"
)
# The job site's OIDC callback, /accounts/oidc/<provider>/login/callback/?code=…: spent at
# once and useless without the client's secret and PKCE verifier, but a credential still.
SECRET_QUERIES = re.compile(
    r"(?P<path>/accounts/oidc/[^\s?\"'<>]*\?(?:[^\s\"'<>]*&)?code=)(?P<secret>[^\s&#\"'<>]+)"
)
MASK = "[hidden]"


def redact(text: str) -> str:
    text = SECRET_PATHS.sub(lambda m: m.group("path") + MASK, text)
    return SECRET_QUERIES.sub(lambda m: m.group("path") + MASK, text)


class RedactSecrets(logging.Filter):
    """Masks the message, and the traceback of one logged with an exception (an exception's
    message can quote a path: gunicorn logs "Error handling request POST /r/…" with one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # A handler's formatter writes exc_text when it is set, instead of formatting
            # the exception itself.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def mask_handlers(logger: logging.Logger) -> None:
    """Put the filter on each of `logger`'s handlers that lacks it: for loggers configured
    by someone else than settings.LOGGING (gunicorn's own, Celery's)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
