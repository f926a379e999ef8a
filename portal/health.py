"""What /healthz reports: can this process reach its database and its broker?"""

from django.conf import settings
from django.db import DatabaseError, connection


def database_state() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        return False, f"unreachable: {type(exc).__name__}"
    return True, "ok"


def broker_state() -> tuple[bool, str]:
    if not settings.CELERY_BROKER_URL:
        return True, "none (tasks run in-process)"
    from portal.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:  # kombu raises many kinds; any of them means "down"
        return False, f"unreachable: {type(exc).__name__}"
    return True, "ok"
