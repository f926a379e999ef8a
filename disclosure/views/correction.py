"""The student's correction pages: the correction form, and disputing one inferred result
(the short form on "What the site inferred about you"), which files a correction scoped to
that result (docs/inferences.md, "Disputes are corrections")."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from consent.decorators import data_rights_page
from disclosure.correction_forms import CHOICES_SHOWN, CorrectionForm
from disclosure.models import Correction, DataRequest
from disclosure.services import RequestRefused, request_recipients
from disclosure.services.corrections import CorrectionAsked, correction_file
from inferences.models import Inference
from inferences.views import DisputeForm
from portal.models import ActivityRecord
from portal.shared.http import page_language
from portal.shared.reauthentication import reauthentication_required


def _filed_message(filed: DataRequest, companies: int) -> str:
    said = [_("Your correction request %(reference)s is filed.") % {"reference": filed.reference}]
    outcome = filed.correction.outcome
    if outcome == Correction.Outcome.CORRECTED:
        said.append(_("The portal has corrected its own record."))
    elif outcome == Correction.Outcome.DISPUTED:
        said.append(_("The portal has marked the data disputed."))
    if companies:
        said.append(
            ngettext(
                "We are passing the correction to %(count)s company that received the data.",
                "We are passing the correction to %(count)s companies that received the data.",
                companies,
            )
            % {"count": companies}
        )
    else:
        said.append(_("No company received this data, so no company needs to be asked."))
    said.append(_("There is no fee."))
    return " ".join(said)


@login_required
@data_rights_page
@reauthentication_required
def request_correction(request: HttpRequest) -> HttpResponse:
    """Ask for a correction. As the other requests, filing needs a recent reauthentication."""
    student = request.user
    language = page_language()
    recipients = request_recipients(student=student)
    activities = list(
        ActivityRecord.objects.filter(student=student).order_by("-occurred_at", "-pk")[
            :CHOICES_SHOWN
        ]
    )
    inferences = list(
        Inference.objects.filter(student=student)
        .select_related("model", "employer")
        .order_by("-made_at", "-pk")[:CHOICES_SHOWN]
    )
    options = {
        "recipients": recipients,
        "activities": activities,
        "inferences": inferences,
        "language": language,
    }
    if request.method == "POST":
        form = CorrectionForm(request.POST, **options)
        if form.is_valid():
            data = form.cleaned_data
            try:
                filed = correction_file(
                    student=student,
                    asked=CorrectionAsked(
                        target=data["target"],
                        wrong=data["wrong"],
                        right=data["right"],
                        profile_field=Correction.ProfileField.DISPLAY_NAME
                        if data["target"] == Correction.Target.PROFILE
                        else "",
                        activity=form.chosen_activity(),
                        inference=form.chosen_inference(),
                    ),
                    employers=form.chosen_employers(),
                    language=language,
                )
            except RequestRefused as refused:
                form.add_error(None, refused.messages[0])
            else:
                companies = filed.tasks.count()
                messages.success(request, _filed_message(filed, companies))
                return redirect("disclosure:request_detail", filed.reference)
    else:
        initial = {}
        for name in ("activity", "inference"):
            if request.GET.get(name, "").isdigit():
                initial[name] = int(request.GET[name])
                initial["target"] = name
        form = CorrectionForm(initial=initial, **options)
    return render(
        request,
        "disclosure/request_correction.html",
        {"form": form, "recipients": recipients, "shown": CHOICES_SHOWN},
    )


@login_required
@data_rights_page
def inference_dispute(request: HttpRequest, pk: int) -> HttpResponse:
    """Dispute one result: a correction request scoped to it (the result marked disputed at
    once, staff's queue, the company it was handed to asked to correct it). The list page
    carries the same short form; this page shows it alone, and again with what was typed
    when something is missing."""
    inference = get_object_or_404(
        Inference.objects.filter(student=request.user).select_related("model", "employer"),
        pk=pk,
    )
    form = DisputeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            filed = correction_file(
                student=request.user,
                asked=CorrectionAsked(
                    target=Correction.Target.INFERENCE,
                    wrong=form.cleaned_data["statement"],
                    inference=inference,
                ),
                language=page_language(),
            )
        except RequestRefused as refused:
            form.add_error("statement", refused.messages[0])
        else:
            said = [
                _(
                    "Your dispute is recorded: the result is marked “disputed”, and staff will "
                    "answer you on this page."
                )
            ]
            if filed.tasks.exists():
                said.append(
                    _("The company it was given to is asked to correct it (request %(ref)s).")
                    % {"ref": filed.reference}
                )
            messages.success(request, " ".join(said))
            return redirect(reverse("inferences:list") + f"#result-{inference.pk}")
    language = page_language()
    return render(
        request,
        "inferences/dispute.html",
        {
            "inference": inference,
            "name": inference.model.name(language),
            "company": inference.employer.display_name(language),
            "form": form,
            "open": inference.disputes.filter(answered_at=None).exists(),
        },
    )
