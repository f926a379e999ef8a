"""Policy versions and acceptances: every change goes through these functions.

Views, admin actions, commands and tasks call them; none writes these models directly.
"""

from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from consent.models import (
    PolicyAcceptance,
    PolicyVersion,
    PublishedVersionImmutable,
    Screen,
    newest_acceptance_sql,
    normalize_text,
    purpose_wording_snapshot,
)
from consent.services.consents import consent_lapse_after_acceptance
from portal.models import Language, User

EDITABLE_FIELDS = (
    "label",
    "title_ja",
    "title_en",
    "body_ja",
    "body_en",
    "summary_ja",
    "summary_en",
    "material",
    "effective_at",
)


def policy_update_draft(*, version: PolicyVersion, **fields) -> PolicyVersion:
    """Change a draft. A published version refuses, whatever is asked."""
    unknown = set(fields) - set(EDITABLE_FIELDS) - {"purposes"}
    if unknown:
        raise ValueError(f"not editable: {sorted(unknown)}")
    with transaction.atomic():
        locked = PolicyVersion.objects.select_for_update().get(pk=version.pk)
        if locked.is_published:
            raise PublishedVersionImmutable(locked)
        purposes = fields.pop("purposes", None)
        for name, value in fields.items():
            setattr(locked, name, value)
        locked.save(update_fields=[*fields] or None)
        if purposes is not None:
            locked.purposes.set(purposes)
    return locked


def policy_publish(
    *, version: PolicyVersion, by: User | None, at: datetime | None = None
) -> PolicyVersion:
    """Publish a draft: fix its text hashes and make it final.

    A version that discloses a purpose the version before it did not is marked material,
    whatever staff ticked: new processing needs a fresh acceptance (ISO/IEC 29184).
    A version never takes effect before it is published. `at` is for importing history.
    """
    with transaction.atomic():
        locked = PolicyVersion.objects.select_for_update().get(pk=version.pk)
        if locked.is_published:
            raise PublishedVersionImmutable(locked)
        errors = {}
        for field in ("title_ja", "title_en", "body_ja", "body_en"):
            if not normalize_text(getattr(locked, field)):
                errors[field] = _("A version needs its title and text in Japanese and English.")
        purpose_ids = set(locked.purposes.values_list("pk", flat=True))
        if not purpose_ids:
            errors["purposes"] = _("A version must list the purposes it discloses.")
        if errors:
            raise ValidationError(errors)
        previous = (
            PolicyVersion.objects.published()
            .filter(effective_at__lte=locked.effective_at)
            .exclude(pk=locked.pk)
            .order_by("-effective_at", "-published_at")
            .first()
        )
        adds_purpose = previous is None or bool(
            purpose_ids - set(previous.purposes.values_list("pk", flat=True))
        )
        now = at or timezone.now()
        claimed = PolicyVersion.objects.filter(pk=locked.pk, published_at=None).update(
            published_at=now,
            published_by=by,
            material=locked.material or (adds_purpose and previous is not None),
            effective_at=max(locked.effective_at, now),
            text_sha256_ja=locked.text(Language.JA).sha256,
            text_sha256_en=locked.text(Language.EN).sha256,
            purposes_wording={
                purpose.code: purpose_wording_snapshot(purpose) for purpose in locked.purposes.all()
            },
        )
        if not claimed:
            raise PublishedVersionImmutable(locked)
    return PolicyVersion.objects.get(pk=locked.pk)


@dataclass(frozen=True)
class AcceptanceDue:
    """The version a student must accept before going on, and on which screen."""

    version: PolicyVersion
    screen: str


# The version in force now (PolicyVersion.objects.current(): published, in effect, the
# newest), the version of the student's newest acceptance (newest_acceptance_sql) and
# whether a material version came into force after that one: one statement, where three
# ORM queries cost a student page 2.8 ms of the building of queries on every request (the
# middleware asks before every page).
_DUE_SQL = f"""
SELECT
  (SELECT v.id FROM {PolicyVersion._meta.db_table} v
   WHERE v.published_at IS NOT NULL AND v.effective_at <= %s
   ORDER BY v.effective_at DESC, v.published_at DESC LIMIT 1),
  newest.version_id,
  EXISTS (SELECT 1 FROM {PolicyVersion._meta.db_table} m
          WHERE m.published_at IS NOT NULL AND m.effective_at <= %s AND m.material = %s
            AND m.effective_at > newest.effective_at)
FROM (SELECT 1 AS one) AS base
LEFT JOIN ({newest_acceptance_sql("a.version_id", "v.effective_at")}) AS newest ON 1 = 1
"""  # noqa: S608 - the tables' names from the models; every value a parameter


def policy_acceptance_due(*, student: User) -> AcceptanceDue | None:
    """What the student must accept now, if anything: one query, and one more to load the
    version when something is due."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_DUE_SQL, [now, now, True, student.pk])
        current_id, newest_version_id, newer_material = cursor.fetchone()
    if current_id is None or newest_version_id == current_id:
        return None
    if newest_version_id is None:
        screen = Screen.SIGNUP
    elif newer_material:
        screen = Screen.RECONSENT
    else:
        return None
    return AcceptanceDue(version=PolicyVersion.objects.get(pk=current_id), screen=screen)


class AcceptanceRefused(ValidationError):
    pass


def policy_accept(
    *,
    student: User,
    version: PolicyVersion,
    screen: str,
    language: str,
    shown_sha256: str,
    ip_address: str | None = None,
    user_agent: str = "",
    collection_method: str = "web form: explicit accept button",
    at: datetime | None = None,
) -> PolicyAcceptance:
    """Record that the student accepted the exact text they were shown.

    `shown_sha256` is the hash of the text the page displayed; it must be the version's
    published hash in that language, so an acceptance can never point at words the
    student did not see. Accepting a version twice returns the first acceptance.
    """
    if not version.is_published:
        raise AcceptanceRefused(_("Only a published version can be accepted."))
    if screen not in Screen.values:
        raise ValueError(f"unknown screen {screen!r}")
    language = Language.EN if language == Language.EN else Language.JA
    stored = version.stored_sha256(language)
    if shown_sha256 != stored or version.text(language).sha256 != stored:
        raise AcceptanceRefused(
            _("The policy text changed while you were reading it. Please read it again.")
        )
    existing = PolicyAcceptance.objects.filter(student=student, version=version).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            newest_before = PolicyAcceptance.objects.latest_for(student)
            acceptance = PolicyAcceptance.objects.create(
                student=student,
                version=version,
                accepted_at=at or timezone.now(),
                screen=screen,
                language=language,
                text_sha256=shown_sha256,
                collection_method=collection_method,
                ip_address=ip_address or None,
                user_agent=(user_agent or "")[:400],
            )
            # A grant counts only while the newest accepted version lists its purpose.
            if newest_before is None or version.effective_at >= newest_before.version.effective_at:
                acceptance.lapsed_events = consent_lapse_after_acceptance(
                    student=student, version=version
                )
            return acceptance
    except IntegrityError:
        # The same student accepted the same version at the same moment elsewhere.
        return PolicyAcceptance.objects.get(student=student, version=version)


def previous_acceptance(*, acceptance: PolicyAcceptance) -> PolicyAcceptance | None:
    """The acceptance of the version the student had accepted before this one."""
    return (
        PolicyAcceptance.objects.filter(
            student_id=acceptance.student_id,
            version__effective_at__lt=acceptance.version.effective_at,
        )
        .select_related("version")
        .order_by("-version__effective_at", "-accepted_at")
        .first()
    )
