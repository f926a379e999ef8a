from django import template

from consent.models import localized as localized_value
from consent.models import name_filled
from portal.shared.http import page_language

register = template.Library()


@register.simple_tag
def localized(obj, field: str) -> str:
    """{% localized purpose "title" %}: the field in the page's language."""
    return localized_value(obj, field, page_language())


@register.simple_tag
def event_line(event, language: str) -> str:
    """One line describing a consent change, in `language`: 'Turned off: <purpose> (<company>)'."""
    return event_lines([event], language)[0]


def event_lines(events, language: str) -> list[str]:
    """`event_line` of each event, the language switched once and each action's label and
    each purpose's title worked out once: a deletion's receipt lists 38 changes of one
    purpose."""
    from django.utils.translation import gettext, override

    labels, titles, lines = {}, {}, []
    with override(language):
        for event in events:
            label = labels.get(event.action)
            if label is None:
                if event.action == "grant":
                    label = gettext("Turned on")
                elif event.action == "withdraw":
                    label = gettext("Turned off")
                else:
                    label = gettext("Ended by a policy change")
                labels[event.action] = label
            key = (event.policy_version_id, event.purpose_id)
            title = titles.get(key)
            if title is None:
                title = event.policy_version.purpose_wording(event.purpose, language)["title"]
                titles[key] = title
            # The purpose's words name the company where its wording says 〈企業〉, as the
            # consent page shows them.
            company = event.employer.display_name(language)
            lines.append(f"{label}: {name_filled(title, company)} ({company})")
    return lines
