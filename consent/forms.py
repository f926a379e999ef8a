from django import forms
from django.utils.translation import gettext_lazy as _


class AcceptForm(forms.Form):
    """The explicit acceptance step. The hash is of the text the page displayed."""

    version = forms.IntegerField(widget=forms.HiddenInput)
    language = forms.CharField(widget=forms.HiddenInput, max_length=8)
    text_sha256 = forms.RegexField(regex=r"^[0-9a-f]{64}$", widget=forms.HiddenInput)
    screen = forms.CharField(widget=forms.HiddenInput, max_length=20)
    confirm = forms.BooleanField(
        label=_("I have read this privacy policy and accept it."),
        required=True,
        error_messages={"required": _("Tick the box to show that you have read the policy.")},
    )
