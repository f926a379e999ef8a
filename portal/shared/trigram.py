"""Trigram indexes for the admin's "contains" searches, on PostgreSQL only (issue 20).

The admin searches text with `icontains`, which Django writes on PostgreSQL as
`UPPER("col"::text) LIKE UPPER('%term%')`: no B-tree index serves a pattern that starts with
a wildcard, so each search read the whole table (100,000 students: 100-200 ms, more on a
loaded machine). A GIN index of the same expression's trigrams (pg_trgm's `gin_trgm_ops`)
answers such a pattern from the index when the term has at least three characters; a term
of one or two characters has no trigram, and the search reads the table as before
(portal/shared/admin_search.py makes that read cheaper where it can).

`AddTrigramIndex` is a migration operation that creates one such index CONCURRENTLY (the
migration must be `atomic = False`), after `TrigramExtension()` (Django's, whose way back
is made a no-op elsewhere too). On any other database they do nothing, and the index is
kept out of the models' state on purpose: SQLite rebuilds a table with every index in its
state, and would then fail on `USING gin`.
"""

from django.contrib.postgres.operations import TrigramExtension as DjangoTrigramExtension
from django.db.migrations.operations.base import Operation


class TrigramExtension(DjangoTrigramExtension):
    """CREATE EXTENSION pg_trgm on PostgreSQL. Django's skips other databases going forward
    but not back, where it asks SQLite for pg_extension."""

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class AddTrigramIndex(Operation):
    reversible = True
    reduces_to_sql = False

    def __init__(self, model_name: str, field: str, name: str):
        self.model_name, self.field, self.name = model_name, field, name

    def deconstruct(self):
        return (
            self.__class__.__qualname__,
            [],
            {"model_name": self.model_name, "field": self.field, "name": self.name},
        )

    def state_forwards(self, app_label, state):
        pass  # not in the models' state: see the module's docstring

    def _applies(self, schema_editor) -> bool:
        return schema_editor.connection.vendor == "postgresql"

    def _invalid(self, schema_editor) -> bool:
        """Whether an earlier, interrupted CREATE INDEX CONCURRENTLY left this index behind
        marked invalid (IF NOT EXISTS would then keep it, unused)."""
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname = %s",
                [self.name],
            )
            row = cursor.fetchone()
        return bool(row and row[0])

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not self._applies(schema_editor):
            return
        model = to_state.apps.get_model(app_label, self.model_name)
        quote = schema_editor.quote_name
        column = quote(model._meta.get_field(self.field).column)
        if self._invalid(schema_editor):
            schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote(self.name)}")
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {quote(self.name)} "
            f"ON {quote(model._meta.db_table)} USING gin ((UPPER({column}::text)) gin_trgm_ops)"
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if self._applies(schema_editor):
            schema_editor.execute(
                f"DROP INDEX CONCURRENTLY IF EXISTS {schema_editor.quote_name(self.name)}"
            )

    def describe(self):
        return f"Trigram index {self.name} on {self.model_name}.{self.field} (PostgreSQL only)"

    @property
    def migration_name_fragment(self):
        return f"{self.model_name}_{self.field}_trigram"
