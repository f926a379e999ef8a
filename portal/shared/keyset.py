"""Deep pages of the admin's large lists without OFFSET (issue 20, "Admin at 1,000,000 rows").

Django's changelist shows page N with OFFSET (N - 1) x 100: PostgreSQL reads every row before
the page, joins each to the tables of `list_select_related`, and throws it away. Page 1,000 of
the consent events read 100,000 rows (0.5-1 s on an idle machine), growing with the table.

Here a page is found from where its neighbour ended. In a list's order made of the model's own
columns (the ledgers' default: time, then id), "Next" carries the last row's sort values in the
link (`?p=after:["2019-03-01T03:00:00.123456Z",12345]`), and the page is
`WHERE (occurred_at, id) < (…) ORDER BY occurred_at DESC, id DESC LIMIT 101`, which the
ordering's index answers in a few probes at any depth; "Previous" is the same backwards, "Last"
reads the order from its other end. The position lives in Django's own page parameter `p`, so
every filter, search, sort and date link drops it and starts again from the top, as a page
number does.

What does not fit, numbered pages serve, but at most MAX_PAGES of them, so OFFSET never skips
more than (MAX_PAGES - 1) x 100 rows: an order across a relation or by a computed value, and a
numbered link (`?p=7`, an old bookmark). Past that the list says to search, filter or pick a
date instead. Either way a list is never read from its start to reach a deep page.
"""

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from django.contrib.admin.views.main import ALL_VAR, PAGE_VAR, ChangeList
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.expressions import OrderBy

# Numbered pages reach this far and no further: OFFSET skips at most 1,900 rows of 100.
MAX_PAGES = 20
AFTER, BEFORE, LAST = "after:", "before:", "last"
# A position is a handful of sort values; anything longer is not one of ours.
MAX_POSITION = 500


def keyset_order(queryset) -> list[tuple[models.Field, bool]] | None:
    """The queryset's order as (field, descending) pairs when every part is a non-null column
    of the model itself, else None (an order across a relation, by an expression, or over a
    nullable column, whose NULLs a comparison would skip)."""
    opts = queryset.model._meta
    order: list[tuple[models.Field, bool]] = []
    for part in queryset.query.order_by:
        if isinstance(part, str):
            descending, name = part.startswith("-"), part.lstrip("-")
        elif isinstance(part, OrderBy) and isinstance(part.expression, F):
            descending, name = part.descending, part.expression.name
        else:
            return None
        if name == "pk":
            name = opts.pk.name
        try:
            field = opts.get_field(name)
        except FieldDoesNotExist:
            return None  # a related path ("request__reference"), "?" or an annotation
        # An ordering by a foreign key's name orders by the related model's own ordering.
        if not field.concrete or field.null or (field.is_relation and name == field.name):
            return None
        order.append((field, descending))
    return order or None


def _position_values(order, row) -> list:
    return [getattr(row, field.attname) for field, _descending in order]


def _plain(value):
    if isinstance(value, datetime):
        # In UTC with a "Z": no "+" in the link, which a hand-copied URL would turn into a space.
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, int | str | float | bool):
        return value
    return str(value)  # a UUID, a Decimal


def position_token(values: list) -> str:
    """The sort values of a row as the text a page link carries."""
    return json.dumps([_plain(v) for v in values], separators=(",", ":"), ensure_ascii=False)


def _parse_position(order, text: str) -> list | None:
    if len(text) > MAX_POSITION:
        return None
    try:
        raw = json.loads(text)
    except ValueError:
        return None
    if not isinstance(raw, list) or len(raw) != len(order):
        return None
    try:
        values = [field.to_python(value) for (field, _d), value in zip(order, raw, strict=True)]
    except (ValidationError, TypeError, ValueError):
        return None
    return None if any(value is None for value in values) else values


def _beyond(order, values, *, backwards: bool) -> Q:
    """Rows after the position in the list's order (before it, `backwards`): a lexicographic
    comparison spelled out, with the first column's bound on its own so that the ordering's
    index starts the scan at the position instead of filtering from the list's start."""
    alternatives = []
    for index, (field, descending) in enumerate(order):
        later = "lt" if descending != backwards else "gt"
        equal = {f.attname: v for (f, _d), v in zip(order[:index], values[:index], strict=True)}
        alternatives.append(Q(**equal, **{f"{field.attname}__{later}": values[index]}))
    first, descending = order[0]
    bound = {f"{first.attname}__{'lte' if descending != backwards else 'gte'}": values[0]}
    return Q(**bound) & Q.create(alternatives, connector=Q.OR)


@dataclass
class KeysetPage:
    rows: list
    has_previous: bool
    has_next: bool
    capped: bool = False  # a page number past MAX_PAGES was asked for, and MAX_PAGES shown


def keyset_page(queryset, order, param: str, per_page: int) -> KeysetPage:
    """The page that `param` (the value of `p`) names: empty or "1" the first, a number up to
    MAX_PAGES by OFFSET, "after:…" / "before:…" next to a position, "last" the last."""
    if param.startswith((AFTER, BEFORE)):
        backwards = param.startswith(BEFORE)
        values = _parse_position(order, param.removeprefix(BEFORE if backwards else AFTER))
        if values is not None:
            beyond = queryset.filter(_beyond(order, values, backwards=backwards))
            if not backwards:
                rows = list(beyond[: per_page + 1])
                if rows:
                    return KeysetPage(rows[:per_page], True, len(rows) > per_page)
                # Nothing after it any more (rows were removed): the last page instead.
                return keyset_page(queryset, order, LAST, per_page)
            rows = list(beyond.reverse()[: per_page + 1])
            if len(rows) > per_page:
                return KeysetPage(rows[:per_page][::-1], True, True)
            # Fewer than a page before it: that is the list's start, shown as a full page.
    elif param == LAST:
        rows = list(queryset.reverse()[: per_page + 1])
        return KeysetPage(rows[:per_page][::-1], len(rows) > per_page, False)
    elif param.isdecimal() and int(param) > 1:
        number = min(int(param), MAX_PAGES)
        start = (number - 1) * per_page
        rows = list(queryset[start : start + per_page + 1])
        if rows:
            return KeysetPage(rows[:per_page], True, len(rows) > per_page, int(param) > number)
    rows = list(queryset[: per_page + 1])
    return KeysetPage(rows[:per_page], False, len(rows) > per_page)


class KeysetChangeList(ChangeList):
    """A changelist whose pages follow positions (above) when its order allows, and are
    numbered up to MAX_PAGES by the paginator otherwise (EstimatedCountPaginator). `keyset` is
    None for numbered pages, else a dict of the page's links for
    `admin/keyset_pagination.html`."""

    keyset = None

    def get_results(self, request):
        order = keyset_order(self.queryset)
        if order is None:
            return super().get_results(request)
        # Django's get_results, with the page read from its neighbour's position.
        paginator = self.model_admin.get_paginator(request, self.queryset, self.list_per_page)
        result_count = paginator.count
        full_result_count = (
            self.root_queryset.count() if self.model_admin.show_full_result_count else None
        )
        can_show_all = result_count <= self.list_max_show_all
        if self.show_all and can_show_all:
            page = KeysetPage(list(self.queryset), False, False)
        else:
            page = keyset_page(
                self.queryset, order, request.GET.get(PAGE_VAR, ""), self.list_per_page
            )
        self.result_count = result_count
        self.show_full_result_count = self.model_admin.show_full_result_count
        self.show_admin_actions = not self.show_full_result_count or bool(full_result_count)
        self.full_result_count = full_result_count
        self.result_list = page.rows
        self.can_show_all = can_show_all
        self.multi_page = page.has_previous or page.has_next
        self.paginator = paginator
        self.keyset = self._links(order, page)

    def _links(self, order, page: KeysetPage) -> dict:
        def link(value: str) -> str:
            return self.get_query_string({PAGE_VAR: value})

        rows = page.rows
        return {
            "first_url": self.get_query_string() if page.has_previous else None,
            "previous_url": link(BEFORE + position_token(_position_values(order, rows[0])))
            if page.has_previous
            else None,
            "next_url": link(AFTER + position_token(_position_values(order, rows[-1])))
            if page.has_next
            else None,
            "last_url": link(LAST) if page.has_next else None,
            "show_all_url": self.get_query_string({ALL_VAR: ""})
            if self.can_show_all and not self.show_all and self.multi_page
            else None,
            "capped": page.capped,
            "max_pages": MAX_PAGES,
        }
