from django.conf import settings
from django.db import models


class EmailStatus(models.Model):
    """Whether the site has verified the user's current email (the email_verified claim)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    verified = models.BooleanField(default=True)

    def __str__(self):
        return f"{self.user}: {'verified' if self.verified else 'unverified'}"
