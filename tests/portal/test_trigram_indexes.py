"""The trigram indexes of the admin's "contains" searches (issue 20): made on PostgreSQL,
nothing at all on SQLite, and used by the search the admin runs."""

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader

from portal.models import User
from portal.shared.trigram import AddTrigramIndex

pytestmark = pytest.mark.django_db
MIGRATIONS = [
    ("portal", "0016_trigram_search"),
    ("disclosure", "0012_trigram_search"),
    ("audit", "0005_trigram_search"),
]
on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="pg_trgm")


class RecordingEditor:
    """A schema editor that writes down what it is asked to run, and runs nothing; with
    `vendor`, it stands for that database, whose catalogue answers `catalogue`."""

    def __init__(self, vendor=None, catalogue=None):
        self.connection = connection if vendor is None else FakeConnection(vendor, catalogue)
        self.quote_name = connection.ops.quote_name
        self.executed: list[str] = []

    def execute(self, sql, params=()):
        self.executed.append(str(sql))


class FakeConnection:
    def __init__(self, vendor, catalogue):
        self.vendor, self.alias, self.catalogue = vendor, "default", catalogue

    def cursor(self):
        return FakeCursor(self.catalogue)


class FakeCursor:
    def __init__(self, row):
        self.row = row

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, params=()):
        pass

    def fetchone(self):
        return self.row


def _operations():
    loader = MigrationLoader(connection)
    for key in MIGRATIONS:
        state = loader.project_state(key)
        for operation in loader.get_migration(*key).operations:
            yield key[0], operation, state


def _run(direction: str, *, only_indexes: bool = False, **editor) -> list[str]:
    editor = RecordingEditor(**editor)
    operations = list(_operations())
    for app_label, operation, state in operations if direction == "forwards" else operations[::-1]:
        if only_indexes and not isinstance(operation, AddTrigramIndex):
            continue
        getattr(operation, f"database_{direction}")(app_label, editor, state, state)
    return editor.executed


@pytest.mark.skipif(connection.vendor != "sqlite", reason="another database than PostgreSQL")
def test_the_migrations_run_nothing_on_sqlite_either_way():
    assert _run("forwards") == []
    assert _run("backwards") == []


def test_the_migrations_are_outside_a_transaction_and_leave_the_models_state_alone():
    loader = MigrationLoader(connection)
    for key in MIGRATIONS:
        migration = loader.get_migration(*key)
        assert migration.atomic is False  # CREATE INDEX CONCURRENTLY
    before = loader.project_state(("portal", "0015_email_erase_when_done"))
    after = loader.project_state(("portal", "0016_trigram_search"))
    assert before.models["portal", "user"].options == after.models["portal", "user"].options


def test_each_index_is_made_concurrently_over_the_expression_django_searches():
    made = _run("forwards", only_indexes=True, vendor="postgresql")

    assert len(made) == 16
    assert all(sql.startswith("CREATE INDEX CONCURRENTLY IF NOT EXISTS") for sql in made)
    assert 'ON "portal_user" USING gin ((UPPER("email"::text)) gin_trgm_ops)' in made[0]
    dropped = _run("backwards", only_indexes=True, vendor="postgresql")
    assert all(sql.startswith("DROP INDEX CONCURRENTLY IF EXISTS") for sql in dropped)


def test_an_index_left_invalid_by_an_interrupted_build_is_built_again():
    made = _run("forwards", only_indexes=True, vendor="postgresql", catalogue=(True,))

    assert made[0] == 'DROP INDEX CONCURRENTLY IF EXISTS "user_email_trgm"'
    assert made[1].startswith('CREATE INDEX CONCURRENTLY IF NOT EXISTS "user_email_trgm"')
    assert len(made) == 32


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's own catalogue")
def test_the_sqlite_test_database_has_no_trigram_index():
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE '%trgm'")
        assert cursor.fetchall() == []


@on_postgresql
def test_the_admins_search_of_three_characters_or_more_is_served_by_the_index():
    # The admin's search, as Django writes it: UPPER("email"::text) LIKE UPPER('%hanako%').
    query = User.objects.filter(email__icontains="hanako").values("pk").query
    sql, params = query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a test table is small
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "user_email_trgm" in plan
