"""The student's page "What the site inferred about you": each model that ran on their data,
described in plain words, its results over time (for which company, handed over or not,
disputed or not), and the two buttons: object to a model, dispute one result.

Disputing a result files a correction request scoped to it, so its view is the requests'
(disclosure/views/correction.py, which sits above this app); the form is here."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from consent.decorators import data_rights_page
from consent.models import EMPLOYER_PLACEHOLDERS, Purpose
from inferences.models import Inference, InferenceDispute, InferenceModel, InferenceObjection
from inferences.services import inference_model_object
from inferences.services.disputes import MAX_STATEMENT
from portal.shared.forms import limits_said
from portal.shared.http import client_ip, page_language


class DisputeForm(forms.Form):
    statement = forms.CharField(
        label=gettext_lazy("What is wrong with this result?"),
        help_text=gettext_lazy(
            "In your words: what is not true, or why it does not describe you. Staff answer "
            "with a reason, here on this page."
        ),
        max_length=MAX_STATEMENT,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": gettext_lazy("Say what is wrong with this result.")},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limits_said(self)


def _groups(student, language: str) -> list[dict]:
    """The student's results, grouped by model (every version of it under its newest),
    newest result first. A fixed number of queries, whatever the history holds."""
    inferences = list(
        Inference.objects.filter(student=student)
        .select_related("model__purpose", "employer")
        .prefetch_related(
            Prefetch("disputes", queryset=InferenceDispute.objects.order_by("-filed_at", "-pk"))
        )
        .order_by("-made_at", "-pk")
    )
    objections = {
        objection.model_code: objection
        for objection in InferenceObjection.objects.filter(student=student).prefetch_related(
            "notices"
        )
    }
    groups: dict[str, dict] = {}
    for inference in inferences:
        model = inference.model
        group = groups.get(model.code)
        if group is None:
            group = groups[model.code] = {
                "code": model.code,
                "model": model,
                "versions": set(),
                "results": [],
                "objection": objections.get(model.code),
                "companies": set(),
            }
        if model.activated_at > group["model"].activated_at:
            group["model"] = model  # described as its newest version describes it
        group["versions"].add(model.version)
        disputes = list(inference.disputes.all())
        group["results"].append(
            {
                "inference": inference,
                "company": inference.employer.display_name(language),
                "dispute": disputes[0] if disputes else None,
                "can_dispute": not disputes or not disputes[0].is_open,
            }
        )
        if inference.handed_over:
            group["companies"].add(inference.employer_id)
    result = []
    for group in groups.values():
        model = group["model"]
        result.append(
            {
                **group,
                "versions": sorted(group["versions"]),
                "name": model.name(language),
                "predicts": model.predicts(language),
                "data_categories": model.data_categories(language),
                "purpose": _purpose_title(model.purpose, language),
                "use": model.use(language),
                "never": model.never(language),
                "output_meaning": model.output_meaning(language),
                "handed_to": len(group["companies"]),
                "notified": len(group["objection"].notices.all()) if group["objection"] else 0,
            }
        )
    result.sort(key=lambda group: group["results"][0]["inference"].made_at, reverse=True)
    return result


def _purpose_title(purpose: Purpose, language: str) -> str:
    """The purpose's title, its placeholder for the company in words: a model's card speaks
    of every company it ran for."""
    title = purpose.title(language)
    for placeholder in EMPLOYER_PLACEHOLDERS:
        title = title.replace(placeholder, _("the company you chose"))
    return title


@login_required
@data_rights_page
def inference_list(request: HttpRequest) -> HttpResponse:
    language = page_language()
    return render(
        request,
        "inferences/inference_list.html",
        {"groups": _groups(request.user, language), "form": DisputeForm()},
    )


@login_required
@require_POST
@data_rights_page
def model_object(request: HttpRequest, code: str) -> HttpResponse:
    """Object to a model: at once, nothing more by it about the student."""
    model = (
        InferenceModel.objects.active().filter(code=code).order_by("-activated_at", "-pk").first()
    )
    if model is None:
        raise Http404
    objection, created = inference_model_object(
        student=request.user,
        model=model,
        language=page_language(),
        ip_address=client_ip(request),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )
    name = model.name(page_language())
    if created:
        said = [
            _("You objected to “%(model)s”: it makes nothing more about you, for any company.")
            % {"model": name}
        ]
        notified = objection.notices.count()
        if notified:
            said.append(
                _(
                    "The companies it was given to (%(count)d) are being told to stop using "
                    "its results."
                )
                % {"count": notified}
            )
        messages.success(request, " ".join(said))
    else:
        messages.info(request, _("You had already objected to this model; nothing changed."))
    return redirect(reverse("inferences:list") + f"#model-{model.code}")
