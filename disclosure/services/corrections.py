"""Correction requests (APPI Art. 34; GDPR Art. 16 and 19): the student says what is wrong
and what is right; the portal corrects its own part at once (a profile detail) or marks it
disputed (an activity record, an inference), and the correction goes to every company that
received that data, tracked, reminded, answered and certified like a deletion.

An inference's correction is also a dispute in staff's queue (`InferenceDispute`): the
portal's own part of it is done when staff answer the dispute (docs/inferences.md).
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from disclosure.models import Correction, DataRequest
from disclosure.services._common import Actor, Event, Kind, _event
from disclosure.services.filing import (
    Recipient,
    RequestRefused,
    _complete_if_done,
    request_file,
    request_recipients,
)
from inferences.models import Inference, InferenceDispute
from inferences.services import DisputeRefused, inference_dispute, inference_dispute_answer
from inferences.services.disputes import MAX_STATEMENT
from portal.models import ActivityRecord, Employer, Language, User

Target = Correction.Target
MAX_WORDS = 2000  # what is wrong, what is right: as a dispute's statement
DISPLAY_NAME_MAX = User._meta.get_field("display_name").max_length


@dataclass(frozen=True)
class CorrectionAsked:
    """What the student asks to correct, before it is filed."""

    target: str
    wrong: str
    right: str = ""
    profile_field: str = ""
    activity: ActivityRecord | None = None
    inference: Inference | None = None


def _refuse(message, code: str) -> RequestRefused:
    return RequestRefused(message, code=code)


def _checked(*, student: User, asked: CorrectionAsked) -> CorrectionAsked:
    wrong, right = asked.wrong.strip(), asked.right.strip()
    if asked.target not in Target.values:
        raise ValueError(f"unknown correction target {asked.target!r}")
    if not wrong:
        raise _refuse(_("Say what is wrong."), "wrong")
    if len(wrong) > MAX_WORDS or len(right) > MAX_WORDS:
        raise _refuse(_("At most %(max)d characters.") % {"max": MAX_WORDS}, "wrong")
    if asked.target == Target.PROFILE:
        if asked.profile_field not in Correction.ProfileField.values:
            raise _refuse(_("Choose which detail of your profile is wrong."), "profile_field")
        if not right:
            raise _refuse(_("Say what the right value is."), "right")
        if len(right) > DISPLAY_NAME_MAX:
            raise _refuse(
                _("A name has at most %(max)d characters.") % {"max": DISPLAY_NAME_MAX}, "right"
            )
    if asked.target == Target.ACTIVITY and (
        asked.activity is None or asked.activity.student_id != student.pk
    ):
        raise _refuse(_("Choose one of your activity records."), "activity")
    if asked.target == Target.INFERENCE and (
        asked.inference is None or asked.inference.student_id != student.pk
    ):
        raise _refuse(_("Choose one of the results inferred about you."), "inference")
    return CorrectionAsked(
        target=asked.target,
        wrong=wrong,
        right=right,
        profile_field=asked.profile_field if asked.target == Target.PROFILE else "",
        activity=asked.activity if asked.target == Target.ACTIVITY else None,
        inference=asked.inference if asked.target == Target.INFERENCE else None,
    )


def correction_recipients(*, student: User, asked: CorrectionAsked) -> list[Recipient]:
    """The companies that received the data to correct: the deletion's rule (those that
    received the student's data, or hold a live grant) for a profile detail or what a
    company holds; for an activity record, those given the student's data since it was
    recorded; for an inference, the company it was made for, if it was handed over."""
    if asked.target == Target.INFERENCE:
        inference = asked.inference
        if inference is None or not inference.handed_over:
            return []
        known = {r.employer.pk: r for r in request_recipients(student=student)}
        return [known.get(inference.employer_id) or Recipient(employer=inference.employer)]
    recipients = request_recipients(student=student)
    if asked.target == Target.ACTIVITY:
        occurred = asked.activity.occurred_at
        return [r for r in recipients if r.last_provided_at and r.last_provided_at >= occurred]
    return recipients


def _label(asked: CorrectionAsked, language: str) -> str:
    """The data as it was, in words (kept if the record itself is erased later)."""
    if asked.activity is not None:
        record = asked.activity
        when = timezone.localtime(record.occurred_at).strftime("%Y-%m-%d %H:%M")
        return f"{record.get_kind_display()} · {when} · {record.detail}"[:300]
    if asked.inference is not None:
        inference = asked.inference
        when = timezone.localtime(inference.made_at).strftime("%Y-%m-%d")
        return f"{inference.model.name(language)} · {inference.output} · {when}"[:300]
    return ""


def _own_part(request: DataRequest, *, asked: CorrectionAsked) -> None:
    """The portal's part, in the filing transaction: a profile detail corrected at once; an
    activity record marked disputed; an inference marked disputed and put in staff's queue
    (done when staff answer); data only companies hold, passed on."""
    student = request.student
    now = timezone.now()
    dispute = None
    previous = ""
    if asked.target == Target.PROFILE:
        previous = student.display_name
        User.objects.filter(pk=student.pk).update(display_name=asked.right)
        student.display_name = asked.right
        outcome = Correction.Outcome.CORRECTED
    elif asked.target == Target.COMPANY:
        outcome = Correction.Outcome.PASSED_ON
    else:
        outcome = Correction.Outcome.DISPUTED
    if asked.target == Target.INFERENCE:
        try:
            dispute = inference_dispute(
                student=student,
                inference=asked.inference,
                statement=_dispute_statement(asked),
                language=request.language,
            )
        except DisputeRefused as refused:
            raise RequestRefused(refused.messages[0], code=refused.code or "open") from None
    Correction.objects.create(
        request=request,
        target=asked.target,
        profile_field=asked.profile_field,
        activity=asked.activity,
        inference=asked.inference,
        dispute=dispute,
        target_label=_label(asked, request.language),
        wrong=asked.wrong,
        right=asked.right,
        outcome=outcome,
        previous_value=previous[:300],
        created_at=now,
    )
    request.portal_summary = {"correction": outcome}
    if dispute is None:
        request.portal_done_at = now
    request.save(update_fields=["portal_done_at", "portal_summary"])
    if request.portal_done_at:
        _event(request, Event.PORTAL_DONE, actor=Actor.SYSTEM, at=now, detail=str(outcome))


def _dispute_statement(asked: CorrectionAsked) -> str:
    if not asked.right:
        return asked.wrong
    return f"{asked.wrong}\n\n{_('What is right')}: {asked.right}"[:MAX_STATEMENT]


def correction_file(
    *,
    student: User,
    asked: CorrectionAsked,
    employers: list[Employer] | None = None,
    message: str = "",
    language: str = Language.JA,
) -> DataRequest:
    """File a correction: the portal's part at once, and one task per company that received
    the data. `employers` narrows a profile detail's or a company's data correction to the
    companies the student ticked (among those the rule gives); an activity record's or an
    inference's companies are the rule's alone."""
    asked = _checked(student=student, asked=asked)
    recipients = correction_recipients(student=student, asked=asked)
    if asked.target in (Target.ACTIVITY, Target.INFERENCE):
        employers = None
    return request_file(
        student=student,
        kind=Kind.CORRECTION,
        employers=employers,
        message=message,
        language=language,
        recipients=recipients,
        own_part=lambda request: _own_part(request, asked=asked),
    )


def correction_dispute_answer(
    *, dispute: InferenceDispute, by: User, outcome: str, answer: str
) -> InferenceDispute:
    """Staff answer a dispute (`inference_dispute_answer`); when it is an inference's
    correction, its request's own part is done with it: the result withdrawn (upheld) or
    standing, the answer on the request's timeline for the student, and the request
    completes if every company has answered too."""
    with transaction.atomic():
        answered = inference_dispute_answer(dispute=dispute, by=by, outcome=outcome, answer=answer)
        correction = Correction.objects.filter(dispute=answered).select_related("request").first()
        if correction is None:
            return answered  # a dispute filed before disputes became corrections
        request = correction.request
        now = timezone.now()
        claimed = DataRequest.objects.filter(pk=request.pk, portal_done_at=None).update(
            portal_done_at=now,
            portal_summary={"correction": Correction.Outcome.DISPUTED, "dispute": outcome},
        )
        if not claimed:
            return answered
        request.refresh_from_db()
        _event(
            request,
            Event.PORTAL_DONE,
            actor=Actor.STAFF,
            user=by,
            at=now,
            detail=f"{answered.get_outcome_display()}: {answered.answer}",
        )
        _complete_if_done(request)
    return answered


# The outcome of a dispute whose result was erased before staff answered it.
ERASED = "erased"


def corrections_erased_finish(*, now, limit: int) -> list[int]:
    """An inference's correction whose result was erased before staff answered its dispute
    (by the student's deletion, by closing the account, by retention: the dispute goes with
    the result) has nothing left for staff to answer: its own part is done, said on its
    timeline, and it completes when the companies have answered. The requests sweep calls
    it, so every way a result is erased is covered. Returns the requests finished."""
    waiting = list(
        DataRequest.objects.filter(
            kind=Kind.CORRECTION,
            status__in=DataRequest.OPEN,
            portal_done_at=None,
            correction__target=Target.INFERENCE,
            correction__dispute__isnull=True,
        ).values_list("pk", flat=True)[:limit]
    )
    finished = []
    for pk in waiting:
        with transaction.atomic():
            claimed = DataRequest.objects.filter(pk=pk, portal_done_at=None).update(
                portal_done_at=now,
                portal_summary={"correction": Correction.Outcome.DISPUTED, "dispute": ERASED},
            )
            if not claimed:
                continue
            request = DataRequest.objects.get(pk=pk)
            _event(request, Event.PORTAL_DONE, actor=Actor.SYSTEM, at=now, detail=ERASED)
            _complete_if_done(request)
            finished.append(pk)
    return finished


def correction_of_request(request: DataRequest) -> Correction | None:
    try:
        return request.correction
    except Correction.DoesNotExist:
        return None


__all__ = [
    "CorrectionAsked",
    "correction_dispute_answer",
    "corrections_erased_finish",
    "correction_file",
    "correction_of_request",
    "correction_recipients",
]
