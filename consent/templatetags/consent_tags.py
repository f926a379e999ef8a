from django import template
from django.utils.translation import get_language

from consent.models import localized as localized_value

register = template.Library()


@register.simple_tag
def localized(obj, field: str) -> str:
    """{% localized purpose "title" %}: the field in the page's language."""
    return localized_value(obj, field, "en" if (get_language() or "").startswith("en") else "ja")
