"""What /healthz reports: can this process reach its database and its broker?

A health check that hangs is worse than one that says "down": a load balancer's probe gives
up and the node's state is unknown. So the broker is asked once, with short socket timeouts,
and no retry; the database's connect timeout is set in settings (DATABASE_CONNECT_TIMEOUT).
"""

from django.conf import settings
from django.db import DatabaseError, connection

# Seconds to wait for the broker to accept a connection and to answer.
BROKER_TIMEOUT = 2


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

    # Without socket timeouts the Redis transport waits forever on a broker that accepts
    # the connection but never answers (and redis-py retries on its own): ask once, briefly.
    connection_options = {
        "connect_timeout": BROKER_TIMEOUT,
        "transport_options": {
            "socket_connect_timeout": BROKER_TIMEOUT,
            "socket_timeout": BROKER_TIMEOUT,
            "retry_on_timeout": False,
            "max_retries": 0,
        },
    }
    try:
        with app.connection_for_write(**connection_options) as conn:
            conn.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT)
    except Exception as exc:  # kombu raises many kinds; any of them means "down"
        return False, f"unreachable: {type(exc).__name__}"
    return True, "ok"
