"""The impact report: for one purpose, who relies on it without a policy that lists it, and who
never accepted a version listing it at all (the 7,983 students of 2019).

Each section is one queryset of students, built from subqueries; what the report shows about
each student is fetched for a page (or a CSV chunk) at a time. Counting a section, showing a
page or streaming it all is a fixed number of queries whatever the number of students.

A page of a section walks the students by email and stops after a hundred (under a
millisecond at 100,000 students); counting one reads every student (40-120 ms of PostgreSQL
on an idle machine at bench scale, three times that at a load of 8). Staff page through the
report and come back to it after each action, so each count is kept for
IMPACT_COUNT_SECONDS and the page says when it was made, with a link to count again; the
students shown, the CSV and the mailing are always read as they are.
"""

import csv
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from consent.models import Consent, PolicyAcceptance, PolicyVersion, Provision, Purpose
from portal.models import EmailMessage, Language, User
from portal.shared.emails import email_queue_template
from portal.shared.spreadsheets import csv_safe

# The sections of the report, by the name used in URLs and file names.
UNLISTED = "unlisted"
NEVER_ACCEPTED = "never-accepted"
SECTIONS = (UNLISTED, NEVER_ACCEPTED)

CSV_CHUNK = 2000

# How long a section's count is kept (see above): the page shows when it was counted.
IMPACT_COUNT_SECONDS = 300

logger = logging.getLogger(__name__)

REVIEW_REQUEST_INTERVAL = timedelta(days=7)
# One press of the button queues at most this many emails, so the request stays short;
# pressing again continues with the students not yet asked (the interval skips the others).
REVIEW_REQUEST_BATCH = 1000


def _newest_acceptance() -> QuerySet:
    # The same order as PolicyAcceptance.objects.latest_for, as a correlated subquery.
    return PolicyAcceptance.objects.filter(student=OuterRef("pk")).order_by(
        "-version__effective_at", "-accepted_at"
    )


def _grants(purpose: Purpose) -> QuerySet:
    return Consent.objects.filter(purpose=purpose, granted=True).order_by()


def _provisions(purpose: Purpose) -> QuerySet:
    return Provision.objects.filter(purpose=purpose).order_by()


def _listing(purpose: Purpose) -> QuerySet:
    """The ids of the versions that list `purpose`, as a subquery."""
    return PolicyVersion.purposes.through.objects.filter(purpose_id=purpose.pk).values(
        "policyversion_id"
    )


def policy_versions(purpose: Purpose) -> list[tuple[int, datetime, bool]]:
    """Every version as (pk, effective date, whether it lists `purpose`): what the sections
    are worked out from, read once for a page of the report."""
    lists = Exists(_listing(purpose).filter(policyversion_id=OuterRef("pk")))
    return list(
        PolicyVersion.objects.annotate(lists=lists)
        .order_by("pk")
        .values_list("pk", "effective_at", "lists")
    )


def _newest_listing(purpose: Purpose, versions: list | None = None) -> QuerySet | None:
    """The students whose newest accepted version lists `purpose`, as one subquery of
    student ids; None when no version lists it.

    The newest acceptance lists the purpose exactly when some acceptance of a listing version
    has no acceptance of a version that does not list it after it (a later effective date,
    or the same date accepted later): whatever came after it listed the purpose too. There
    are a handful of versions, read in one query, so "after it" is spelled out per listing
    version, and each part is an index scan of one version's acceptances less a hashed set of
    others'. The correlated form (the newest acceptance looked up for every student) cost
    PostgreSQL a lookup per student, twice: 1.9 s for 100,000 students on a loaded machine.
    """
    if versions is None:
        versions = policy_versions(purpose)
    others = [(pk, at) for pk, at, listed in versions if not listed]
    parts = []
    for version, effective_at, listed in versions:
        if not listed:
            continue
        later = [pk for pk, at in others if at > effective_at]
        tied = [pk for pk, at in others if at == effective_at]
        accepted = PolicyAcceptance.objects.filter(version_id=version).order_by()
        if later:
            accepted = accepted.exclude(
                student_id__in=PolicyAcceptance.objects.filter(version_id__in=later).values(
                    "student_id"
                )
            )
        if tied:
            accepted = accepted.exclude(
                Exists(
                    PolicyAcceptance.objects.filter(
                        student_id=OuterRef("student_id"),
                        version_id__in=tied,
                        accepted_at__gt=OuterRef("accepted_at"),
                    )
                )
            )
        parts.append(accepted.values("student_id"))
    if not parts:
        return None
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]


def unlisted_reliance(*, purpose: Purpose, versions: list | None = None) -> QuerySet:
    """Students with a live grant or any provision for `purpose` while the newest version they
    accepted does not list it (or they accepted none).

    The services never let this happen through a grant; it shows what was provided before a
    version dropped the purpose, and any state written around the services.
    """
    # The few students whose newest version does not list it are found first (a hashed set),
    # and only they are looked up among the grants and provisions: not the other way round,
    # from the 350,000 grants of a popular purpose.
    students = User.objects.all()
    newest_listing = _newest_listing(purpose, versions)
    if newest_listing is not None:
        students = students.exclude(pk__in=newest_listing)
    relies = Q(Exists(_grants(purpose).filter(student=OuterRef("pk")))) | Q(
        Exists(_provisions(purpose).filter(student=OuterRef("pk")))
    )
    return students.filter(relies).order_by("email")


def never_accepted(*, purpose: Purpose) -> QuerySet:
    """Active students who accepted no version listing `purpose`, including those who accepted
    nothing at all."""
    # NOT EXISTS: a page walks the email index and probes each student's acceptances until it
    # has a hundred (about 360 probes, under a millisecond); a count or the CSV, which read
    # every student, get a hashed anti-join of the listing versions' acceptances.
    listing = PolicyAcceptance.objects.filter(
        student=OuterRef("pk"), version_id__in=_listing(purpose)
    )
    return (
        User.objects.filter(is_staff=False, is_active=True)
        .exclude(Exists(listing))
        .order_by("email")
    )


def impact_section(*, purpose: Purpose, section: str, versions: list | None = None) -> QuerySet:
    """The students of one section, by email. `impact_details` adds what the report shows.
    `versions` (policy_versions) if read already."""
    if section == UNLISTED:
        return unlisted_reliance(purpose=purpose, versions=versions)
    if section == NEVER_ACCEPTED:
        return never_accepted(purpose=purpose)
    raise ValueError(f"unknown section {section!r}")


@dataclass(frozen=True)
class SectionCount:
    count: int
    counted_at: datetime


def _counts_key(purpose: Purpose, versions: list) -> str:
    """The key of the purpose's kept counts: a version published, or one listing the purpose
    differently, changes what the sections mean, and so the key."""
    digest = hashlib.blake2b(repr(versions).encode(), digest_size=12).hexdigest()
    return f"impact-counts:{purpose.pk}:{digest}"


def impact_counts(
    *, purpose: Purpose, recount: bool = False, versions: list | None = None
) -> dict[str, SectionCount]:
    """How many students each section holds, as counted within the last IMPACT_COUNT_SECONDS
    (counted now if not, or if `recount`). If the cache fails, counted now."""
    if versions is None:
        versions = policy_versions(purpose)
    key = _counts_key(purpose, versions)
    kept = None
    if not recount:
        try:
            kept = cache.get(key)
        except Exception:
            logger.warning("cache unavailable: the impact report counts again", exc_info=True)
    if kept is not None:
        return {section: SectionCount(*kept[section]) for section in SECTIONS}
    now = timezone.now()
    counted = {
        section: (
            impact_section(purpose=purpose, section=section, versions=versions).order_by().count(),
            now,
        )
        for section in SECTIONS
    }
    try:
        cache.set(key, counted, IMPACT_COUNT_SECONDS)
    except Exception:
        logger.warning("cache unavailable: impact counts not kept", exc_info=True)
    return {section: SectionCount(*counted[section]) for section in SECTIONS}


@dataclass(frozen=True)
class StudentImpact:
    newest_version_label: str | None
    newest_accepted_at: datetime | None
    grant_count: int | None = None  # the UNLISTED section only
    provision_count: int | None = None


def impact_details(
    *, purpose: Purpose, section: str, student_ids: list[int]
) -> dict[int, StudentImpact]:
    """The newest acceptance of each student of a page or chunk, and for UNLISTED their live
    grants and provisions for `purpose`: three queries however many students.

    Kept out of the section querysets on purpose: there the subqueries would run for every
    row skipped by OFFSET and for every row sorted, and SQLite, counting in a correlated
    subquery, scanned every grant of the purpose once per student.
    """
    newest = _newest_acceptance()
    rows = (
        User.objects.filter(pk__in=student_ids)
        .annotate(
            label=Subquery(newest.values("version__label")[:1]),
            accepted_at=Subquery(newest.values("accepted_at")[:1]),
        )
        .values_list("pk", "label", "accepted_at")
    )
    counts: dict[int, list[int]] = {}
    if section == UNLISTED:
        counts = {pk: [0, 0] for pk in student_ids}
        for index, related in enumerate((_grants(purpose), _provisions(purpose))):
            grouped = (
                related.filter(student_id__in=student_ids)
                .values("student_id")
                .annotate(total=Count("pk"))
                .values_list("student_id", "total")
            )
            for student_id, total in grouped:
                counts[student_id][index] = total
    return {
        pk: StudentImpact(label, accepted_at, *counts.get(pk, (None, None)))
        for pk, label, accepted_at in rows
    }


def with_impact_details(*, purpose: Purpose, section: str, students: list[User]) -> list[User]:
    """Set `impact` (a StudentImpact) on each of `students`, a page of the report."""
    details = impact_details(purpose=purpose, section=section, student_ids=[s.pk for s in students])
    for student in students:
        student.impact = details[student.pk]
    return students


# --- CSV ---------------------------------------------------------------------------------


class _Echo:
    """csv.writer writes each row here and gets the line back, to stream it."""

    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat(timespec="seconds")
    # A display name is typed by the student, a company's name by staff: neither may run.
    return csv_safe(str(value))


def impact_csv_filename(*, purpose: Purpose, section: str) -> str:
    return f"impact-{purpose.code}-{section}-{timezone.localdate():%Y-%m-%d}.csv"


def impact_csv_lines(*, purpose: Purpose, section: str) -> Iterator[str]:
    """The section as CSV lines, starting with a byte-order mark so that Excel reads UTF-8.

    One query read in chunks, and `impact_details` per chunk: memory stays flat for
    100,000 students.
    """
    columns = [
        ("public_id", _("pseudonymous id")),
        ("email", _("email address")),
        ("display_name", _("name")),
        ("language", _("language")),
    ]
    headers = [label for _name, label in columns]
    headers += [_("newest accepted version"), _("accepted at")]
    if section == UNLISTED:
        headers += [_("live grants"), _("provisions")]
    rows = impact_section(purpose=purpose, section=section).values_list(
        "pk", *[name for name, _label in columns]
    )
    # The headers are translated now, in the request's language; the rows are read while
    # the response streams.
    return _csv_stream(purpose=purpose, section=section, headers=headers, rows=rows)


def _csv_stream(*, purpose: Purpose, section: str, headers: list, rows: QuerySet) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield "\ufeff" + writer.writerow(headers)
    rows = rows.iterator(chunk_size=CSV_CHUNK)
    while chunk := list(islice(rows, CSV_CHUNK)):
        details = impact_details(
            purpose=purpose, section=section, student_ids=[row[0] for row in chunk]
        )
        for pk, *values in chunk:
            impact = details[pk]
            values += [impact.newest_version_label, impact.newest_accepted_at]
            if section == UNLISTED:
                values += [impact.grant_count, impact.provision_count]
            yield writer.writerow([_cell(value) for value in values])


# --- Asking students to review the current version ------------------------------------------


@dataclass(frozen=True)
class ReviewRequestResult:
    queued: int
    skipped: int  # asked within REVIEW_REQUEST_INTERVAL already
    remaining: int  # not asked yet, beyond this press's batch


class ReviewRequestRefused(Exception):
    pass


def review_request_kind(purpose: Purpose) -> str:
    # EmailMessage.kind holds 60 characters; the purpose code may be as long.
    return f"review_policy:{purpose.code}"[:80]


def review_request_send(
    *,
    purpose: Purpose,
    now: datetime | None = None,
    batch_size: int = REVIEW_REQUEST_BATCH,
) -> ReviewRequestResult:
    """Email each student who never accepted a version listing `purpose` a request to review
    the current version, in their language, unless they were asked within the interval.

    The sent emails are the record: no student is asked twice within REVIEW_REQUEST_INTERVAL
    for the same purpose, even if two staff press the button at the same moment (the purpose
    row is locked while the batch is queued).
    """
    current = PolicyVersion.objects.current()
    if current is None or not current.purposes.filter(pk=purpose.pk).exists():
        raise ReviewRequestRefused(
            _(
                "The policy version in force does not list this purpose, so accepting it "
                "would not change anything. Publish a version that lists it first."
            )
        )
    now = now or timezone.now()
    kind = review_request_kind(purpose)
    # IN (subquery) rather than a correlated EXISTS: the recent emails of this kind are read
    # once and hashed, on PostgreSQL and SQLite alike, with no index on the recipient needed.
    recently_asked = Q(
        email__in=EmailMessage.objects.filter(
            kind=kind, created_at__gte=now - REVIEW_REQUEST_INTERVAL
        ).values("to")
    )
    accept_url = settings.SITE_URL + reverse("consent:accept")
    with transaction.atomic():
        Purpose.objects.select_for_update().filter(pk=purpose.pk).values_list("pk").first()
        students = never_accepted(purpose=purpose).order_by()
        totals = students.aggregate(total=Count("pk"), skipped=Count("pk", filter=recently_asked))
        due = list(
            students.exclude(recently_asked)
            .order_by("pk")
            .only("pk", "email", "display_name", "language")[:batch_size]
        )
        for student in due:
            language = Language.EN if student.language == Language.EN else Language.JA
            email_queue_template(
                to=student.email,
                template="review_policy",
                context={
                    "SITE_NAME": settings.SITE_NAME,
                    "student": student,
                    # The words the version in force published, which the student will read.
                    "purpose_title": current.purpose_wording(purpose, language)["title"],
                    "requires_opt_in": purpose.requires_opt_in,
                    "version": current,
                    "version_title": current.title(language),
                    "version_summary": current.summary(language),
                    "accept_url": accept_url,
                },
                kind=kind,
                language=language,
            )
    return ReviewRequestResult(
        queued=len(due),
        skipped=totals["skipped"],
        remaining=totals["total"] - totals["skipped"] - len(due),
    )
