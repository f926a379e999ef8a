from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from portal.http import page_language


def limits_said(form: forms.Form) -> None:
    """Long input is never cut without a word: each text field says its limit in its help
    text, and the browser gets no `maxlength` (which drops pasted text silently). A longer
    text is refused by the form, which shows it again with the message."""
    for field in form.fields.values():
        if isinstance(field, forms.CharField) and field.max_length:
            field.widget.attrs.pop("maxlength", None)
            limit = format_lazy(_("At most {} characters."), f"{field.max_length:,}")
            field.help_text = (
                format_lazy("{} {}", field.help_text, limit) if field.help_text else limit
            )


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
