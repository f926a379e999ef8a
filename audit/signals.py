"""Sign-ins to the admin go into the audit log (issue 5: "every login to the admin")."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.urls import NoReverseMatch, reverse

from audit.log import audit_record
from audit.models import AuditEntry


def _admin_request(request) -> bool:
    if request is None:
        return False
    try:
        return request.path.startswith(reverse("admin:index"))
    except NoReverseMatch:
        return False


@receiver(user_logged_in, dispatch_uid="audit_admin_login")
def _login(sender, request, user, **kwargs):
    # Staff signing in anywhere is recorded: the session they get opens the admin too.
    if user.is_staff:
        audit_record(action=AuditEntry.Action.LOGIN, actor=user, request=request, target=user)


@receiver(user_logged_out, dispatch_uid="audit_admin_logout")
def _logout(sender, request, user, **kwargs):
    if user is not None and user.is_staff:
        audit_record(action=AuditEntry.Action.LOGOUT, actor=user, request=request, target=user)


@receiver(user_login_failed, dispatch_uid="audit_admin_login_failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    if _admin_request(request):
        audit_record(
            action=AuditEntry.Action.LOGIN_FAILED,
            request=request,
            actor_label=str(credentials.get("username") or credentials.get("email") or "")[:254],
        )
