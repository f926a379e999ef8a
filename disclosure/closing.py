"""A student closes their account (issue 17, item 6).

Every consent receipt says the consent "ends when you delete your account". Closing:
- goes at once: the way in (password, email addresses, the link to the job site's account,
  second factors), the name and the address on the account (and the name in a correction
  of it), and every session (an inactive
  account is signed out everywhere on its next request); every live grant is withdrawn, and
  the companies that received data are told to stop using it, as a withdrawal does;
- stays, without the name and the address: what the law makes the portal keep (records of
  provision, 3 years; the requests and their certificates; the consent ledger they rest on;
  the audit log), until the retention job removes the rest
  (`backoffice.retention.closed_accounts_expire`);
- optionally files, in the same step, a deletion request to every company that received the
  student's data, which goes on as any request does;
- emails a confirmation to the address before it goes; the emails already sent to it keep
  what they were (kind, time, state) but lose the address and the text, and those still to
  go (the confirmation, the deletion request's receipt) lose them once sent
  (`portal.shared.emails.emails_erase`);
- erases at once what the site inferred about the student (their results and disputes:
  `inferences.services.inferences_erase`), keeping only that they objected to a model.

Signing in afterwards fails exactly as for an address that never had an account.
"""

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from audit.log import audit_record
from audit.models import AuditEntry
from consent.models import ConsentScreen
from consent.services import consent_withdraw_all
from disclosure.models import Correction, DataRequest
from disclosure.services import request_file, request_recipients
from inferences.services import inferences_erase
from portal.models import User
from portal.shared.emails import email_queue_template, emails_to_closed_address
from portal.shared.locking import student_lock

# An address no one can receive mail at (RFC 2606 `.invalid`), unique per account.
CLOSED_EMAIL = "closed-{public_id}@closed.invalid"


def account_close(*, student: User, delete_at_companies: bool, language: str) -> DataRequest | None:
    """Close `student`'s account; returns the deletion request filed with it, if any."""
    with transaction.atomic():
        student_lock(student_id=student.pk)
        student.refresh_from_db()
        if student.closed_at is not None:
            return None
        filed = None
        if delete_at_companies and request_recipients(student=student):
            filed = request_file(student=student, kind=DataRequest.Kind.DELETION, language=language)
        consent_withdraw_all(student=student, screen=ConsentScreen.WITHDRAW_ALL, language=language)
        # What the site inferred about the student goes at once, filed deletion or not: with
        # every grant withdrawn no result may be used again (objections stay, as proof).
        inferences_erase(student=student)
        # The confirmation goes to the address before it is erased.
        email_queue_template(
            to=student.email,
            template="account_closed",
            context={
                "student": student,
                "filed": filed,
                "provision_years": settings.RETENTION_PROVISION_DAYS // 365,
                "closed_years": settings.RETENTION_CLOSED_ACCOUNT_DAYS // 365,
            },
            kind="account_closed",
            language=language,
        )
        emails_to_closed_address(
            address=student.email, closed=CLOSED_EMAIL.format(public_id=student.public_id)
        )
        EmailAddress.objects.filter(user=student).delete()
        SocialAccount.objects.filter(user=student).delete()
        Authenticator.objects.filter(user=student).delete()
        student.email = CLOSED_EMAIL.format(public_id=student.public_id)
        student.display_name = ""
        student.set_unusable_password()
        student.is_active = False
        student.closed_at = timezone.now()
        student.save(update_fields=["email", "display_name", "password", "is_active", "closed_at"])
        # A correction of the name kept the name, before and after: it goes with the name.
        Correction.objects.filter(
            request__student=student, target=Correction.Target.PROFILE
        ).update(previous_value="", right="")
        # Staff see that it happened, not what was erased.
        audit_record(
            action=AuditEntry.Action.SYSTEM,
            name="portal.account_close",
            actor_label="the student",
            target_type="portal.user",
            target_id=str(student.pk),
            target_repr=f"student {student.public_id}",
            changes={"deletion_request": filed.reference if filed else None},
        )
    return filed
