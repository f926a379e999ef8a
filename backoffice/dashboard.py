"""The figures on the admin's front page (issue 5, "Dashboard").

Each figure is counted by one aggregate query and carries the URL of the admin list that shows
exactly the rows it counts, built from the lookups that list accepts (its list filters, and
lookups on the model's own fields). A whole dashboard is five queries however much data
there is. Dates are the portal's (Asia/Tokyo): "today" and a week (Monday to Sunday) are
the active time zone's. A day is filtered by its bounds as aware datetimes (from its midnight
to the next day's), never by a `__date` lookup: that casts every row's timestamp to a date in
the time zone, which no index serves (a full scan of the requests at 100,000 rows). The
lists a figure links to get the same bounds as ISO datetimes with their offset.
"""

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from urllib.parse import urlencode

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q
from django.db.models.functions import TruncWeek
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from disclosure.admin import FAILED_EMAIL, NOT_DONE
from disclosure.models import DataRequest, RecipientTask
from portal.models import User

DUE_SOON_DAYS = 3  # "due in the next 3 days": due today up to 3 days left
MEDIAN_DAYS = 30
WEEKS = 12

OPEN = [str(s) for s in DataRequest.OPEN]
# A request is done (for the median and the chart) when it completed, fully or partly;
# a cancelled one was not "done" for the student.
DONE = [DataRequest.Status.COMPLETED, DataRequest.Status.PARTIALLY_COMPLETED]


def _list_url(model, **params) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(sorted(params.items()))}" if params else url


def _requests_url(**params) -> str:
    return _list_url(DataRequest, **params)


def _in(values) -> str:
    return ",".join(str(v) for v in values)


def _midnight(day: date) -> datetime:
    """The start of `day` in the active time zone (Asia/Tokyo), as an aware datetime."""
    return timezone.make_aware(datetime.combine(day, time.min))


def _days(field_name: str, first: date, last: date) -> dict[str, datetime]:
    """The lookups for `first` to `last` (both included) on a datetime field."""
    return {
        f"{field_name}__gte": _midnight(first),
        f"{field_name}__lt": _midnight(last + timedelta(days=1)),
    }


def _iso(lookups: dict[str, datetime]) -> dict[str, str]:
    return {name: value.isoformat() for name, value in lookups.items()}


@dataclass(frozen=True)
class Figure:
    count: int
    url: str


@dataclass(frozen=True)
class KindRow:
    kind: str
    label: str
    cells: list[Figure]  # one per open status, in OPEN's order
    total: Figure


@dataclass(frozen=True)
class OpenRequests:
    statuses: list[str]  # the column headings, in words
    rows: list[KindRow]
    total: Figure
    due_soon: Figure
    due_soon_until: date


def open_requests(*, today: date) -> OpenRequests:
    """Open requests by kind and status, and those due from today to `DUE_SOON_DAYS` days on."""
    due_soon_until = today + timedelta(days=DUE_SOON_DAYS)
    due_days = _days("due_at", today, due_soon_until)
    due_soon = Q(**due_days)
    counts = {
        (row["kind"], row["status"]): row
        for row in DataRequest.objects.filter(status__in=OPEN)
        .order_by()
        .values("kind", "status")
        .annotate(n=Count("pk"), due_soon=Count("pk", filter=due_soon))
    }
    rows = []
    for kind, label in DataRequest.Kind.choices:
        cells = [
            Figure(
                counts.get((kind, status), {}).get("n", 0),
                _requests_url(kind__exact=kind, status__exact=status),
            )
            for status in OPEN
        ]
        rows.append(
            KindRow(
                kind=kind,
                label=label,
                cells=cells,
                total=Figure(
                    sum(c.count for c in cells),
                    _requests_url(kind__exact=kind, status__in=_in(OPEN)),
                ),
            )
        )
    labels = dict(DataRequest.Status.choices)
    return OpenRequests(
        statuses=[labels[s] for s in OPEN],
        rows=rows,
        total=Figure(sum(r.total.count for r in rows), _requests_url(status__in=_in(OPEN))),
        due_soon=Figure(
            sum(row["due_soon"] for row in counts.values()),
            _requests_url(status__in=_in(OPEN), **_iso(due_days)),
        ),
        due_soon_until=due_soon_until,
    )


@dataclass(frozen=True)
class TaskAlerts:
    overdue: Figure
    failed: Figure


def task_alerts() -> TaskAlerts:
    """Companies past the due date that have not answered, and companies whose email failed.

    The same conditions as the company task list's filters (disclosure/admin/filters.py), so
    the list a figure links to holds exactly the tasks it counts; from there staff open the
    request and resend the link."""
    counts = RecipientTask.objects.aggregate(
        overdue=Count("pk", filter=Q(overdue=True, status__in=NOT_DONE)),
        failed=Count("pk", filter=FAILED_EMAIL),
    )
    return TaskAlerts(
        overdue=Figure(
            counts["overdue"],
            _list_url(RecipientTask, overdue__exact=1, status__in=_in(NOT_DONE)),
        ),
        failed=Figure(counts["failed"], _list_url(RecipientTask, failed="yes")),
    )


@dataclass(frozen=True)
class Median:
    days: float | None  # None when nothing completed in the period
    completed: Figure
    since: date


def completion_median(*, today: date) -> Median:
    """The median days from filing to completion of the requests completed in the last
    `MEDIAN_DAYS` days (today included). One query returns a month's durations; the median
    is taken here because SQLite has no percentile function."""
    since = today - timedelta(days=MEDIAN_DAYS - 1)
    durations = list(
        DataRequest.objects.filter(status__in=DONE, completed_at__gte=_midnight(since))
        .order_by()
        .annotate(
            took=ExpressionWrapper(
                F("completed_at") - F("submitted_at"), output_field=DurationField()
            )
        )
        .values_list("took", flat=True)
    )
    days = [d.total_seconds() / 86400 for d in durations]
    return Median(
        days=statistics.median(days) if days else None,
        completed=Figure(
            len(days),
            _requests_url(status__in=_in(DONE), completed_at__gte=_midnight(since).isoformat()),
        ),
        since=since,
    )


@dataclass(frozen=True)
class Week:
    start: date  # a Monday
    filed: Figure
    completed: Figure

    @property
    def end(self) -> date:
        return self.start + timedelta(days=6)


def _per_week(queryset, field_name: str, since: datetime) -> dict[date, int]:
    tz = timezone.get_current_timezone()
    rows = (
        queryset.filter(**{f"{field_name}__gte": since})
        .order_by()
        .annotate(week=TruncWeek(field_name, tzinfo=tz))
        .values("week")
        .annotate(n=Count("pk"))
    )
    return {timezone.localtime(row["week"], tz).date(): row["n"] for row in rows}


def weekly_activity(*, today: date, weeks: int = WEEKS) -> list[Week]:
    """Requests filed and completed per week (Monday to Sunday), the oldest week first and
    the current one last."""
    first = today - timedelta(days=today.weekday(), weeks=weeks - 1)
    since = _midnight(first)
    filed = _per_week(DataRequest.objects.all(), "submitted_at", since)
    completed = _per_week(DataRequest.objects.filter(status__in=DONE), "completed_at", since)
    result = []
    for n in range(weeks):
        start = first + timedelta(weeks=n)
        end = start + timedelta(days=6)
        result.append(
            Week(
                start=start,
                filed=Figure(
                    filed.get(start, 0),
                    _requests_url(**_iso(_days("submitted_at", start, end))),
                ),
                completed=Figure(
                    completed.get(start, 0),
                    _requests_url(status__in=_in(DONE), **_iso(_days("completed_at", start, end))),
                ),
            )
        )
    return result


# --- the chart ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str  # "filed" or "completed"
    title: str


@dataclass(frozen=True)
class Chart:
    """The geometry of a grouped bar chart in SVG user units, for the template to draw."""

    width: int
    height: int
    top: int
    bottom: int  # the y of the baseline
    left: int
    right: int
    scale_max: int
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, int]] = field(default_factory=list)  # (y, value)
    labels: list[tuple[float, str]] = field(default_factory=list)  # (x centre, week start)


def _nice_max(value: int) -> int:
    """The top of the scale: the smallest of 4, 8, 10, 20, 40, 50, 100, 200, … at or above
    `value`, so that its half (the middle gridline) is a whole number."""
    for candidate in (4, 8):
        if value <= candidate:
            return candidate
    power = 10
    while True:
        for step in (1, 2, 4, 5):
            if value <= step * power:
                return step * power
        power *= 10


def weekly_chart(weeks: list[Week], *, width: int = 480, height: int = 200) -> Chart:
    left, right, top, bottom = 36, width - 8, 12, height - 28
    scale_max = _nice_max(max([w.filed.count for w in weeks] + [w.completed.count for w in weeks]))
    slot = (right - left) / len(weeks)
    bar = slot * 0.36
    plot = bottom - top

    def bar_for(index: int, offset: float, count: int, css: str, title: str) -> Bar:
        h = plot * count / scale_max
        return Bar(
            x=round(left + index * slot + offset, 1),
            y=round(bottom - h, 1),
            width=round(bar, 1),
            height=round(h, 1),
            css=css,
            title=title,
        )

    bars, labels = [], []
    for i, week in enumerate(weeks):
        gap = (slot - 2 * bar) / 3
        when = f"{week.start:%Y-%m-%d}"
        bars.append(
            bar_for(
                i,
                gap,
                week.filed.count,
                "filed",
                _("Week of %(date)s: %(count)d filed") % {"date": when, "count": week.filed.count},
            )
        )
        bars.append(
            bar_for(
                i,
                2 * gap + bar,
                week.completed.count,
                "completed",
                _("Week of %(date)s: %(count)d completed")
                % {"date": when, "count": week.completed.count},
            )
        )
        if i % 2 == len(weeks) % 2:  # every other week, ending with the current one
            labels.append(
                (round(left + (i + 0.5) * slot, 1), f"{week.start.month}/{week.start.day}")
            )
    ticks = [(round(bottom - plot * v / scale_max, 1), v) for v in (0, scale_max // 2, scale_max)]
    return Chart(
        width=width,
        height=height,
        top=top,
        bottom=bottom,
        left=left,
        right=right,
        scale_max=scale_max,
        bars=bars,
        ticks=ticks,
        labels=labels,
    )


# --- the whole page -------------------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    today: date
    requests: OpenRequests | None = None
    tasks: TaskAlerts | None = None
    median: Median | None = None
    weeks: list[Week] | None = None
    chart: Chart | None = None

    @property
    def empty(self) -> bool:
        return self.requests is None and self.tasks is None


def dashboard_for(*, user: User) -> Dashboard:
    """The figures `user` may see: request figures need the permission to view requests,
    task figures the permission to view company tasks (each links to that list)."""
    today = timezone.localdate()
    sections = {}
    if user.has_perm("disclosure.view_datarequest"):
        weeks = weekly_activity(today=today)
        sections.update(
            requests=open_requests(today=today),
            median=completion_median(today=today),
            weeks=weeks,
            chart=weekly_chart(weeks),
        )
    if user.has_perm("disclosure.view_recipienttask"):
        sections["tasks"] = task_alerts()
    return Dashboard(today=today, **sections)
