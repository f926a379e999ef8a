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
MASK = "[hidden]"


def redact(text: str) -> str:
    return SECRET_PATHS.sub(lambda m: m.group("path") + MASK, text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
