"""`consent_withdraw_all`'s withdrawals as one PostgreSQL statement: the live states locked,
an event inserted for each, each state pointed at its event, and the events read back with
their companies and purposes.

A deletion to 38 companies withdraws 38 grants while the student waits for the page. Done
step by step (the states read with their companies and purposes, the events inserted, the
states updated) it cost 8.3 ms, three quarters of it Python making and reading rows; one
statement does the same in 4.6 ms, two thirds of it PostgreSQL's. Other databases, and a
student with no acceptance to record as the version, take the step-by-step path in
consents.py: the two must leave the same ledger (tests/consent/test_withdrawal_statement.py).
"""

import functools

from django.db import connection

from consent.models import Consent, ConsentEvent, Purpose
from portal.models import Employer, User
from portal.shared.bulk import column_cast
from portal.shared.raw_rows import row_reader

# The event's columns that come from the state row; every other one is the same in every
# event of the statement, taken from a template event (so a new field of the ledger is
# written without this file changing).
_FROM_STATE = ("employer", "purpose")
_OWN = ("id", "receipt_id")


_EMPLOYER = ConsentEvent._meta.get_field("employer")
_RECEIPT_ID = ConsentEvent._meta.get_field("receipt_id")
_PURPOSE = ConsentEvent._meta.get_field("purpose")


def usable() -> bool:
    return connection.vendor == "postgresql"


@functools.cache
def _statement(scoped: bool) -> tuple[str, list]:
    """The statement's text and the fields whose values it takes, in order: the student's
    id, (scoped) the companies' ids, each shared column's value, the states' new time."""
    consent = Consent._meta.db_table
    event = ConsentEvent._meta.db_table
    employer = Employer._meta.db_table
    purpose = Purpose._meta.db_table
    shared = [
        f
        for f in ConsentEvent._meta.concrete_fields
        if f.name not in _FROM_STATE and f.attname not in _OWN
    ]
    columns = ["receipt_id", "employer_id", "purpose_id", *(f.column for f in shared)]
    values = ["gen_random_uuid()", "s.employer_id", "s.purpose_id"]
    values += [f"%s::{column_cast(f)}" for f in shared]
    employer_columns = ", ".join(f"emp.{f.column}" for f in Employer._meta.concrete_fields)
    purpose_columns = ", ".join(f"p.{f.column}" for f in Purpose._meta.concrete_fields)
    scope = " AND c.employer_id = ANY(%s::bigint[])" if scoped else ""
    # The events in the order the receipt lists them (company, then purpose), as the
    # step-by-step path inserts them; RETURNING promises no order, so the last SELECT sorts.
    sql = f"""WITH s AS (
  SELECT c.id, c.employer_id, c.purpose_id FROM {consent} c
  WHERE c.student_id = %s AND c.granted{scope}
  FOR UPDATE
), e AS (
  INSERT INTO {event} ({", ".join(columns)})
  SELECT {", ".join(values)}
  FROM s
  JOIN {employer} emp ON emp.id = s.employer_id
  JOIN {purpose} p ON p.id = s.purpose_id
  ORDER BY emp.name, p.code, emp.id, p.id
  RETURNING id, receipt_id, employer_id, purpose_id
), u AS (
  UPDATE {consent} c SET granted = false, updated_at = %s, event_id = e.id
  FROM s JOIN e ON e.employer_id = s.employer_id AND e.purpose_id = s.purpose_id
  WHERE c.id = s.id
)
SELECT e.id, e.receipt_id, {employer_columns}, {purpose_columns}
FROM e
JOIN {employer} emp ON emp.id = e.employer_id
JOIN {purpose} p ON p.id = e.purpose_id
ORDER BY emp.name, p.code, emp.id, p.id
"""  # noqa: S608 - the models' tables and columns; every value a parameter
    return sql, shared


def withdraw_in_one_statement(
    *, template: ConsentEvent, student: User, employers: list[Employer] | None
) -> list[ConsentEvent]:
    """Withdraw the student's live grants (for `employers`, or all): `template` is the event
    each withdrawal records (its action, time, version, screen, actor and the rest), without
    its company and purpose. Returns the saved events, as `insert_rows` leaves them, each
    with its company and purpose loaded. The caller holds the student's lock."""
    sql, shared = _statement(employers is not None)
    params: list = [student.pk]
    if employers is not None:
        params.append([e.pk for e in employers])
    params += [f.get_db_prep_save(f.pre_save(template, True), connection) for f in shared]
    params.append(template.occurred_at)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    employer_fields = Employer._meta.concrete_fields
    purpose_fields = Purpose._meta.concrete_fields
    employer_names = [f.attname for f in employer_fields]
    purpose_names = [f.attname for f in purpose_fields]
    split = 2 + len(employer_names)
    # The companies' and purposes' columns converted as the ORM converts them (the events'
    # own two, a key and a UUID, need nothing).
    read = row_reader([ConsentEvent._meta.pk, _RECEIPT_ID, *employer_fields, *purpose_fields])
    # Each event made as a row read is (from_db, positional), its relations put in its
    # cache as select_related does: 38 of them while the student waits.
    names = [f.attname for f in ConsentEvent._meta.concrete_fields]
    values = [getattr(template, name) for name in names]
    own = [names.index(name) for name in ("id", "receipt_id", "employer_id", "purpose_id")]
    cached = [
        (ConsentEvent._meta.get_field(name), getattr(template, name))
        for name in ("student", "policy_version", "actor_user")
        if getattr(template, f"{name}_id") is not None
    ]
    companies: dict[int, Employer] = {}
    purposes: dict[int, Purpose] = {}
    events = []
    for row in map(read, rows):
        company = companies.get(row[2])
        if company is None:
            company = companies[row[2]] = Employer.from_db(
                connection.alias, employer_names, row[2:split]
            )
        purpose = purposes.get(row[split])
        if purpose is None:
            purpose = purposes[row[split]] = Purpose.from_db(
                connection.alias, purpose_names, row[split:]
            )
        for index, value in zip(own, (row[0], row[1], company.pk, purpose.pk), strict=True):
            values[index] = value
        event = ConsentEvent.from_db(connection.alias, names, values)
        _EMPLOYER.set_cached_value(event, company)
        _PURPOSE.set_cached_value(event, purpose)
        for field, value in cached:
            field.set_cached_value(event, value)
        events.append(event)
    return events
