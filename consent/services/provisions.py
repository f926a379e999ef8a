"""Provision of a student's data to an employer, and the consent check that precedes it."""

import re
import uuid
from datetime import datetime, timedelta
from typing import NamedTuple

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from consent.models import ApiClient, Consent, Provision, Purpose
from portal.models import Employer, User
from portal.shared.jsontime import json_time, json_time_sql
from portal.shared.locking import retry_on_deadlock, student_lock
from portal.shared.server_binding import server_bound_cursor
from portal.shared.uuids import canonical_uuids

# Clocks differ between the pipeline and the portal; a provision "a few seconds from now"
# is a skew, not a forecast.
CLOCK_SKEW = timedelta(minutes=5)


class ProvisionRefused(ValidationError):
    pass


@retry_on_deadlock
def provision_record(
    *,
    student: User,
    employer: Employer,
    purpose: Purpose,
    data_items: str,
    provided_at: datetime | None = None,
    first_provided_at: datetime | None = None,
    client: ApiClient | None = None,
    reference: str = "",
) -> Provision:
    """Record that the student's data was given to the employer, if a valid grant allows it.

    The grant row is locked while the record is made, so a withdrawal committed a moment
    earlier is always seen. A bulk record gives the first and the last time. With a
    `reference`, a retried call returns the record the first call made.
    """
    now = timezone.now()
    provided_at = provided_at or now
    if client is not None and client.employer_id not in (None, employer.pk):
        raise ProvisionRefused(
            _("This key may only record its own company's provisions."), code="scope"
        )
    if not data_items.strip():
        raise ProvisionRefused(_("Say which data items were provided."), code="data_items")
    if provided_at > now + CLOCK_SKEW:
        raise ProvisionRefused(_("A provision cannot be recorded in the future."), code="future")
    if first_provided_at is not None and first_provided_at > provided_at:
        raise ProvisionRefused(
            _("The first provision must not be after the last."), code="first_after_last"
        )
    if reference:
        existing = Provision.objects.filter(recorded_by=client, reference=reference).first()
        if existing is not None:
            if (existing.student_id, existing.employer_id, existing.purpose_id) != (
                student.pk,
                employer.pk,
                purpose.pk,
            ):
                raise ProvisionRefused(
                    _("This reference was already used for another record."), code="reference"
                )
            return existing
    try:
        with transaction.atomic():
            student_lock(student_id=student.pk)  # first, as every change of the student's
            state = (
                Consent.objects.select_for_update()
                .filter(student=student, employer=employer, purpose=purpose, granted=True)
                .select_related("event")
                .first()
            )
            if state is None:
                raise ProvisionRefused(
                    _("There is no valid consent from this student for this company and purpose."),
                    code="no_valid_grant",
                )
            earliest = first_provided_at or provided_at
            if earliest < state.event.occurred_at - CLOCK_SKEW:
                raise ProvisionRefused(
                    _("The provision is dated before the consent it would rely on."),
                    code="before_grant",
                )
            return Provision.objects.create(
                student=student,
                employer=employer,
                purpose=purpose,
                consent_event=state.event,
                data_items=data_items.strip()[:500],
                provided_at=provided_at,
                first_provided_at=first_provided_at,
                recorded_at=now,
                recorded_by=client,
                reference=reference,
            )
    except IntegrityError:
        # The same reference recorded concurrently: answer with the first record.
        return Provision.objects.get(recorded_by=client, reference=reference)


# The name DESIGN.md gives it.
record_provision = provision_record


class CheckResult(NamedTuple):
    allowed: bool
    reason: str  # "granted", "no_valid_grant", "unknown_student", "unknown_purpose", "out_of_scope"
    event_id: int | None = None
    # The grant's time as the API answers it (`json_time`): made by the query itself.
    granted_at: str | None = None
    policy_version: str | None = None


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# What Purpose.code (an ASCII SlugField) can hold. Anything else is no purpose, and is not
# sent to the database at all: PostgreSQL refuses a NUL in text and in JSON (a 500, found by
# the fuzzer), and UTF-8 cannot encode a lone surrogate that a JSON "\ud800" escape makes.
_PURPOSE_CODE = re.compile(r"[-a-zA-Z0-9_]{1,60}")


def purpose_code_possible(code: str) -> bool:
    return _PURPOSE_CODE.fullmatch(code) is not None


# PostgreSQL: one query, one row per triple in order: the student's pk (NULL: unknown), the
# purpose's pk (NULL: unknown) and the live grant, if any. The triples travel as three array
# parameters, written by a join in Python and parsed by the server: quicker to write, send
# and read than one JSON parameter, and never adapted element by element. LATERAL with
# LIMIT 1 is never flattened into a join, so each triple costs one index probe per table:
# with 1,000 triples against 100,000 students the planner otherwise prefers a sequential
# scan of every student, five times slower. The grant's time comes back as the text the API
# answers (portal/shared/jsontime.py): a timestamptz would go through Django's time-zone
# loader, and then a formatting call, in Python for each row.
CHECK_SQL = """
SELECT s.id, p.id, g.event_id, g.granted_at, g.label
FROM unnest(%s::uuid[], %s::bigint[], %s::text[]) WITH ORDINALITY AS q(s, e, p, n)
LEFT JOIN LATERAL (
    SELECT id FROM portal_user WHERE public_id = q.s LIMIT 1
) s ON true
LEFT JOIN consent_purpose p ON p.code = q.p
LEFT JOIN LATERAL (
    SELECT c.event_id, GRANTED_AT AS granted_at, v.label
    FROM consent_consent c
    JOIN consent_consentevent e ON e.id = c.event_id
    JOIN consent_policyversion v ON v.id = e.policy_version_id
    WHERE c.student_id = s.id AND c.employer_id = q.e AND c.purpose_id = p.id AND c.granted
    LIMIT 1
) g ON true
ORDER BY q.n
""".replace("GRANTED_AT", json_time_sql("e.occurred_at"))


def _public_id(value) -> str | None:
    """The canonical text of a UUID, or None for something that is not one."""
    text = str(value).lower()
    if _CANONICAL_UUID.fullmatch(text):
        return text
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def _public_ids(values: list) -> list[str | None]:
    """`_public_id` of each value: the whole batch at once when every value is a UUID's
    canonical text (the API sends nothing else), else one by one."""
    canonical = canonical_uuids(values)
    return canonical if canonical is not None else [_public_id(value) for value in values]


def check_parameters(public_ids, employer_ids, codes) -> list[str]:
    """CHECK_SQL's three arrays as PostgreSQL's literals, NULL for what is unknown. Safe to
    write by hand: the ids are canonical UUIDs and integers, the codes `_PURPOSE_CODE`'s
    letters, digits, '-' and '_' (quoted, so that a code "null" is not NULL)."""
    return [
        "{" + ",".join(public_id or "NULL" for public_id in public_ids) + "}",
        "{" + ",".join("NULL" if e is None else str(e) for e in employer_ids) + "}",
        "{" + ",".join(f'"{code}"' if code else "NULL" for code in codes) + "}",
    ]


def _check_rows_postgresql(public_ids, employer_ids, codes) -> list[tuple]:
    # The arrays travel as parameters, not quoted into the statement's text.
    with server_bound_cursor() as cursor:
        cursor.execute(CHECK_SQL, check_parameters(public_ids, employer_ids, codes))
        return cursor.fetchall()


def _check_rows_portable(public_ids, employer_ids, codes) -> list[tuple]:
    """The same rows in three queries (students, purposes, grants), for SQLite."""
    students = {
        str(public_id): pk
        for public_id, pk in User.objects.filter(
            public_id__in={p for p in public_ids if p}
        ).values_list("public_id", "pk")
    }
    purposes = dict(Purpose.objects.values_list("code", "pk"))
    grants = {
        row[:3]: row[3:]
        for row in Consent.objects.filter(
            student_id__in=set(students.values()),
            employer_id__in={e for e in employer_ids if e is not None},
            granted=True,
        ).values_list(
            "student_id",
            "employer_id",
            "purpose_id",
            "event_id",
            "event__occurred_at",
            "event__policy_version__label",
        )
    }
    rows = []
    for public_id, employer_id, code in zip(public_ids, employer_ids, codes, strict=True):
        student, purpose = students.get(public_id), purposes.get(code)
        event, granted_at, label = grants.get((student, employer_id, purpose), NO_GRANT)
        rows.append((student, purpose, event, granted_at and json_time(granted_at), label))
    return rows


NO_GRANT = (None, None, None)

# The refusals, one object each, shared by every triple they answer.
OUT_OF_SCOPE = CheckResult(False, "out_of_scope")
UNKNOWN_STUDENT = CheckResult(False, "unknown_student")
UNKNOWN_PURPOSE = CheckResult(False, "unknown_purpose")
NO_VALID_GRANT = CheckResult(False, "no_valid_grant")


def consent_check(
    *, triples: list[tuple[str, int, str]], client: ApiClient | None = None
) -> list[CheckResult]:
    """Whether each (student public id, employer id, purpose code) may be processed now.

    A fixed number of queries, whatever the batch size: one on PostgreSQL, three elsewhere.
    Valid grants are exactly the `Consent` rows with granted=True (lapses are applied when
    a version is accepted), so no per-row policy lookup is needed. An employer's key asking
    about another employer is answered out_of_scope without looking anything up.

    The answer is what the plain definition gives triple by triple (a student found by
    public id, a purpose by code, and its `Consent` row granted; tests/consent/
    test_api_check.py compares the two on a mix of answers).
    """
    scope = None if client is None else client.employer_id
    public_ids = [public_id for public_id, _e, _p in triples]
    employer_ids = [employer_id for _s, employer_id, _p in triples]
    codes = [code for _s, _e, code in triples]
    if scope is not None:
        # Another employer's triple is looked up as nothing at all: no student, no purpose.
        for index, employer_id in enumerate(employer_ids):
            if employer_id != scope:
                public_ids[index] = employer_ids[index] = codes[index] = None
    public_ids = _public_ids(public_ids)
    # A batch names few purposes: each code is checked once.
    known = {code: code if code and _PURPOSE_CODE.fullmatch(code) else None for code in set(codes)}
    codes = [known[code] for code in codes]
    if connection.vendor == "postgresql":
        rows = _check_rows_postgresql(public_ids, employer_ids, codes)
    else:
        rows = _check_rows_portable(public_ids, employer_ids, codes)
    results = []
    for employer_id, (student, purpose, event, granted_at, label) in zip(
        employer_ids, rows, strict=True
    ):
        if employer_id is None:
            results.append(OUT_OF_SCOPE)
        elif student is None:
            results.append(UNKNOWN_STUDENT)
        elif purpose is None:
            results.append(UNKNOWN_PURPOSE)
        elif event is None:
            results.append(NO_VALID_GRANT)
        else:
            results.append(CheckResult(True, "granted", event, granted_at, label))
    return results
