"""`POST /api/v1/inferences/check`: may a model make a result about a student for an employer
now? The pipeline asks before it runs a model, as it asks `/consents/check` before it
processes data, and is answered by the rules the intake will apply to the result
(inferences/services/intake.py), with the model's purpose named in the answer:

- `unknown_student`, `unknown_model` (no active version of that code), `unknown_employer`;
- `stopped_by_request`: a deletion or cessation covers data of now (the requests' rule,
  passed in as `coverage_for`, as the intake's is);
- `objected`: the student objected to the model;
- `no_valid_grant`: no live grant of the model's purpose for that employer;
- else allowed (`granted`), with the grant it rests on.

`/consents/check` is left as it is: it answers for a purpose, in one query, and the pipeline
may keep asking it with the model's purpose code (this answer names it); this check adds what
only the register knows (the objection) and the requests' coverage. A fixed number of
queries whatever the batch: the students, the models, the employers, the objections, the
grants and the coverage.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from consent.models import Consent
from inferences.models import InferenceModel, InferenceObjection
from inferences.services.intake import Coverage
from portal.models import Employer, User


@dataclass(frozen=True)
class InferenceCheck:
    allowed: bool
    reason: str
    purpose: str | None = None  # the model's purpose code, when the model is known
    event_id: int | None = None
    granted_at: datetime | None = None


def inferences_check(
    *,
    checks: list[tuple[str, int, str]],
    coverage_for: Callable[[set[int]], Coverage],
    now: datetime | None = None,
) -> list[InferenceCheck]:
    """For each (student public id, employer id, model code): whether the model may make a
    result about the student for the employer now, and why not."""
    now = now or timezone.now()
    students = {
        str(public_id): pk
        for public_id, pk in User.objects.filter(
            public_id__in={public_id for public_id, _e, _m in checks}
        ).values_list("public_id", "pk")
    }
    # The newest active version of each code answers (every version serves one purpose in
    # practice; the newest is the one the pipeline runs).
    models: dict[str, InferenceModel] = {}
    for model in (
        InferenceModel.objects.active()
        .filter(code__in={code for _s, _e, code in checks})
        .select_related("purpose")
        .order_by("activated_at", "pk")
    ):
        models[model.code] = model
    employers = set(
        Employer.objects.filter(pk__in={e for _s, e, _m in checks})
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
    grants = {
        (student, employer, purpose): (event, granted_at)
        for student, employer, purpose, event, granted_at in Consent.objects.filter(
            student_id__in=student_ids,
            employer_id__in=employers,
            purpose_id__in={m.purpose_id for m in models.values()},
            granted=True,
        ).values_list("student_id", "employer_id", "purpose_id", "event_id", "event__occurred_at")
    }
    answers = []
    for public_id, employer_id, code in checks:
        student_id, model = students.get(public_id), models.get(code)
        purpose = model.purpose.code if model else None
        if student_id is None:
            answers.append(InferenceCheck(False, "unknown_student", purpose))
        elif model is None:
            answers.append(InferenceCheck(False, "unknown_model"))
        elif employer_id not in employers:
            answers.append(InferenceCheck(False, "unknown_employer", purpose))
        elif coverage.refusal(student_id=student_id, employer_id=employer_id, at=now):
            answers.append(InferenceCheck(False, "stopped_by_request", purpose))
        elif (student_id, code) in objected:
            answers.append(InferenceCheck(False, "objected", purpose))
        elif (grant := grants.get((student_id, employer_id, model.purpose_id))) is None:
            answers.append(InferenceCheck(False, "no_valid_grant", purpose))
        else:
            answers.append(InferenceCheck(True, "granted", purpose, *grant))
    return answers
