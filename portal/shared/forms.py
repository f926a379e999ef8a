"""What every form shares."""

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _


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
