"""`AuditedModelAdmin`: every add, change and delete made through a ModelAdmin is written to
the audit log with the values before and after, in the same transaction as the change.

Staff actions that are not a form save (resend a link, extend a due date, ...) call
`audit.log.audit_record` themselves, with the reason the staff member gave.
"""

from django.contrib import admin
from django.db import models
from django.forms import BaseFormSet

from audit.log import audit_record
from audit.models import AuditEntry

SECRET_FIELDS = {"password", "key_sha256", "token_sha256"}
REASON_FIELD = "_audit_reason"


def _shown(value):
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, models.QuerySet | list | tuple | set):
        return sorted(str(item) for item in value)
    return str(value)


def _field_value(form, name: str, *, initial: bool):
    field = form.fields.get(name)
    if initial:
        value = form.initial.get(name, field.initial if field is not None else None)
        # A ModelChoiceField's initial is a pk (or pks): show what it stands for.
        if field is not None and hasattr(field, "queryset") and value not in (None, "", []):
            if isinstance(value, list | tuple | set | models.QuerySet):
                return sorted(str(item) for item in field.queryset.filter(pk__in=list(value)))
            return str(field.queryset.filter(pk=value).first())
        return _shown(value)
    return _shown(form.cleaned_data.get(name))


def form_changes(form, *, adding: bool) -> dict:
    """{field: [before, after]} for the fields the form changed (secrets masked)."""
    changes = {}
    for name in form.changed_data:
        if name == REASON_FIELD:
            continue
        if name in SECRET_FIELDS or "password" in name:
            changes[name] = ["•••", "••• (changed)"]
            continue
        before = None if adding else _field_value(form, name, initial=True)
        changes[name] = [before, _field_value(form, name, initial=False)]
    return changes


def formset_changes(formset: BaseFormSet) -> dict:
    prefix = formset.model._meta.model_name
    changes = {}
    for form in formset.initial_forms:
        if formset.can_delete and formset._should_delete_form(form):
            changes[f"{prefix}[{form.instance.pk}]"] = [str(form.instance), None]
        elif form.has_changed():
            for name, values in form_changes(form, adding=False).items():
                changes[f"{prefix}[{form.instance.pk}].{name}"] = values
    for form in formset.extra_forms:
        if form.has_changed() and not (formset.can_delete and formset._should_delete_form(form)):
            for name, values in form_changes(form, adding=True).items():
                changes[f"{prefix}[new].{name}"] = values
    return changes


class AuditedModelAdmin(admin.ModelAdmin):
    """Write each add, change and delete to the audit log."""

    def _reason(self, request) -> str:
        return request.POST.get(REASON_FIELD, "").strip()

    def save_model(self, request, obj, form, change):
        # Read the differences before saving: the form's initial values are the old ones.
        pending = form_changes(form, adding=not change)
        super().save_model(request, obj, form, change)
        request._audit_pending = (obj, pending, change)

    def save_related(self, request, form, formsets, change):
        obj, pending, change = getattr(request, "_audit_pending", (form.instance, {}, change))
        for formset in formsets:
            pending.update(formset_changes(formset))
        super().save_related(request, form, formsets, change)
        if pending or not change:
            audit_record(
                action=AuditEntry.Action.CHANGE if change else AuditEntry.Action.ADD,
                request=request,
                target=obj,
                changes=pending,
                reason=self._reason(request),
            )

    def delete_model(self, request, obj):
        audit_record(
            action=AuditEntry.Action.DELETE,
            request=request,
            target=obj,
            reason=self._reason(request),
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit_record(
                action=AuditEntry.Action.DELETE,
                request=request,
                target=obj,
                reason=self._reason(request),
            )
        super().delete_queryset(request, queryset)
