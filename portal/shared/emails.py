"""Outgoing email: one small function per message, all delivered through the outbox.

A message is rendered in the recipient's language, stored as an EmailMessage row, and
queued for the Celery task `portal.tasks.email_send` once the transaction commits.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from secrets import token_hex

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.html import escape

from portal.models import EmailMessage, Employer
from portal.shared.bulk import insert_rows
from portal.shared.queueing import on_commit_publish
from portal.shared.sealing import Slots

# The messages queued inside `emails_held()`: kept for its caller instead of queued on commit.
_held: ContextVar[list[EmailMessage] | None] = ContextVar("emails_held", default=None)

# Stored as the email's error, which staff read in either language: so both are stored.
NO_PRIMARY_CONTACT = (
    "未送信: %(company)s には主たる個人情報窓口が登録されていません。企業の画面で登録してから"
    "再送してください。 / Not sent: %(company)s has no primary privacy contact. Add one on the "
    "employer's page, then resend."
)


def _message(*, to: str, subject: str, cc: list[str] | None = None, **fields) -> EmailMessage:
    """A row, not yet stored."""
    return EmailMessage(to=to, cc=list(cc or []), subject=" ".join(subject.split())[:300], **fields)


def _queued(
    *,
    to: str,
    subject: str,
    body_text: str,
    body_html: str = "",
    kind: str,
    language: str,
    cc: list[str] | None = None,
    slots: Slots | None = None,
) -> EmailMessage:
    return _message(
        to=to,
        cc=cc,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        kind=kind,
        language=language,
        queued_at=timezone.now(),
        sealed_secrets=slots.sealed() if slots else "",
    )


def _queue(message: EmailMessage) -> None:
    """A stored message, to be sent once the transaction commits."""
    held = _held.get()
    if held is not None:
        held.append(message)
    else:
        # If the broker is down, the row is committed and the sweeper sends it later: the
        # caller (a sign-up, a request) must not fail after its own work is saved.
        on_commit_publish("portal.tasks.email_send", EmailMessage, message.pk)


def email_queue_message(
    *,
    to: str,
    subject: str,
    body_text: str,
    body_html: str = "",
    kind: str,
    language: str,
    cc: list[str] | None = None,
    slots: Slots | None = None,
) -> EmailMessage:
    """Store and queue a message. Secrets go in as `slots`' placeholders, never as text."""
    message = _queued(
        to=to,
        cc=cc,
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        kind=kind,
        language=language,
        slots=slots,
    )
    message.save(force_insert=True)
    _queue(message)
    return message


def emails_store(messages: list[EmailMessage]) -> list[EmailMessage]:
    """Store messages made by `email_compose_to_company` (one INSERT for them all) and queue
    each that is to be sent. `insert_rows`: `bulk_create` of a request's 38 company emails
    cost the worker 0.12 ms a row, against 0.06."""
    insert_rows(messages)
    for message in messages:
        if not message.failed:
            _queue(message)
    return messages


@contextmanager
def emails_held() -> Iterator[list[EmailMessage]]:
    """The messages queued inside are not handed to the broker on commit: they are collected
    in the list this yields, for a caller that sends them itself once its transaction has
    committed (a worker passing a request on, over its kept SMTP connection:
    `portal.tasks.emails_send_now`). Their rows are queued like any other, so a caller that
    dies before sending leaves them to its redelivered task, or to the outbox's sweep."""
    held: list[EmailMessage] = []
    token = _held.set(held)
    try:
        yield held
    finally:
        _held.reset(token)


def _render(*, template: str, context: dict, language: str, secrets: tuple[str, ...] = ()) -> dict:
    """Render the three templates; the context values named in `secrets` are rendered as
    placeholders, their values sealed in the returned `slots`."""
    slots = Slots()
    context = {
        "SITE_NAME": settings.SITE_NAME,
        "SITE_URL": settings.SITE_URL,
        "SUPPORT_EMAIL": settings.SUPPORT_EMAIL,
        "language": language,
        **context,
        **{name: slots.hide(context[name]) for name in secrets},
    }
    with translation.override(language):
        subject = render_to_string(f"emails/{template}-subject.txt", context)
        body_text = render_to_string(f"emails/{template}-body.txt", context)
        body_html = render_to_string(f"emails/{template}-body.html", context)
    return {"subject": subject, "body_text": body_text, "body_html": body_html, "slots": slots}


def email_queue_template(
    *,
    to: str,
    template: str,
    context: dict,
    kind: str,
    language: str,
    cc: list[str] | None = None,
    secrets: tuple[str, ...] = (),
) -> EmailMessage:
    """Render emails/<template>-subject.txt, -body.txt and -body.html in `language`.
    `secrets` names the context values that grant access (links with a token, keys, codes):
    they reach SMTP and nothing else."""
    rendered = _render(template=template, context=context, language=language, secrets=secrets)
    return email_queue_message(to=to, cc=cc, kind=kind, language=language, **rendered)


def email_queue_to_company(
    *, employer: Employer, template: str, context: dict, kind: str, secrets: tuple[str, ...] = ()
) -> EmailMessage:
    """A message to a company: to its primary privacy contact, in that contact's language,
    with its other contacts in Cc. The templates greet `contact_name`; `secrets` as for
    `email_queue_template`.

    A company with no primary contact cannot be written to. The message is then stored
    already failed, with the reason, and not sent: it shows wherever staff look for failed
    emails (and the caller's task with it), and the caller's transaction goes on.
    """
    message = email_compose_to_company(
        employer=employer, template=template, context=context, kind=kind, secrets=secrets
    )
    message.save(force_insert=True)
    if not message.failed:
        _queue(message)
    return message


def email_compose_to_company(
    *, employer: Employer, template: str, context: dict, kind: str, secrets: tuple[str, ...] = ()
) -> EmailMessage:
    """`email_queue_to_company`'s message, not yet stored: for a caller that stores many at
    once (`emails_store`)."""
    rendered = _render(
        template=template,
        context={**context, "contact_name": _contact_name(employer)},
        language=employer.message_language,
        secrets=secrets,
    )
    return _to_company(employer, kind=kind, **rendered)


def _contact_name(employer: Employer) -> str:
    contact = employer.primary_contact
    return contact.name if contact else employer.name


def _to_company(
    employer: Employer, *, kind: str, subject: str, body_text: str, body_html: str, slots: Slots
) -> EmailMessage:
    """The message to the company's primary contact, the others in Cc; without a primary
    contact, stored as failed, its secrets dropped rather than kept."""
    contact = employer.primary_contact
    fields = {
        "cc": employer.cc_emails,
        "kind": kind,
        "language": employer.message_language,
        "subject": subject,
        "body_text": body_text,
        "body_html": body_html,
    }
    if contact is None:
        return _message(
            to="",
            status=EmailMessage.Status.FAILED,
            last_error=NO_PRIMARY_CONTACT % {"company": employer.name},
            **fields,
        )
    return _queued(to=contact.email, slots=slots, **fields)


def emails_compose_to_companies(
    *,
    employers: list[Employer],
    template: str,
    context: dict,
    secrets_each: list[dict[str, str]],
    kind: str,
) -> list[EmailMessage]:
    """`email_compose_to_company` for each of `employers`, the same email of one request:
    its templates rendered once per language, not once per company. The contact's name and
    each company's secrets (`secrets_each`, one dict a company, the same names for all) go
    into the rendered text as marks, then each company's in its place: escaped in the HTML
    as the template escapes them, as they are in the text and the subject (rendered with
    autoescape off). So `context` holds only what every company's email shares, and the
    templates use the name and the secrets as plain values (no filter on them).

    Rendering a company's request was half of the worker's time passing it on (seven
    `blocktranslate` blocks a template, three templates): in a wave, 38 companies of one
    request each rendered the same words. tests/disclosure/test_dispatch_batching.py holds
    the result to `email_compose_to_company`'s, byte for byte."""
    nonce = token_hex(8)  # a name or a secret a person typed never holds a mark
    name_mark = f"mark{nonce}name"
    names = list(secrets_each[0]) if secrets_each else []
    marks = {name: f"mark{nonce}secret{n}" for n, name in enumerate(names)}
    shared = {}
    messages = []
    for employer, values in zip(employers, secrets_each, strict=True):
        language = employer.message_language
        if language not in shared:
            shared[language] = _render(
                template=template,
                context={**context, "contact_name": name_mark, **marks},
                language=language,
            )
        rendered, name = shared[language], _contact_name(employer)
        slots = Slots()
        hidden = {marks[key]: slots.hide(values[key]) for key in names}
        messages.append(
            _to_company(
                employer,
                kind=kind,
                subject=_put(rendered["subject"], name_mark, name, hidden),
                body_text=_put(rendered["body_text"], name_mark, name, hidden),
                body_html=_put(
                    rendered["body_html"], name_mark, escape(name), hidden, escaped=True
                ),
                slots=slots,
            )
        )
    return messages


def _put(text: str, name_mark: str, name: str, hidden: dict, *, escaped: bool = False) -> str:
    """`text` with the name's mark replaced by `name` and each secret's by its placeholder."""
    text = text.replace(name_mark, name)
    for mark, placeholder in hidden.items():
        text = text.replace(mark, escape(placeholder) if escaped else placeholder)
    return text


# Where an erased email "went": an address no one can receive mail at (RFC 2606).
ERASED_ADDRESS = "erased@closed.invalid"


def _erased(closed: str) -> dict:
    return {
        "to": closed,
        "subject": "-",
        "body_text": "",
        "body_html": "",
        "sealed_secrets": "",
        "erase_when_done": False,
    }


def emails_to_closed_address(*, address: str, closed: str) -> int:
    """A student closed their account: the emails to `address` keep what they were (kind,
    times, state, for staff) but not the address or the text; those still to go are erased
    once sent or failed (`emails_erase`). Returns how many were erased now."""
    rows = EmailMessage.objects.filter(to__iexact=address)
    rows.filter(status__in=[EmailMessage.Status.QUEUED, EmailMessage.Status.SENDING]).update(
        erase_when_done=True
    )
    done = [EmailMessage.Status.SENT, EmailMessage.Status.FAILED]
    return rows.filter(status__in=done).update(**_erased(closed))


def emails_erase() -> int:
    """The emails of closed accounts that were still to go when the account closed, once
    they went (or failed): their address and text erased (backoffice.retention)."""
    done = [EmailMessage.Status.SENT, EmailMessage.Status.FAILED]
    return EmailMessage.objects.filter(erase_when_done=True, status__in=done).update(
        **_erased(ERASED_ADDRESS)
    )
