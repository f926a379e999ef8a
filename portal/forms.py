from django import forms
from django.utils.translation import gettext_lazy as _

from portal.shared.forms import limits_said
from portal.shared.http import page_language


class SignupForm(forms.Form):
    """Extra fields on allauth's sign-up form. Nothing here touches consent: registering
    never grants behaviour-data processing (DESIGN.md, "Consent model")."""

    display_name = forms.CharField(
        label=_("Your name"),
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
        help_text=_("Shown to you and used when a company is asked about your data."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        limits_said(self)

    def signup(self, request, user):
        user.display_name = self.cleaned_data["display_name"]
        user.language = page_language()
        user.save(update_fields=["display_name", "language"])
