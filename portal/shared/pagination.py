"""Counting the admin's large lists without reading them (issue 11, "Scale"), and numbering
at most MAX_PAGES of their pages (issue 20).

The admin's changelist counts its queryset for the paginator on every page. Unfiltered, on
PostgreSQL, that COUNT(*) reads the whole table (a million consent events: a few hundred
ms, growing with the table); the planner's own estimate (`pg_class.reltuples`, kept by
ANALYZE and autovacuum) costs one catalogue lookup and is close enough to say "about
1,000,000". A filtered or searched list, and every list on another database or below
ESTIMATE_ABOVE rows, is counted exactly up to COUNT_UP_TO rows, and said to hold "more than
10,000" beyond: counting every withdrawal among a million events reads a quarter of them.
"""

from django.core.paginator import EmptyPage, Page, Paginator
from django.db import connections
from django.utils.functional import cached_property

from portal.shared.keyset import MAX_PAGES

# Below this many rows an exact count is cheap, and staff may compare it with what they see.
ESTIMATE_ABOVE = 50_000
# A filtered or searched list is counted exactly up to this many rows, then said to be more.
COUNT_UP_TO = 10_000


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

    Only the first MAX_PAGES pages are numbered, and a higher number shows the last of them
    (`capped` says so): a deep numbered page would be OFFSET skipping every row before it.
    The admin's ledgers page by position instead (portal/shared/keyset.py); these numbers
    serve their other orders.
    """

    estimated = False  # whether `count` is the planner's estimate
    at_least = False  # whether there are more than `count` (COUNT_UP_TO) rows

    @cached_property
    def all_pages(self) -> int:
        # Paginator's own num_pages, read once: it is a cached_property that super() would
        # recompute into this instance's num_pages.
        return Paginator.num_pages.func(self)

    @cached_property
    def num_pages(self) -> int:
        return min(self.all_pages, MAX_PAGES)

    @cached_property
    def capped(self) -> bool:
        return self.all_pages > MAX_PAGES

    def validate_number(self, number):
        try:
            return super().validate_number(number)
        except EmptyPage:
            if self.capped and int(number) > MAX_PAGES:
                return MAX_PAGES
            raise

    @cached_property
    def count(self) -> int:
        if not hasattr(self.object_list, "query"):
            return super().count
        estimate = _estimated_rows(self.object_list)
        if estimate is not None and estimate > ESTIMATE_ABOVE:
            self.estimated = True
            return estimate
        # A filter or a search: counted up to COUNT_UP_TO + 1 rows, the keys alone (no joins,
        # no computed columns, no order), so that "withdrawals" or "in progress" on a
        # million-row ledger reads 10,001 rows rather than all of them.
        bounded = self.object_list.order_by().values("pk")[: COUNT_UP_TO + 1].count()
        if bounded > COUNT_UP_TO:
            self.at_least = True
            return COUNT_UP_TO
        return bounded


class KnownCountPaginator(Paginator):
    """A Paginator over a set counted elsewhere (the impact report keeps its sections' counts
    for a few minutes): `count` is given, not worked out from the rows. A page is read as it
    is now, a full page of rows even where the count says fewer; none when the count is 0."""

    def __init__(self, object_list, per_page, *, count: int, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.__dict__["count"] = count

    def page(self, number):
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows = self.object_list[bottom : bottom + self.per_page] if self.count else []
        return self._get_page(rows, number, self)


def page_with_count(fetch, number, per_page: int) -> Page:
    """A `Page` and its count in one query, where `Paginator.get_page` sends two: on a
    student's page of companies the count was most of the paging's time.

    `fetch(offset, limit)` returns the rows, each ending with the count of every matching
    row (a window, `COUNT(*) OVER ()`). The number is read as `get_page` reads it (not a
    number: the first page; past the end: the last); only a page past the end costs more
    queries, one for the count and one for the last page."""
    try:
        number = max(int(number), 1)
    except (TypeError, ValueError):
        number = 1
    rows = fetch((number - 1) * per_page, per_page)
    if not rows and number > 1:
        first = fetch(0, 1)
        if first:  # past the end: the last page
            number = KnownCountPaginator((), per_page, count=first[0][-1]).num_pages
            rows = fetch((number - 1) * per_page, per_page)
    paginator = KnownCountPaginator((), per_page, count=rows[0][-1] if rows else 0)
    return Page([row[:-1] for row in rows], number if rows else 1, paginator)
