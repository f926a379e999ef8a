"""Take the live secrets out of the emails stored before they were sealed (issue 17).

Answer links (/r/<token>/), password-reset links and email-confirmation links are found in
the stored bodies and replaced by placeholders. A message still waiting to be sent keeps
them sealed beside it (portal/shared/sealing.py); one already sent or failed keeps nothing.
Emailed codes cannot be told apart from other text; they expire within minutes.
"""

import re

from django.db import migrations

SECRET_LINKS = re.compile(
    r"https?://[^\s\"'<>]*?(?:/r/[A-Za-z0-9_-]{20,}/"
    r"|/accounts/password/reset/key/[^\s\"'<>/]+/"
    r"|/accounts/confirm-email/[^\s\"'<>/]+/)"
)
WAITING = ("queued", "sending")


def seal_stored(apps, schema_editor):
    from portal.shared.sealing import Slots

    EmailMessage = apps.get_model("portal", "EmailMessage")
    candidates = EmailMessage.objects.filter(body_text__regex=r"/r/|/accounts/").only(
        "pk", "status", "body_text", "body_html"
    )
    for message in candidates.iterator(chunk_size=500):
        slots = Slots()
        found: dict[str, str] = {}

        def hide(match, found=found, slots=slots):
            link = match.group(0)
            if link not in found:
                found[link] = slots.hide(link)
            return found[link]

        body_text = SECRET_LINKS.sub(hide, message.body_text)
        body_html = SECRET_LINKS.sub(hide, message.body_html)
        if not found:
            continue
        EmailMessage.objects.filter(pk=message.pk).update(
            body_text=body_text,
            body_html=body_html,
            sealed_secrets=slots.sealed() if message.status in WAITING else "",
        )


class Migration(migrations.Migration):
    dependencies = [("portal", "0010_email_sealed_secrets")]

    operations = [migrations.RunPython(seal_stored, migrations.RunPython.noop)]
