"""A student disputes one result; staff answer it with a reason."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from inferences.models import Inference, InferenceDispute
from portal.models import Language, User
from portal.shared.emails import email_queue_template
from portal.shared.locking import retry_on_deadlock, student_lock

MAX_STATEMENT = 2000
MAX_ANSWER = 4000


class DisputeRefused(ValidationError):
    pass


@retry_on_deadlock
def inference_dispute(
    *, student: User, inference: Inference, statement: str, language: str = Language.JA
) -> InferenceDispute:
    """The student says the result is wrong, in their words. From now on it shows
    "disputed" to them and to staff. One open dispute per result."""
    statement = statement.strip()
    if inference.student_id != student.pk:
        raise DisputeRefused(_("This result is not about you."), code="not_yours")
    if not statement:
        raise DisputeRefused(_("Say what is wrong with this result."), code="statement")
    if len(statement) > MAX_STATEMENT:
        raise DisputeRefused(
            _("At most %(max)d characters.") % {"max": MAX_STATEMENT}, code="statement"
        )
    try:
        with transaction.atomic():
            student_lock(student_id=student.pk)
            if InferenceDispute.objects.filter(inference=inference, answered_at=None).exists():
                raise DisputeRefused(
                    _("You already disputed this result; staff have not answered yet."),
                    code="open",
                )
            return InferenceDispute.objects.create(
                inference=inference, student=student, statement=statement, language=language
            )
    except IntegrityError:  # the same result disputed twice at once: one stands
        raise DisputeRefused(
            _("You already disputed this result; staff have not answered yet."), code="open"
        ) from None


def inference_dispute_answer(
    *, dispute: InferenceDispute, by: User, outcome: str, answer: str
) -> InferenceDispute:
    """Staff answer a dispute: upheld (the result is wrong) or not, with the reason the
    student reads on their page and in an email (through the outbox, in the student's
    language, sent once the answer is committed). Answered once: a second answer is
    refused and emails nobody."""
    answer = answer.strip()
    if outcome not in InferenceDispute.Outcome.values:
        raise DisputeRefused(_("Choose whether the dispute is upheld."), code="outcome")
    if not answer:
        raise DisputeRefused(_("Give the reason the student will read."), code="answer")
    if len(answer) > MAX_ANSWER:
        raise DisputeRefused(_("At most %(max)d characters.") % {"max": MAX_ANSWER}, code="answer")
    with transaction.atomic():
        claimed = InferenceDispute.objects.filter(pk=dispute.pk, answered_at=None).update(
            answered_at=timezone.now(), answered_by=by, outcome=outcome, answer=answer
        )
        if not claimed:
            raise DisputeRefused(_("This dispute was already answered."), code="answered")
        dispute = InferenceDispute.objects.select_related(
            "student", "inference__model", "inference__employer"
        ).get(pk=dispute.pk)
        _email_student(dispute)
    return dispute


def _email_student(dispute: InferenceDispute) -> None:
    student = dispute.student
    if student.closed_at is not None:
        return  # the account is closed: its address is gone (disclosure/closing.py)
    inference = dispute.inference
    language = student.language
    email_queue_template(
        to=student.email,
        template="inference_dispute_answered",
        context={
            "student": student,
            "dispute": dispute,
            "upheld": dispute.outcome == InferenceDispute.Outcome.UPHELD,
            "inference": inference,
            "model_name": inference.model.name(language),
            "company": inference.employer.display_name(language),
            "page_url": settings.SITE_URL + reverse("inferences:list") + f"#result-{inference.pk}",
        },
        kind=f"inference_dispute_answered:{dispute.pk}",
        language=language,
    )
