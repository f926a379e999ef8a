"""A student objects to a model: nothing more by it about them, and the employers that were
handed its results told to stop using them, as a withdrawal tells those that received data
(consent/services/consents.py, `_notify_recipients`): one email per employer through the
outbox, to its primary contact in that contact's language, and a notice row staff find
among the failed ones when a company has no contact."""

from django.db import transaction

from inferences.models import Inference, InferenceModel, InferenceObjection, ObjectionNotice
from portal.models import Language, User
from portal.shared.emails import email_queue_to_company
from portal.shared.locking import retry_on_deadlock, student_lock


@retry_on_deadlock
def inference_model_object(
    *,
    student: User,
    model: InferenceModel,
    language: str = Language.JA,
    ip_address: str | None = None,
    user_agent: str = "",
) -> tuple[InferenceObjection, bool]:
    """Object to `model`, every version of it. The pipeline's next result by it about the
    student is refused (409 objected). Returns the objection and whether it is new:
    objecting again changes nothing and tells nobody twice."""
    with transaction.atomic():
        # The intake locks the same row: a batch either sees the objection or is seen by it.
        student_lock(student_id=student.pk)
        existing = InferenceObjection.objects.filter(student=student, model_code=model.code).first()
        if existing is not None:
            return existing, False
        objection = InferenceObjection.objects.create(
            student=student,
            model_code=model.code,
            model=model,
            language=language,
            ip_address=ip_address or None,
            user_agent=(user_agent or "")[:400],
        )
        _notify_recipients(objection=objection)
    return objection, True


def _notify_recipients(*, objection: InferenceObjection) -> list[ObjectionNotice]:
    """Tell every employer that was handed a result of the model about this student to stop
    using it, listing the results it was handed."""
    handed = (
        Inference.objects.filter(
            student_id=objection.student_id,
            model__code=objection.model_code,
            handed_over_at__isnull=False,
        )
        .select_related("employer", "model")
        .order_by("employer_id", "made_at", "pk")
    )
    by_employer: dict[int, list[Inference]] = {}
    for inference in handed:
        by_employer.setdefault(inference.employer_id, []).append(inference)
    notices = []
    for results in by_employer.values():
        employer = results[0].employer
        # Inactive employers too: they still hold what they were handed.
        language = employer.message_language
        message = email_queue_to_company(
            employer=employer,
            template="inference_objection",
            context={
                "employer": employer,
                "model_name": objection.model.name(language),
                "model_never": objection.model.never(language),
                "results": results,
                "objected_at": objection.objected_at,
                "student_public_id": objection.student.public_id,
            },
            kind="inference_objection",
        )
        notices.append(
            ObjectionNotice.objects.create(objection=objection, employer=employer, email=message)
        )
    return notices
