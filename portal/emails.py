"""Outgoing email: one small function per message, all delivered through the outbox.

A message is rendered in the recipient's language, stored as an EmailMessage row, and
queued for the Celery task `portal.tasks.email_send` once the transaction commits.
"""

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation

from portal.models import EmailMessage


def email_queue_message(
    *, to: str, subject: str, body_text: str, body_html: str = "", kind: str, language: str
) -> EmailMessage:
    from portal.tasks import email_send  # the task module imports this one

    message = EmailMessage.objects.create(
        to=to,
        subject=" ".join(subject.split())[:300],
        body_text=body_text,
        body_html=body_html,
        kind=kind,
        language=language,
    )
    # robust: if the broker is down, the row is committed and the sweeper sends it later;
    # the caller (a sign-up, a request) must not fail after its own work is saved.
    transaction.on_commit(lambda: email_send.delay(message.pk), robust=True)
    return message


def email_queue_template(
    *, to: str, template: str, context: dict, kind: str, language: str
) -> EmailMessage:
    """Render emails/<template>-subject.txt, -body.txt and -body.html in `language`."""
    context = {
        "SITE_NAME": settings.SITE_NAME,
        "SITE_URL": settings.SITE_URL,
        "SUPPORT_EMAIL": settings.SUPPORT_EMAIL,
        "language": language,
        **context,
    }
    with translation.override(language):
        subject = render_to_string(f"emails/{template}-subject.txt", context)
        body_text = render_to_string(f"emails/{template}-body.txt", context)
        body_html = render_to_string(f"emails/{template}-body.html", context)
    return email_queue_message(
        to=to,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        kind=kind,
        language=language,
    )
