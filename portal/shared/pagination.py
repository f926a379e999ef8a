"""Counting the admin's large lists without reading them (issue 11, "Scale").

The admin's changelist counts its queryset for the paginator on every page. Unfiltered, on
PostgreSQL, that COUNT(*) reads the whole table (a million consent events: a few hundred
ms, growing with the table); the planner's own estimate (`pg_class.reltuples`, kept by
ANALYZE and autovacuum) costs one catalogue lookup and is close enough to say "about
1,000,000" and to link the last page. A filtered or searched list, and every list on
another database or below ESTIMATE_ABOVE rows, is counted exactly.
"""

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

# Below this many rows an exact count is cheap, and staff may compare it with what they see.
ESTIMATE_ABOVE = 50_000


def _estimated_rows(queryset) -> int | None:
    """The planner's row estimate of the queryset's table when the queryset reads the whole
    table (no WHERE, no DISTINCT, no slicing), else None."""
    query = queryset.query
    if query.where or query.distinct or query.is_sliced or query.combinator:
        return None
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            [queryset.model._meta.db_table],
        )
        row = cursor.fetchone()
    # -1: never analysed yet (PostgreSQL 14+); count exactly until autovacuum has been by.
    return row[0] if row and row[0] >= 0 else None


class EstimatedCountPaginator(Paginator):
    """A Paginator whose count of an unfiltered large table is PostgreSQL's estimate.

    Set as `paginator` on a ModelAdmin (with `show_full_result_count = False`, which would
    otherwise count the table a second time). The last page of an estimate may be a little
    short or empty; every row is still reachable, in order, page by page.
    """

    @cached_property
    def count(self) -> int:
        estimate = _estimated_rows(self.object_list) if hasattr(self.object_list, "query") else None
        if estimate is not None and estimate > ESTIMATE_ABOVE:
            return estimate
        return super().count
