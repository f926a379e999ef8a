"""The header's navigation and language choices, each rendered once per what it shows.

The navigation's nine links, each a `{% url %}` and a `{% translate %}`, were 0.4 ms of every
signed-in page, and the switcher's choices 0.2 ms: together most of the base template. What
the links show depends only on the language, the page the student is on (which link is
marked current), whether the user is staff and where the URLs point; the choices, on the
language alone. None of that changes while the process runs, so the HTML is kept per process
under it, and a page pays a dictionary lookup.
"""

import functools

from django import template
from django.template.loader import render_to_string
from django.urls import get_script_prefix, get_urlconf
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

register = template.Library()


@register.simple_tag(takes_context=True)
def site_nav(context) -> SafeString:
    request = context["request"]
    match = request.resolver_match
    return _nav(
        get_language(),
        get_script_prefix(),
        get_urlconf(),
        match.url_name if match else None,
        match.namespace if match else None,
        bool(request.user.is_staff),
    )


@functools.lru_cache(maxsize=512)
def _nav(language, prefix, urlconf, url_name, namespace, staff) -> SafeString:
    # The language, the prefix and the URL configuration are in the key only: rendering
    # reads them from the request's thread, as they are now.
    html = render_to_string(
        "portal/site_nav.html", {"url_name": url_name, "namespace": namespace, "staff": staff}
    )
    return mark_safe(html)  # noqa: S308 - the template's output, escaped by it


@register.simple_tag
def language_options() -> SafeString:
    return _language_options(get_language())


@functools.lru_cache(maxsize=16)
def _language_options(language) -> SafeString:
    return mark_safe(render_to_string("portal/language_options.html"))  # noqa: S308 - as above
