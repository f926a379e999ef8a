"""Small helpers shared by the back-office tests."""

from django.urls import reverse

from audit.models import AuditEntry


def staff_entries(**filters):
    """Audit entries other than sign-ins (force_login of a staff member records one)."""
    return AuditEntry.objects.exclude(
        action__in=[AuditEntry.Action.LOGIN, AuditEntry.Action.LOGOUT]
    ).filter(**filters)


def action_url(name, data_request, task=None):
    args = [data_request.pk] if task is None else [data_request.pk, task.pk]
    return reverse(f"admin:disclosure_datarequest_{name}", args=args)
