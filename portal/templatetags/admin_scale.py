"""The admin's date drill-down, from the first and last date alone (issue 11, "Scale").

Django's `date_hierarchy` lists the years, months or days that have rows with a SELECT
DISTINCT over every row of the list: on a million consent events, a full scan on every
page, growing with the table. This one asks only MIN and MAX (two index probes when the
field is indexed) and offers every year, month or day between them, so a link may lead to
an empty list; the page and its links are otherwise Django's (`admin/date_hierarchy.html`).
"""

import datetime

from django import template
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.contrib.admin.utils import get_fields_from_path
from django.db import models
from django.utils import formats, timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

register = template.Library()


def _range(cl, field_name: str, aware: bool):
    bounds = cl.queryset.aggregate(first=models.Min(field_name), last=models.Max(field_name))
    first, last = bounds["first"], bounds["last"]
    if first is None or last is None:
        return None, None
    if aware:
        first, last = timezone.localtime(first), timezone.localtime(last)
    if isinstance(first, datetime.datetime):
        first, last = first.date(), last.date()
    return first, last


def date_hierarchy_by_range(cl):
    field_name = cl.date_hierarchy
    field = get_fields_from_path(cl.model, field_name)[-1]
    aware = isinstance(field, models.DateTimeField)
    year_field, month_field, day_field = (f"{field_name}__{p}" for p in ("year", "month", "day"))
    year, month, day = (cl.params.get(f) for f in (year_field, month_field, day_field))

    def link(filters):
        return cl.get_query_string(filters, [f"{field_name}__"])

    first, last = _range(cl, field_name, aware)
    if first is None:
        return {"show": True, "back": None, "choices": []}
    if not (year or month or day) and first.year == last.year:
        year = first.year
        if first.month == last.month:
            month = first.month
    if year and month and day:
        chosen = datetime.date(int(year), int(month), int(day))
        return {
            "show": True,
            "back": {
                "link": link({year_field: year, month_field: month}),
                "title": capfirst(formats.date_format(chosen, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(chosen, "MONTH_DAY_FORMAT"))}],
        }
    if year and month:
        days = [first + datetime.timedelta(days=n) for n in range((last - first).days + 1)]
        return {
            "show": True,
            "back": {"link": link({year_field: year}), "title": str(year)},
            "choices": [
                {
                    "link": link({year_field: year, month_field: month, day_field: d.day}),
                    "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT")),
                }
                for d in days
            ],
        }
    if year:
        months = [datetime.date(first.year, m, 1) for m in range(first.month, last.month + 1)]
        return {
            "show": True,
            "back": {"link": link({}), "title": _("All dates")},
            "choices": [
                {
                    "link": link({year_field: year, month_field: m.month}),
                    "title": capfirst(formats.date_format(m, "YEAR_MONTH_FORMAT")),
                }
                for m in months
            ],
        }
    return {
        "show": True,
        "back": None,
        "choices": [
            {"link": link({year_field: str(y)}), "title": str(y)}
            for y in range(first.year, last.year + 1)
        ],
    }


@register.tag(name="date_hierarchy_by_range")
def date_hierarchy_by_range_tag(parser, token):
    return InclusionAdminNode(
        parser,
        token,
        func=date_hierarchy_by_range,
        template_name="date_hierarchy.html",
        takes_context=False,
    )
