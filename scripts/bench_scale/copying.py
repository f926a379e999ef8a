"""Loading by COPY: a progress bar, and the ids and sequences around explicit ids."""

import random
import sys
import time
import uuid
from datetime import datetime, timedelta

from django.db import connection
from psycopg import sql


class Progress:
    """A plain progress bar on stderr: `label [#####.....] 12,345/100,000  45,000 rows/s`."""

    def __init__(self, label: str, total: int):
        self.label, self.total, self.done = label, total, 0
        self.started = self.shown = time.monotonic()
        self._show()

    def add(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.shown > 0.25 or self.done >= self.total:
            self.shown = now
            self._show()

    def _show(self) -> None:
        width = 30
        filled = width * self.done // self.total if self.total else width
        rate = self.done / max(time.monotonic() - self.started, 1e-9)
        print(
            f"\r{self.label:<22} [{'#' * filled}{'.' * (width - filled)}] "
            f"{self.done:>11,}/{self.total:,}  {rate:>9,.0f} rows/s",
            end="",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> float:
        self._show()
        elapsed = time.monotonic() - self.started
        print(f"  {elapsed:.1f} s", file=sys.stderr)
        return elapsed


def copy_rows(table: str, columns: list[str], rows, *, label: str, total: int) -> None:
    """COPY `rows` (an iterable of tuples) into `table`, showing progress."""
    progress = Progress(label, total)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with connection.cursor() as cursor:
        with cursor.cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
                progress.add()
    progress.close()


def next_id(model) -> int:
    with connection.cursor() as cursor:
        table = model._meta.db_table
        cursor.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")  # noqa: S608
        return cursor.fetchone()[0]


def sync_sequence(model) -> None:
    """Explicit ids were copied in: move the identity sequence past them."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence(%s, 'id'), "  # noqa: S608 - a model's table
            f"(SELECT coalesce(max(id), 1) FROM {table}))",
            [table],
        )


def random_uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def random_time(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return start + timedelta(seconds=rng.random() * (end - start).total_seconds())
