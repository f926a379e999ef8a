"""The workspace's choice of how the company is told of new requests (issue 19): each by its
own email, an hourly or a daily digest, or the API and webhook alone."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_POST

from consent.decorators import data_rights_page
from disclosure.models import WorkspaceLink
from disclosure.services.workspace import workspace_delivery_change
from disclosure.views.workspace import _list_page, _signed_in
from disclosure.workspace_forms import DeliveryForm, TaskFilterForm


@data_rights_page
@never_cache
@csrf_protect
@require_POST
@_signed_in
def workspace_delivery(request: HttpRequest, link: WorkspaceLink, language: str) -> HttpResponse:
    form = DeliveryForm(request.POST)
    if not form.is_valid():
        return _list_page(
            request, link, TaskFilterForm(QueryDict()), delivery_form=form, status=400
        )
    delivery = form.cleaned_data["delivery"]
    if workspace_delivery_change(link=link, delivery=delivery, request=request):
        messages.success(
            request,
            _("Saved: your company now receives requests as: %(delivery)s.")
            % {"delivery": link.employer.get_request_delivery_display()},
        )
    else:
        messages.info(request, _("Nothing changed: that was already your choice."))
    return redirect("disclosure:workspace")
