"""A cursor that sends its parameters apart from the statement (PostgreSQL, psycopg 3).

Django's cursors bind on the client: psycopg quotes every parameter into the statement's
text, which PostgreSQL then reads back. For most statements that is nothing; for the
consent check's three arrays of 1,000 values (60 kB of text) it was 0.35 ms of its 7.5 ms,
which a cursor binding on the server does not pay. Django's own option for it
(`OPTIONS["server_side_binding"]`) changes every statement of the site, and some of Django's
own SQL is not written for it; this is for one statement that is.

The cursor is wrapped as Django wraps its own, so the statement is counted and logged
(`CaptureQueriesContext`, `connection.queries`) and database errors are Django's.
"""

from contextlib import contextmanager

import psycopg
from django.db import connection


@contextmanager
def server_bound_cursor():
    connection.ensure_connection()
    cursor = psycopg.Cursor(connection.connection)
    wrapped = (
        connection.make_debug_cursor(cursor)
        if connection.queries_logged
        else connection.make_cursor(cursor)
    )
    try:
        yield wrapped
    finally:
        cursor.close()
