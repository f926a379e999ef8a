"""The employer admin, with the question a change of contact raises for open requests.

When staff save an employer whose primary contact changed (another address, or another
contact made primary) while the company has open requests whose links went to the old
address, the save leads to a page asking whether to resend those links to the new contact.

`portal` must not import `disclosure` (DESIGN.md, "Layout"), so portal's EmployerAdmin knows
nothing of requests. This subclass adds the question and takes its place in the admin site:
`disclosure.admin` imports this module last, after portal's admin (imported below) registered
the one it replaces, and `DisclosureConfig.ready()` imports it as well. A subclass rather than
a hook registry in portal: the question needs its own page (a URL of this admin), and one
subclass reads more plainly than a callback found through a registry.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from audit.log import audit_record
from audit.models import AuditEntry
from disclosure.admin.workspace import workspace_links_html
from disclosure.services import CONTACT_CHANGED, employer_tasks_elsewhere, employer_tasks_resend
from portal import admin as portal_admin
from portal.models import Employer, PrivacyContact
from portal.shared.redirects import own_path_or

RESEND_PERMISSION = "disclosure.resend_answer_link"
TEMPLATE = "admin/portal/employer/resend_links.html"


def _primary_email(employer_id: int) -> str | None:
    return (
        PrivacyContact.objects.filter(employer_id=employer_id, is_primary=True)
        .values_list("email", flat=True)
        .first()
    )


class EmployerAdmin(portal_admin.EmployerAdmin):
    # The company's workspace links, listed on its page (revoked from their own list). A
    # read-only field, not an inline: an inline's formset would be part of every save.
    readonly_fields = [*portal_admin.EmployerAdmin.readonly_fields, "workspace_links"]

    @admin.display(description=_("workspace links"))
    def workspace_links(self, obj):
        return workspace_links_html(obj)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/resend-links/",
                self.admin_site.admin_view(self.resend_links_view),
                name="portal_employer_resend_links",
            ),
            *super().get_urls(),
        ]

    def save_model(self, request, obj, form, change):
        if change:  # before the contacts (saved after this) change
            request._primary_before = _primary_email(obj.pk)
        super().save_model(request, obj, form, change)

    def response_change(self, request: HttpRequest, obj: Employer) -> HttpResponse:
        response = super().response_change(request, obj)
        before = getattr(request, "_primary_before", None)
        after = _primary_email(obj.pk)
        if (
            isinstance(response, HttpResponseRedirect)
            and after is not None
            and (before or "").lower() != after.lower()
            and employer_tasks_elsewhere(employer=obj).exists()
        ):
            url = reverse("admin:portal_employer_resend_links", args=[obj.pk])
            return HttpResponseRedirect(f"{url}?{urlencode({'next': response.url})}")
        return response

    def resend_links_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        employer = get_object_or_404(Employer, pk=object_id)
        if not self.has_view_or_change_permission(request, employer):
            raise PermissionDenied
        change_url = reverse("admin:portal_employer_change", args=[employer.pk])
        next_url = own_path_or(request.POST.get("next", request.GET.get("next")), change_url)
        contact = employer.primary_contact
        if contact is None:
            self.message_user(
                request,
                _("%(company)s has no primary privacy contact.") % {"company": employer.name},
                messages.ERROR,
            )
            return HttpResponseRedirect(change_url)
        may_resend = request.user.has_perm(RESEND_PERMISSION)

        if request.method == "POST":
            if not may_resend:
                raise PermissionDenied
            try:
                with transaction.atomic():
                    resent = employer_tasks_resend(employer=employer, by=request.user)
                    for task in resent:
                        audit_record(
                            action=AuditEntry.Action.ACTION,
                            name="disclosure.resend_answer_link",
                            request=request,
                            target=task.request,
                            changes={
                                "company": employer.name,
                                "to": [task.email.to if task.email else None, contact.email],
                            },
                            reason=CONTACT_CHANGED,
                        )
            except ValidationError as refused:
                self.message_user(request, " ".join(refused.messages), messages.ERROR)
                return HttpResponseRedirect(change_url)
            self.message_user(
                request,
                ngettext(
                    "%(count)d answer link was sent to %(email)s; the earlier link no longer "
                    "works.",
                    "%(count)d answer links were sent to %(email)s; the earlier links no "
                    "longer work.",
                    len(resent),
                )
                % {"count": len(resent), "email": contact.email},
                messages.SUCCESS,
            )
            return HttpResponseRedirect(next_url)

        tasks = list(
            employer_tasks_elsewhere(employer=employer)
            .select_related("request", "email")
            .defer("email__body_text", "email__body_html")
            .order_by("request__due_at", "pk")
        )
        if not tasks:
            self.message_user(
                request,
                _("No open request is waiting on an earlier contact of %(company)s.")
                % {"company": employer.name},
                messages.INFO,
            )
            return HttpResponseRedirect(next_url)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Resend the answer links?"),
            "subtitle": employer.name,
            "employer": employer,
            "contact": contact,
            "tasks": tasks,
            "may_resend": may_resend,
            "change_url": change_url,
            "next_url": next_url,
            "question": ngettext(
                "%(count)d open request is waiting for an answer from this company. Resend "
                "its answer link to the new contact %(email)s?",
                "%(count)d open requests are waiting for an answer from this company. Resend "
                "their answer links to the new contact %(email)s?",
                len(tasks),
            )
            % {"count": len(tasks), "email": contact.email},
        }
        return TemplateResponse(request, TEMPLATE, context)


admin.site.unregister(Employer)
admin.site.register(Employer, EmployerAdmin)
