"""Per-employer consent: grant, withdraw, withdraw everything, and lapse.

Each change appends ConsentEvent rows and updates the Consent state rows in one transaction,
with the student's row locked, so that concurrent changes for one student run one after
another and the state always equals the last event of the ledger.
"""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from consent.models import (
    Consent,
    ConsentEvent,
    ConsentScreen,
    PolicyAcceptance,
    PolicyVersion,
    Provision,
    Purpose,
    StopUseNotice,
    newest_acceptance_sql,
)
from consent.services import withdrawal_statement
from consent.templatetags.consent_tags import event_lines
from portal.models import Employer, Language, User
from portal.shared.bulk import insert_rows
from portal.shared.emails import email_queue_template, email_queue_to_company
from portal.shared.locking import retry_on_deadlock, student_lock

Action = ConsentEvent.Action
Actor = ConsentEvent.Actor


class ConsentRefused(ValidationError):
    """A grant that must not happen. `code` says why; `version` is the newest accepted one."""

    def __init__(self, message, *, code: str, version: PolicyVersion | None = None):
        super().__init__(message, code=code)
        self.version = version


def _lock_student(student: User) -> None:
    # One student's consent changes run one after another (PostgreSQL row lock; SQLite
    # serialises writers anyway), in one lock order with provisions and requests.
    student_lock(student_id=student.pk)


def _newest_acceptance(student: User) -> PolicyAcceptance | None:
    # The version's purposes and their wording are read, never its texts (a real policy's
    # are tens of kB each, loaded for every change otherwise).
    return PolicyAcceptance.objects.latest_for(student, defer_texts=True)


def _newest_version(student: User) -> PolicyVersion | None:
    """The version of the student's newest acceptance, as a withdrawal records it: its key,
    label and wording of the purposes read (the rest loads if asked). Written once as SQL:
    the ORM took 0.6 ms of a filing's withdrawals to build what runs in 0.1 ms."""
    return next(iter(PolicyVersion.objects.raw(_NEWEST_VERSION_SQL, [student.pk])), None)


_NEWEST_VERSION_SQL = newest_acceptance_sql("v.id", "v.label", "v.purposes_wording")


def _new_event(
    *,
    student: User,
    employer: Employer,
    purpose: Purpose,
    action: str,
    version: PolicyVersion,
    screen: str,
    language: str,
    actor: str,
    actor_user: User | None,
    reason: str,
    ip_address: str | None,
    user_agent: str,
    at,
) -> ConsentEvent:
    """The ledger's row for one change, not yet saved."""
    return ConsentEvent(
        student=student,
        employer=employer,
        purpose=purpose,
        action=action,
        occurred_at=at,
        screen=screen,
        policy_version=version,
        language=language,
        actor=actor,
        actor_user=actor_user,
        reason=reason,
        collection_method="web form: one button per employer and purpose"
        if screen == ConsentScreen.CONSENT_PAGE
        else "",
        ip_address=ip_address or None,
        user_agent=(user_agent or "")[:400],
    )


def _record(*, state: Consent | None, **change) -> ConsentEvent:
    """One change: its event, and the state row that follows it."""
    event = _new_event(**change)
    event.save(force_insert=True)
    student, employer, purpose, at = event.student, event.employer, event.purpose, event.occurred_at
    granted = event.action == Action.GRANT
    if state is None:
        Consent.objects.create(
            student=student,
            employer=employer,
            purpose=purpose,
            granted=granted,
            event=event,
            updated_at=at,
        )
    else:
        state.granted, state.event, state.updated_at = granted, event, at
        state.save(update_fields=["granted", "event", "updated_at"])
    return event


def _check_actor(actor: str, actor_user: User | None, reason: str) -> None:
    if actor == Actor.STAFF and (actor_user is None or not reason.strip()):
        raise ValueError("a change by staff needs the staff user and the student's instruction")


@retry_on_deadlock
def consent_grant(
    *,
    student: User,
    employer: Employer,
    purpose: Purpose,
    screen: str = ConsentScreen.CONSENT_PAGE,
    language: str = Language.JA,
    actor: str = Actor.STUDENT,
    actor_user: User | None = None,
    reason: str = "",
    ip_address: str | None = None,
    user_agent: str = "",
) -> ConsentEvent:
    """Grant `purpose` for `employer`. Granting what is already granted records nothing."""
    _check_actor(actor, actor_user, reason)
    if not purpose.requires_opt_in:
        raise ConsentRefused(
            _("This purpose is covered by the privacy policy and needs no separate consent."),
            code="not_opt_in",
        )
    if not employer.is_active:
        raise ConsentRefused(_("This company no longer takes part."), code="employer_inactive")
    with transaction.atomic():
        _lock_student(student)
        newest = _newest_acceptance(student)
        if newest is None:
            raise ConsentRefused(_("Please accept the privacy policy first."), code="no_acceptance")
        if not newest.version.purposes.filter(pk=purpose.pk).exists():
            raise ConsentRefused(
                _(
                    "The privacy policy you accepted (version %(label)s) does not describe this "
                    "use of your data, so it cannot be turned on. Read and accept the newer "
                    "version first."
                )
                % {"label": newest.version.label},
                code="purpose_not_in_policy",
                version=newest.version,
            )
        state = (
            Consent.objects.select_for_update()
            .filter(student=student, employer=employer, purpose=purpose)
            .select_related("event")
            .first()
        )
        if state is not None and state.granted:
            return state.event
        event = _record(
            student=student,
            employer=employer,
            purpose=purpose,
            action=Action.GRANT,
            version=newest.version,
            state=state,
            screen=screen,
            language=language,
            actor=actor,
            actor_user=actor_user,
            reason=reason,
            ip_address=ip_address,
            user_agent=user_agent,
            at=timezone.now(),
        )
        _email_receipt(student=student, events=[event])
    return event


def _withdraw_states(
    *,
    student: User,
    states: list[Consent],
    action: str,
    screen: str,
    language: str,
    actor: str,
    actor_user: User | None,
    reason: str,
    ip_address: str | None,
    user_agent: str,
    version: PolicyVersion,
    notify: bool = True,
) -> list[ConsentEvent]:
    now = timezone.now()
    # One INSERT for the events and one UPDATE for the states, whatever their number: a
    # deletion to 38 companies withdraws 38 grants while the student waits for the page.
    events = insert_rows(
        [
            _new_event(
                student=student,
                employer=state.employer,
                purpose=state.purpose,
                action=action,
                version=version,
                screen=screen,
                language=language,
                actor=actor,
                actor_user=actor_user,
                reason=reason,
                ip_address=ip_address,
                user_agent=user_agent,
                at=now,
            )
            for state in states
        ]
    )
    for state, event in zip(states, events, strict=True):
        state.granted, state.event, state.updated_at = False, event, now
    _states_point_at(states, now=now)
    if notify:
        _notify_recipients(student=student, events=events)
    return events


def _states_point_at(states: list[Consent], *, now) -> None:
    """The withdrawn state rows, each pointing at its new event, in one UPDATE from a VALUES
    list (PostgreSQL and SQLite alike name its columns column1, column2): not bulk_update,
    whose CASE of 38 branches costs Django ten times more to build, nor a subquery per row
    finding the event again."""
    table = connection.ops.quote_name(Consent._meta.db_table)
    rows = ", ".join(["(%s, %s)"] * len(states))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET granted = %s, updated_at = %s, event_id = v.column2 "  # noqa: S608 - our table's name; values are parameters
            f"FROM (VALUES {rows}) AS v WHERE {table}.id = v.column1",
            [False, now, *(value for state in states for value in (state.pk, state.event_id))],
        )


@retry_on_deadlock
def consent_withdraw(
    *,
    student: User,
    employer: Employer,
    purpose: Purpose,
    screen: str = ConsentScreen.CONSENT_PAGE,
    language: str = Language.JA,
    actor: str = Actor.STUDENT,
    actor_user: User | None = None,
    reason: str = "",
    ip_address: str | None = None,
    user_agent: str = "",
) -> ConsentEvent | None:
    """Withdraw a grant. Provision stops at once: `provision_record` checks the same row.
    Withdrawing what is not granted records nothing and returns None."""
    _check_actor(actor, actor_user, reason)
    with transaction.atomic():
        _lock_student(student)
        state = (
            Consent.objects.select_for_update()
            .filter(student=student, employer=employer, purpose=purpose, granted=True)
            .select_related("employer", "purpose", "event__policy_version")
            .first()
        )
        if state is None:
            return None
        newest = _newest_version(student)
        events = _withdraw_states(
            student=student,
            states=[state],
            action=Action.WITHDRAW,
            screen=screen,
            language=language,
            actor=actor,
            actor_user=actor_user,
            reason=reason,
            ip_address=ip_address,
            user_agent=user_agent,
            version=newest or state.event.policy_version,
        )
        _email_receipt(student=student, events=events)
    return events[0]


@retry_on_deadlock
def consent_withdraw_all(
    *,
    student: User,
    screen: str = ConsentScreen.WITHDRAW_ALL,
    language: str = Language.JA,
    actor: str = Actor.STUDENT,
    actor_user: User | None = None,
    reason: str = "",
    ip_address: str | None = None,
    user_agent: str = "",
    employers: list[Employer] | None = None,
    notify_recipients: bool = True,
    student_locked: bool = False,
    email_receipt: bool = True,
) -> list[ConsentEvent]:
    """Withdraw every live grant (or those for `employers`): one event per employer and
    purpose, one receipt email listing them all. A data-rights request passes
    `notify_recipients=False`: its own message to each company says more than a notice;
    `student_locked=True`: its transaction already holds the student's lock; and
    `email_receipt=False`: its own "received" email to the student lists these receipts
    (`receipt_context`), one email where the student had two at the same moment."""
    _check_actor(actor, actor_user, reason)
    # No savepoint: inside a caller's transaction (a filing), a failure here fails the
    # caller's whole change anyway; a savepoint would only cost two more statements.
    with transaction.atomic(savepoint=False):
        if not student_locked:
            _lock_student(student)
        # What every event of this change records alike.
        change = {
            "screen": screen,
            "language": language,
            "actor": actor,
            "actor_user": actor_user,
            "reason": reason,
            "ip_address": ip_address,
            "user_agent": user_agent,
        }
        if (newest := _newest_version(student)) is not None and withdrawal_statement.usable():
            template = _new_event(
                student=student,
                employer=None,
                purpose=None,
                action=Action.WITHDRAW,
                version=newest,
                at=timezone.now(),
                **change,
            )
            events = withdrawal_statement.withdraw_in_one_statement(
                template=template, student=student, employers=employers
            )
            if events and notify_recipients:
                _notify_recipients(student=student, events=events)
        else:
            events = _withdraw_all_step_by_step(
                student=student,
                newest=newest,
                employers=employers,
                notify=notify_recipients,
                **change,
            )
        if events and email_receipt:
            _email_receipt(student=student, events=events)
    return events


def _withdraw_all_step_by_step(
    *, student: User, newest: PolicyVersion | None, employers: list[Employer] | None, **change
) -> list[ConsentEvent]:
    """consent_withdraw_all's withdrawals on a database other than PostgreSQL, or for a
    student with no acceptance (the states' own version is recorded): the states read, the
    events inserted, the states updated. The same ledger as withdrawal_statement's."""
    # The state rows only (of=self): without it, PostgreSQL locked every joined row too,
    # the companies' and the purposes', so two students withdrawing from the same
    # companies (two filings at once) waited for each other.
    states = Consent.objects.select_for_update(of=("self",)).filter(student=student, granted=True)
    if employers is not None:
        states = states.filter(employer__in=employers)
    states = list(
        states.select_related("employer", "purpose").order_by(
            "employer__name", "purpose__code", "employer__id", "purpose__id"
        )
    )
    if not states:
        return []
    return _withdraw_states(
        student=student,
        states=states,
        action=Action.WITHDRAW,
        version=newest or states[0].event.policy_version,
        **change,
    )


def consent_lapse_after_acceptance(*, student: User, version: PolicyVersion) -> list[ConsentEvent]:
    """Grants for purposes the newly accepted version no longer lists lapse, as events.

    Called inside `policy_accept`'s transaction when `version` became the student's newest.
    """
    listed = set(version.purposes.values_list("pk", flat=True))
    states = list(
        Consent.objects.select_for_update()
        .filter(student=student, granted=True)
        .exclude(purpose_id__in=listed)
        .select_related("employer", "purpose")
    )
    if not states:
        return []
    events = _withdraw_states(
        student=student,
        states=states,
        action=Action.LAPSE,
        screen=ConsentScreen.POLICY_ACCEPTANCE,
        language=student.language,
        actor=Actor.SYSTEM,
        actor_user=None,
        reason=f"policy version {version.label} does not list this purpose",
        ip_address=None,
        user_agent="",
        version=version,
    )
    _email_receipt(student=student, events=events)
    return events


def _email_receipt(*, student: User, events: list[ConsentEvent]) -> None:
    language = student.language or Language.JA
    email_queue_template(
        to=student.email,
        template="consent_change",
        context={"student": student, "events": events, **receipt_context(events, language)},
        kind="consent_change",
        language=language,
    )


def receipt_context(events: list[ConsentEvent], language: str) -> dict:
    """What an email listing consent changes as receipts needs: `listed_text` and
    `listed_html` (each change's line, time and receipt link), `consents_url` and
    `language`. The consent receipt's own email, and a data-rights request's "received"
    email, which lists the withdrawals the request made (consent_withdraw_all's
    `email_receipt=False`)."""
    # Each change's line, time and receipt link, made once here rather than by the text and
    # the HTML template each: a deletion to 38 companies lists 38 of them while the student
    # waits. The link is reversed once and each receipt's id put in it (reversing costs
    # about 0.1 ms, a filing's 38 of them 4 ms), and the events of one change share a time.
    sample = uuid.UUID(int=0)
    link = settings.SITE_URL + reverse("consent:event_receipt", args=[sample])
    with translation.override(language):
        when = {
            at: date_format(timezone.localtime(at), "DATETIME_FORMAT")
            for at in {event.occurred_at for event in events}
        }
        receipts = [
            (line, when[event.occurred_at], link.replace(str(sample), str(event.receipt_id)))
            for line, event in zip(event_lines(events, language), events, strict=True)
        ]
        receipt = gettext("Receipt")
    # The list written here, not by the templates' loops: 38 items twice were half of the
    # email's time. The same lines as the loops wrote, the HTML's values escaped.
    listed_text = "".join(f"\n- {line}\n  {at} · {receipt}: {url}\n" for line, at, url in receipts)
    listed_html = "".join(
        f'\n  <li>{escape(line)}<br>{escape(at)} · <a href="{escape(url)}">{escape(receipt)}</a>'
        "</li>\n"
        for line, at, url in receipts
    )
    return {
        "listed_text": listed_text,
        "listed_html": mark_safe(listed_html),  # noqa: S308 - every value escaped above
        "language": language,
        "consents_url": settings.SITE_URL + reverse("consent:consent_list"),
    }


def _notify_recipients(*, student: User, events: list[ConsentEvent]) -> None:
    """Tell every employer that already received this student's data to stop using it."""
    by_employer: dict[int, list[ConsentEvent]] = {}
    for event in events:
        by_employer.setdefault(event.employer_id, []).append(event)
    received = set(
        Provision.objects.filter(student=student, employer_id__in=by_employer)
        .values_list("employer_id", flat=True)
        .distinct()
    )
    # Inactive employers too: they still hold what they received.
    for employer_id in sorted(received):
        employer_events = by_employer[employer_id]
        employer = employer_events[0].employer
        # To the primary contact in its language; with none, the notice is stored failed
        # with the reason, and staff find it among the failed stop-use notices.
        message = email_queue_to_company(
            employer=employer,
            template="stop_use",
            context={
                "employer": employer,
                "events": employer_events,
                "student_public_id": student.public_id,
            },
            kind="stop_use",
        )
        StopUseNotice.objects.create(event=employer_events[0], employer=employer, email=message)
