"""A company's workspace, its CSV: the list as a file to fill in, the filled-in file's
preview (nothing recorded), and its confirmation (disclosure/services/workspace_csv.py)."""

import hashlib

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from consent.decorators import data_rights_page
from disclosure.models import (
    CESSATION_ATTESTATION,
    DELETION_ATTESTATION,
    RecipientTask,
    WorkspaceLink,
)
from disclosure.services import (
    workspace_tasks,
)
from disclosure.services.workspace import workspace_answer_plan
from disclosure.services.workspace_csv import (
    CSV_MAX_BYTES,
    CsvRefused,
    csv_filename,
    csv_lines,
    csv_plan,
)
from disclosure.views.workspace import (
    CSV_SESSION_KEY,
    _list_page,
    _signed_in,
)
from disclosure.workspace_forms import (
    CsvUploadForm,
    TaskFilterForm,
)
from portal.shared.files import attachment_response


@data_rights_page
@never_cache
@_signed_in
def workspace_csv(request: HttpRequest, link: WorkspaceLink, language: str) -> HttpResponse:
    """The list's tasks (its filter applied; waiting ones by default) as a CSV to fill in."""
    filters = TaskFilterForm(request.GET).filters()
    tasks = workspace_tasks(employer=link.employer, filters=filters)
    return attachment_response(
        content=csv_lines(employer_id=link.employer_id, tasks=tasks),
        filename=csv_filename(),
        content_type="text/csv",
    )


@data_rights_page
@never_cache
@csrf_protect
@require_POST
@_signed_in
def workspace_csv_upload(request: HttpRequest, link: WorkspaceLink, language: str) -> HttpResponse:
    """Read a filled-in CSV and show what it would change. Nothing is recorded; the rows
    that will be answered wait in the session for the confirmation."""
    request.session.pop(CSV_SESSION_KEY, None)
    form = CsvUploadForm(request.POST, request.FILES)
    filter_form = TaskFilterForm(QueryDict(""))
    plan = None
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            if upload.size > CSV_MAX_BYTES:
                raise CsvRefused(
                    _("The file is larger than %(size)s MB. Split it into smaller files.")
                    % {"size": CSV_MAX_BYTES // (1024 * 1024)}
                )
            content = upload.read()
            plan = csv_plan(employer_id=link.employer_id, content=content)
        except CsvRefused as refused:
            form.add_error("file", str(refused))
    if plan is not None:
        answers = {row.answer for row in plan.good}
        for answer, tick in (
            (RecipientTask.Answer.DELETED, "attestation"),
            (RecipientTask.Answer.STOPPED, "attestation_stopped"),
        ):
            if answer in answers and not form.cleaned_data[tick]:
                form.add_error(
                    tick, _("Tick the confirmation; the answer cannot be recorded without it.")
                )
    if not form.is_valid():
        notice = _("The file was not read; nothing was answered. See below why.")
        return _list_page(request, link, filter_form, csv_form=form, notice=notice, status=400)
    name = " ".join(form.cleaned_data["name"].split())
    role = " ".join(form.cleaned_data["role"].split())
    digest = hashlib.sha256(content).hexdigest()
    good = plan.good
    if good:
        request.session[CSV_SESSION_KEY] = {
            "link": link.pk,
            "digest": digest,
            "answered_by": f"{name} ({role})"[:200],
            "rows": [[row.task.pk, row.answer, row.statement] for row in good],
        }
    labels = dict(RecipientTask.Answer.choices)
    return render(
        request,
        "disclosure/workspace_csv_preview.html",
        {
            "good": [(row, labels[row.answer]) for row in good],
            "bad": plan.bad,
            "digest": digest,
            "answered_by": f"{name} ({role})",
            "back_url": reverse("disclosure:workspace"),
        },
    )


@data_rights_page
@never_cache
@csrf_protect
@require_POST
@_signed_in
def workspace_csv_confirm(request: HttpRequest, link: WorkspaceLink, language: str) -> HttpResponse:
    """Record the answers of the preview this session was shown, once: the session's rows
    are taken out first, so confirming again finds nothing to do."""
    kept = request.session.pop(CSV_SESSION_KEY, None)
    if (
        not isinstance(kept, dict)
        or kept.get("link") != link.pk
        or kept.get("digest") != request.POST.get("digest", "")
    ):
        return render(
            request,
            "disclosure/workspace_csv_result.html",
            {"result": None, "back_url": reverse("disclosure:workspace")},
            status=409,
        )
    plan = {}
    for task_id, answer, statement in kept["rows"]:
        # What each answer page records: the attestation ticked, else what was written.
        if answer == RecipientTask.Answer.DELETED:
            statement = str(DELETION_ATTESTATION)
        elif answer == RecipientTask.Answer.STOPPED:
            statement = str(CESSATION_ATTESTATION)
        plan[int(task_id)] = (answer, statement)
    result = workspace_answer_plan(
        link=link, plan=plan, answered_by=kept["answered_by"], label="csv", request=request
    )
    return render(
        request,
        "disclosure/workspace_csv_result.html",
        {"result": result, "back_url": reverse("disclosure:workspace")},
    )
