"""The portal's own deployment checks (`manage.py check --deploy`, docs/operations.md)."""

from django.conf import settings
from django.core.checks import Error, Tags, register

# Backends that write each message where people and logs read it: every answer link,
# workspace link, reset key and sign-in code the outbox sends, in clear (the worker hands the
# backend the copy with its secrets put back, portal/tasks.py). Fine on a laptop; in
# production one forgotten EMAIL_BACKEND would put them all in the journal.
WRITES_MESSAGES_OUT = {
    "django.core.mail.backends.console.EmailBackend",
    "django.core.mail.backends.filebased.EmailBackend",
}


@register(Tags.security, deploy=True)
def email_backend_sends(app_configs, **kwargs):
    if settings.DEBUG or settings.EMAIL_BACKEND not in WRITES_MESSAGES_OUT:
        return []
    return [
        Error(
            f"EMAIL_BACKEND is {settings.EMAIL_BACKEND}: it writes every email, with the "
            "links and codes in it, to the console or to files.",
            hint="Set EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend and "
            "EMAIL_HOST (docs/operations.md).",
            id="portal.E001",
        )
    ]
