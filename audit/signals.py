"""Sign-ins to the admin and staff's second factors go into the audit log (issue 5: "every
login to the admin"; issue 10: MFA for staff).

Signals, because these events happen inside Django's and allauth's own views: the receivers
only record, they decide nothing.
"""

from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model
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


def _names_staff(credentials) -> bool:
    # Staff sign in through allauth's page, which students use too: a failure is recorded
    # when the address tried is a staff account's (someone guessing a staff password).
    identifier = credentials.get("email") or credentials.get("username")
    return bool(identifier) and (
        get_user_model().objects.filter(email__iexact=identifier, is_staff=True).exists()
    )


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
    if _admin_request(request) or _names_staff(credentials):
        audit_record(
            action=AuditEntry.Action.LOGIN_FAILED,
            request=request,
            actor_label=str(credentials.get("username") or credentials.get("email") or "")[:254],
        )


# --- staff's second factors (allauth.mfa) ---------------------------------------------------
# allauth sends "added" and "reset" from transaction.on_commit, so those entries are written
# just after the change commits, not with it (we do not own allauth's transaction); "removed",
# "used" and "failed" come inside the request's own work.

MFA_ADDED = "mfa.authenticator_added"
MFA_REMOVED = "mfa.authenticator_removed"
MFA_RECOVERY_CODES_REGENERATED = "mfa.recovery_codes_regenerated"
MFA_RECOVERY_CODE_USED = "mfa.recovery_code_used"
MFA_CODE_FAILED = "mfa.code_failed"


def _mfa_record(name: str, request, user, authenticator, *, actor=None, **changes) -> None:
    audit_record(
        action=AuditEntry.Action.ACTION,
        name=name,
        actor=actor,
        actor_label="" if actor else user.get_username(),
        request=request,
        target=user,
        changes={"type": authenticator.type, **changes},
    )


@receiver(mfa_signals.authenticator_added, dispatch_uid="audit_mfa_added")
def _mfa_added(sender, request, user, authenticator, **kwargs):
    if user.is_staff:
        _mfa_record(MFA_ADDED, request, user, authenticator, actor=user)


@receiver(mfa_signals.authenticator_removed, dispatch_uid="audit_mfa_removed")
def _mfa_removed(sender, request, user, authenticator, **kwargs):
    if user.is_staff:
        _mfa_record(MFA_REMOVED, request, user, authenticator, actor=user)


@receiver(mfa_signals.authenticator_reset, dispatch_uid="audit_mfa_reset")
def _mfa_reset(sender, request, user, authenticator, **kwargs):
    if user.is_staff:
        _mfa_record(MFA_RECOVERY_CODES_REGENERATED, request, user, authenticator, actor=user)


@receiver(mfa_signals.authenticator_used, dispatch_uid="audit_mfa_used")
def _mfa_used(sender, request, user, authenticator, **kwargs):
    # A TOTP code at sign-in is the ordinary case (the sign-in is recorded); a recovery code
    # means the usual factor is lost, which the Privacy officer wants to see.
    if user.is_staff and authenticator.type == Authenticator.Type.RECOVERY_CODES:
        _mfa_record(MFA_RECOVERY_CODE_USED, request, user, authenticator, actor=user)


@receiver(mfa_signals.authentication_failed, dispatch_uid="audit_mfa_failed")
def _mfa_failed(sender, request, user, authenticator, **kwargs):
    # Someone who has the password typed a wrong code: not signed in, so no actor.
    if user.is_staff:
        _mfa_record(
            MFA_CODE_FAILED,
            request,
            user,
            authenticator,
            reauthentication=bool(kwargs.get("reauthentication")),
        )
