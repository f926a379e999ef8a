from django import template

from consent.models import localized as localized_value
from portal.shared.http import page_language

register = template.Library()


@register.simple_tag
def localized(obj, field: str) -> str:
    """{% localized purpose "title" %}: the field in the page's language."""
    return localized_value(obj, field, page_language())


@register.simple_tag
def event_line(event, language: str) -> str:
    """One line describing a consent change, in `language`: 'Turned off: <purpose> (<company>)'."""
    from django.utils.translation import gettext, override

    with override(language):
        title = event.policy_version.purpose_wording(event.purpose, language)["title"]
        company = event.employer.display_name(language)
        if event.action == "grant":
            label = gettext("Turned on")
        elif event.action == "withdraw":
            label = gettext("Turned off")
        else:
            label = gettext("Ended by a policy change")
        return f"{label}: {title} ({company})"
