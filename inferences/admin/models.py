"""The inference models: drafted and changed by a Privacy officer, activated once (audited,
with a reason), and then final, as a published policy version is."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from audit.log import audit_record
from audit.mixins import AuditedModelAdmin
from audit.models import AuditEntry
from consent.admin.forms import AuditReasonForm
from inferences.models import InferenceModel
from inferences.services import inference_model_activate

ACTIVATE_INFERENCEMODEL = "inferences.activate_inferencemodel"


class ActiveFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("draft", _("draft")), ("active", _("active"))]

    def queryset(self, request, queryset):
        if self.value() == "draft":
            return queryset.filter(activated_at__isnull=True)
        if self.value() == "active":
            return queryset.filter(activated_at__isnull=False)
        return queryset


@admin.register(InferenceModel)
class InferenceModelAdmin(AuditedModelAdmin):
    list_display = [
        "code",
        "version",
        "name_ja",
        "purpose",
        "output_kind",
        "activated_at",
        "inference_count",
    ]
    list_filter = [ActiveFilter, "purpose", "output_kind"]
    search_fields = ["code", "version", "name_ja", "name_en", "accountable"]
    change_form_template = "admin/inferences/inferencemodel/change_form.html"
    fieldsets = [
        (None, {"fields": ["code", "version", "name_ja", "name_en", "accountable"]}),
        (
            _("What the student is told"),
            {
                "fields": [
                    "predicts_ja",
                    "predicts_en",
                    "data_categories_ja",
                    "data_categories_en",
                    "purpose",
                    "use_ja",
                    "use_en",
                    "never_ja",
                    "never_en",
                ]
            },
        ),
        (
            _("Output"),
            {
                "fields": [
                    "output_kind",
                    "labels",
                    "number_min",
                    "number_max",
                    "output_meaning_ja",
                    "output_meaning_en",
                ]
            },
        ),
        (_("State"), {"fields": ["created_at", "activated_at", "activated_by"]}),
    ]
    always_readonly = ["created_at", "activated_at", "activated_by"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(inference_total=Count("inferences"))

    @admin.display(description=_("inferences"), ordering="inference_total")
    def inference_count(self, obj):
        return obj.inference_total

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_active:
            return [field for _name, options in self.fieldsets for field in options["fields"]]
        return self.always_readonly

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_active:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if change and InferenceModel.objects.filter(pk=obj.pk, activated_at__isnull=False):
            # The form is read-only for an active model; a forged POST still ends here.
            raise PermissionDenied
        super().save_model(request, obj, form, change)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        obj = self.get_object(request, object_id) if object_id else None
        if obj is not None and obj.is_active and request.method == "POST":
            self.message_user(
                request,
                _("Model %(model)s is active and can never change. Register a new version.")
                % {"model": obj},
                messages.ERROR,
            )
            return HttpResponseRedirect(request.path)
        extra_context = {
            **(extra_context or {}),
            "can_activate": obj is not None
            and not obj.is_active
            and request.user.has_perm(ACTIVATE_INFERENCEMODEL),
            "activate_form": AuditReasonForm(),
        }
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path(
                "<int:pk>/activate/",
                self.admin_site.admin_view(require_POST(self.activate_view)),
                name="inferences_inferencemodel_activate",
            ),
        ] + super().get_urls()

    def activate_view(self, request: HttpRequest, pk: int):
        if not request.user.has_perm(ACTIVATE_INFERENCEMODEL):
            raise PermissionDenied
        model = get_object_or_404(InferenceModel, pk=pk)
        form = AuditReasonForm(request.POST)
        reason = form.cleaned_data["reason"].strip() if form.is_valid() else ""
        try:
            with transaction.atomic():
                active = inference_model_activate(model=model, by=request.user)
                audit_record(
                    action=AuditEntry.Action.ACTION,
                    name="inferences.activate_inferencemodel",
                    request=request,
                    target=active,
                    changes={"activated_at": [None, active.activated_at.isoformat()]},
                    reason=reason,
                )
        except ValidationError as exc:
            for message in exc.messages:
                self.message_user(request, message, messages.ERROR)
        else:
            self.message_user(
                request,
                _(
                    "Model %(model)s is active: the pipeline's results by it are accepted "
                    "from now on, and it can never change."
                )
                % {"model": active},
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:inferences_inferencemodel_change", args=[pk]))
