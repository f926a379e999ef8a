"""One order for the locks that one student's changes take, and a retry for a deadlock.

Every change to a student's consents, provisions, requests and activity takes the student's
row lock first, then the rows it changes; so two of them run one after the other instead of
each holding what the other waits for.

The student's lock is FOR NO KEY UPDATE, not FOR UPDATE: a row inserted elsewhere that
points at the student (a provision, a consent event) takes a KEY SHARE lock on the student's
row through its foreign key, which FOR UPDATE would make wait. With FOR UPDATE, a grant
(student, then consent row) and a provision (consent row, then the student through the
foreign key) deadlocked in one operation of four (issue 17, item 7).
"""

import functools
import logging
import time

from django.db import OperationalError, connection

from portal.models import User

log = logging.getLogger(__name__)

DEADLOCK = "40P01"  # PostgreSQL's deadlock_detected
ATTEMPTS = 3


def students_lock(*, student_ids) -> list[int]:
    """Lock the students' rows, in id order; returns the ids found."""
    return list(
        User.objects.select_for_update(no_key=True)
        .filter(pk__in=student_ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def student_lock(*, student_id: int) -> None:
    students_lock(student_ids=[student_id])


def _is_deadlock(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) == DEADLOCK


def retry_on_deadlock(function):
    """Run a service again when PostgreSQL broke a deadlock by failing it: the other
    transaction went on, and this one, tried again, finds the rows free. Only at the
    outermost transaction: inside a caller's, the caller's own locks are still held."""

    @functools.wraps(function)
    def run(*args, **kwargs):
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return function(*args, **kwargs)
            except OperationalError as exc:
                if attempt == ATTEMPTS or connection.in_atomic_block or not _is_deadlock(exc):
                    raise
                log.warning("%s: deadlock, trying again (%d)", function.__name__, attempt)
                time.sleep(0.01 * attempt)

    return run
