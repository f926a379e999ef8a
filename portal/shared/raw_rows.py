"""Model rows read with a plain cursor, converted as Django's compiler converts a query's.

A statement written once as SQL (a filing's recipients, its withdrawals) skips Django's
building of it, and `raw()`'s making of each object from its row; what it must not skip is
what the backend and the field do to a value read (SQLite keeps a time as text and a
boolean as 0 or 1; a JSON field parses its text).
"""

from collections.abc import Callable

from django.db import connection


def row_reader(fields) -> Callable[[tuple], list]:
    """A function converting a row whose columns are `fields`' values, in order, as the ORM
    converts them. Columns with nothing to convert are left as they are."""
    steps = []
    for n, field in enumerate(fields):
        column = field.cached_col
        converters = [
            *connection.ops.get_db_converters(column),
            *field.get_db_converters(connection),
        ]
        if converters:
            steps.append((n, column, converters))

    def read(row) -> list:
        row = list(row)
        for n, column, converters in steps:
            for convert in converters:
                row[n] = convert(row[n], column, connection)
        return row

    return read
