"""Inferences sent by the site's analytics pipeline (`POST /api/v1/inferences`).

Each result is recorded once per sender and id, and refused, per result, as a provision
would be and as an activity record would be:

- 422 when its student, model version or employer is unknown; when the model was not
  active when the result was made (a model is registered before it runs); when the result
  is dated in the future or does not have the model's output form; and when a student's
  deletion or cessation request covers it (`coverage`, the requests' own rule, which the
  API passes in: this app sits below the requests, see docs/architecture.md);
- 409 when the student objected to the model (any version), and when the student has no
  live grant of the model's purpose for that employer, or the grant came after the result
  was made: a withdrawal stops the next result at once, as it stops the next provision;
- 409 `no_handover_grant` when the result says it was handed over to the employer and the
  student has no live grant, for that employer, of a purpose that gives results to it (one
  that needs per-employer consent and discloses to a third party, `provision_to_employer`),
  made at or before the hand-over. A result handed over is a provision: the intake records it
  (a `Provision` relying on that grant, linked from the result), as `provision_record` would.

A batch runs a fixed number of queries whatever its size, under a lock on the students'
rows that a grant, a withdrawal, an objection and a request all take first, so each result
is judged against a state no concurrent change can move under it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from consent.api.payloads import InferencePayload
from consent.models import ApiClient, Consent, Provision
from consent.services.provisions import CLOCK_SKEW
from inferences.models import Inference, InferenceModel, InferenceObjection
from portal.models import Employer, User

STORED, DUPLICATE, REFUSED = "stored", "duplicate", "refused"


class Coverage(Protocol):
    """What a student's deletion and cessation requests say of data about an employer dated
    `at`: "deleted" (at or before a deletion), "ceased" (at or before a cessation),
    "ceased_since" (after a cessation, without a new grant for that employer), or None."""

    def refusal(self, *, student_id: int, employer_id: int | None, at: datetime) -> str | None: ...


@dataclass(frozen=True)
class InferenceOutcome:
    """What became of one result: stored, duplicate (stored before, same content) or
    refused with a status (422 or 409) and a code."""

    result: str
    status: int
    code: str = ""
    message: str = ""


_STORED = InferenceOutcome(STORED, 201)
_DUPLICATE = InferenceOutcome(DUPLICATE, 200)


def _refused(code: str, message: str, status: int = 422) -> InferenceOutcome:
    return InferenceOutcome(REFUSED, status, code, message)


def _covered(reason: str) -> InferenceOutcome:
    if reason == "deleted":
        return _refused(
            "erased_by_request",
            _("The student asked for deletion after this result was made: it must not be kept."),
        )
    if reason == "ceased":
        return _refused(
            "stopped_by_request",
            _(
                "The student asked to stop the use of their data after this result was made: "
                "it must not be kept."
            ),
        )
    return _refused(
        "stopped_by_request",
        _(
            "The student asked to stop the use of their data: nothing more is made about them "
            "unless they grant consent for this company again."
        ),
    )


# The reasons a Coverage gives (disclosure/coverage.py names them; a test holds both to it).
COVERAGE_REASONS = ("deleted", "ceased", "ceased_since")


CONTENT_FIELDS = (
    "student_id",
    "model_id",
    "employer_id",
    "output_label",
    "output_number",
    "made_at",
    "input_from",
    "input_to",
    "handed_over_at",
)


def inferences_record(
    *,
    client: ApiClient,
    items: list[InferencePayload],
    coverage_for: Callable[[set[int]], Coverage],
) -> list[InferenceOutcome]:
    """Record the batch's new results; one outcome per result, in the order sent.
    `coverage_for(student_ids)` gives the students' requests' coverage."""
    now = timezone.now()
    with transaction.atomic():
        students = {
            str(public_id): pk
            for pk, public_id in User.objects.select_for_update(no_key=True)
            .filter(public_id__in={item.student for item in items})
            .order_by("pk")
            .values_list("pk", "public_id")
        }
        models = _models({(item.model, item.model_version) for item in items})
        employers = set(
            Employer.objects.filter(pk__in={item.employer for item in items})
            .order_by()
            .values_list("pk", flat=True)
        )
        student_ids = set(students.values())
        coverage = coverage_for(student_ids)
        objected = set(
            InferenceObjection.objects.filter(student_id__in=student_ids).values_list(
                "student_id", "model_code"
            )
        )
        grants = _grants(student_ids, employers, {m.purpose_id for m in models.values()})
        handover = _handover_grants(
            student_ids, {item.employer for item in items if item.handed_over_at is not None}
        )
        existing = {
            row[0]: tuple(row[1:])
            for row in Inference.objects.filter(
                sender=client, source_id__in={item.id for item in items}
            ).values_list("source_id", *CONTENT_FIELDS)
        }

        outcomes: list[InferenceOutcome | None] = []
        new: dict[str, Inference] = {}
        for item in items:
            student_id = students.get(item.student)
            model = models.get((item.model, item.model_version))
            label, number = _output_fields(item.output)
            content = (
                student_id,
                model.pk if model else None,
                item.employer,
                label,
                number,
                item.made_at,
                item.input_from,
                item.input_to,
                item.handed_over_at,
            )
            if item.id in existing:
                outcomes.append(_DUPLICATE if existing[item.id] == content else _conflict())
                continue
            refusal = _refusal(
                item,
                student_id,
                model,
                employers,
                coverage,
                objected,
                grants,
                now=now,
            ) or _handover_refusal(item, student_id, handover)
            if refusal is not None:
                outcomes.append(refusal)
                continue
            existing[item.id] = content  # the same id again in this batch: a duplicate
            new[item.id] = Inference(
                student_id=student_id,
                model=model,
                employer_id=item.employer,
                output_label=label,
                output_number=number,
                made_at=item.made_at,
                input_from=item.input_from,
                input_to=item.input_to,
                handed_over_at=item.handed_over_at,
                sender=client,
                source_id=item.id,
                received_at=now,
            )
            outcomes.append(None)

        stored: dict[str, tuple] = {}
        provisions = _provisions(new, handover, client=client, now=now)
        if new:
            # A concurrent batch from the same sender may have stored one of these ids
            # since they were looked for: nothing is stored twice, and the row read back
            # says whether it holds this content.
            Inference.objects.bulk_create(new.values(), ignore_conflicts=True)
            stored = {
                row[0]: tuple(row[1:])
                for row in Inference.objects.filter(
                    sender=client, source_id__in=new.keys()
                ).values_list("source_id", *CONTENT_FIELDS)
            }
        for index, (item, outcome) in enumerate(zip(items, outcomes, strict=True)):
            if outcome is None:
                outcomes[index] = (
                    _STORED if stored.get(item.id) == existing[item.id] else _conflict()
                )
        # A result another batch stored first under this id (a conflict) was not handed
        # over by this one: its record goes before anyone sees it.
        orphans = [
            provisions[item.id].pk
            for item, outcome in zip(items, outcomes, strict=True)
            if item.id in provisions and outcome is not _STORED
        ]
        if orphans:
            Provision.objects.filter(pk__in=orphans).delete()
    return outcomes


def _output_fields(output: str | float) -> tuple[str, float | None]:
    return (output, None) if isinstance(output, str) else ("", output)


def _conflict() -> InferenceOutcome:
    return _refused(
        "conflict", _("This id was already used for a result with other content."), status=409
    )


def _models(wanted: set[tuple[str, str]]) -> dict[tuple[str, str], InferenceModel]:
    if not wanted:
        return {}
    query = Q()
    for code, version in wanted:
        query |= Q(code=code, version=version)
    return {
        (model.code, model.version): model
        for model in InferenceModel.objects.filter(query).select_related("purpose")
    }


def _grants(
    student_ids: set[int], employer_ids: set[int], purpose_ids: set[int]
) -> dict[tuple[int, int, int], datetime]:
    """When each live grant was made, by (student, employer, purpose)."""
    if not (student_ids and employer_ids and purpose_ids):
        return {}
    return {
        (student, employer, purpose): granted_at
        for student, employer, purpose, granted_at in Consent.objects.filter(
            student_id__in=student_ids,
            employer_id__in=employer_ids,
            purpose_id__in=purpose_ids,
            granted=True,
        ).values_list("student_id", "employer_id", "purpose_id", "event__occurred_at")
    }


def _handover_grants(
    student_ids: set[int], employer_ids: set[int]
) -> dict[tuple[int, int], tuple[int, int, datetime]]:
    """The live grant, per (student, employer), of a purpose that gives results to the
    employer: (purpose, grant event, when). One query, only for a batch with hand-overs."""
    if not (student_ids and employer_ids):
        return {}
    found: dict[tuple[int, int], tuple[int, int, datetime]] = {}
    for student, employer, purpose, event, at in (
        Consent.objects.filter(
            student_id__in=student_ids,
            employer_id__in=employer_ids,
            granted=True,
            purpose__requires_opt_in=True,
            purpose__third_party_disclosure=True,
        )
        .order_by("purpose__code")
        .values_list("student_id", "employer_id", "purpose_id", "event_id", "event__occurred_at")
    ):
        found.setdefault((student, employer), (purpose, event, at))
    return found


def _handover_refusal(
    item: InferencePayload,
    student_id: int | None,
    handover: dict[tuple[int, int], tuple[int, int, datetime]],
) -> InferenceOutcome | None:
    if item.handed_over_at is None:
        return None
    grant = handover.get((student_id, item.employer))
    if grant is None or item.handed_over_at < grant[2] - CLOCK_SKEW:
        return _refused(
            "no_handover_grant",
            _(
                "The result was handed over, but the student had not consented to this "
                "company receiving results of the analysis (provision to the employer)."
            ),
            status=409,
        )
    return None


def _provisions(
    new: dict[str, Inference],
    handover: dict[tuple[int, int], tuple[int, int, datetime]],
    *,
    client: ApiClient,
    now: datetime,
) -> dict[str, Provision]:
    """The record of provision of each new result handed over, made first (one insert) so
    that the result is stored with its link; by the result's id."""
    by_id = {
        source_id: _provision_of(inference, handover, client=client, now=now)
        for source_id, inference in new.items()
        if inference.handed_over_at is not None
    }
    if by_id:
        Provision.objects.bulk_create(by_id.values())
        for source_id, provision in by_id.items():
            new[source_id].provision = provision
    return by_id


def _provision_of(inference: Inference, handover, *, client: ApiClient, now: datetime) -> Provision:
    purpose_id, event_id, _at = handover[(inference.student_id, inference.employer_id)]
    model = inference.model
    return Provision(
        student_id=inference.student_id,
        employer_id=inference.employer_id,
        purpose_id=purpose_id,
        consent_event_id=event_id,
        # What was given, never the output itself: the record outlives an erased result.
        data_items=f"{model.name_ja} / {model.name_en} ({model.code} {model.version})"[:500],
        provided_at=inference.handed_over_at,
        recorded_at=now,
        recorded_by=client,
    )


def _refusal(
    item: InferencePayload,
    student_id: int | None,
    model: InferenceModel | None,
    employers: set[int],
    coverage: Coverage,
    objected: set[tuple[int, str]],
    grants: dict[tuple[int, int, int], datetime],
    *,
    now: datetime,
) -> InferenceOutcome | None:
    if student_id is None:
        return _refused("unknown_student", _("No student has this id."))
    if model is None:
        return _refused("unknown_model", _("No registered model has this code and version."))
    if item.employer not in employers:
        return _refused("unknown_employer", _("No employer has this id."))
    if item.made_at > now + CLOCK_SKEW or (
        item.handed_over_at is not None and item.handed_over_at > now + CLOCK_SKEW
    ):
        return _refused("future", _("A result cannot be dated in the future."))
    if model.activated_at is None or item.made_at < model.activated_at - CLOCK_SKEW:
        return _refused(
            "model_not_active",
            _("The model was not active when this result was made: register it first."),
        )
    if not model.output_fits(item.output):
        return _refused("invalid_output", _("The result does not have the model's output form."))
    reason = coverage.refusal(student_id=student_id, employer_id=item.employer, at=item.made_at)
    if reason is not None:
        return _covered(reason)
    if (student_id, model.code) in objected:
        return _refused(
            "objected",
            _("The student objected to this model: it must make nothing more about them."),
            status=409,
        )
    granted_at = grants.get((student_id, item.employer, model.purpose_id))
    if granted_at is None:
        return _refused(
            "no_valid_grant",
            _(
                "There is no valid consent from this student for this company and the "
                "model's purpose."
            ),
            status=409,
        )
    if item.made_at < granted_at - CLOCK_SKEW:
        return _refused(
            "before_grant",
            _("The result is dated before the consent it would rely on."),
            status=409,
        )
    return None
