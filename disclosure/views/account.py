"""Closing one's account (disclosure/closing.py has what it does and keeps)."""

from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from consent.decorators import data_rights_page
from disclosure.closing import account_close
from disclosure.services import request_recipients
from portal.shared.http import page_language
from portal.shared.reauthentication import reauthentication_required


class CloseForm(forms.Form):
    delete_at_companies = forms.BooleanField(
        label=gettext_lazy("Also ask every company that received my data to delete it"),
        required=False,
    )
    understood = forms.BooleanField(
        label=gettext_lazy("I understand that I cannot sign in or undo this afterwards"),
        error_messages={"required": gettext_lazy("Tick this to close your account.")},
    )


@login_required
@data_rights_page
@reauthentication_required
def account_close_view(request: HttpRequest) -> HttpResponse:
    """What goes, what stays and until when; closing needs a recent re-authentication."""
    student = request.user
    if student.is_staff:
        messages.error(request, _("Staff accounts are closed by a Privacy officer."))
        return redirect("dashboard")
    recipients = request_recipients(student=student)
    form = CloseForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        email = student.email
        filed = account_close(
            student=student,
            delete_at_companies=form.cleaned_data["delete_at_companies"],
            language=page_language(),
        )
        logout(request)
        text = _("Your account is closed. A confirmation is on its way to %(email)s.") % {
            "email": email
        }
        if filed is not None:
            text += " " + _(
                "Your deletion request %(reference)s goes on: each company is asked and "
                "followed up as usual."
            ) % {"reference": filed.reference}
        messages.success(request, text)
        return redirect("home")
    return render(
        request,
        "disclosure/account_close.html",
        {"form": form, "recipients": recipients, "language": page_language()},
    )
