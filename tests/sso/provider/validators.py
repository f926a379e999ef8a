from oauth2_provider.oauth2_validators import OAuth2Validator

from tests.sso.provider.models import EmailStatus


class ClaimsValidator(OAuth2Validator):
    """The claims the job site gives: name (scope profile), email and email_verified (email);
    sub is the user's pk, which never changes when the email does."""

    def get_additional_claims(self, request):
        user = request.user
        status = EmailStatus.objects.filter(user=user).first()
        return {
            "name": user.first_name,
            "email": user.email,
            "email_verified": bool(status is None or status.verified),
        }
