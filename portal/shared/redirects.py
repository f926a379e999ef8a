"""Where the portal may send a browser after a form: only to one of its own paths.

A `next` parameter comes from a link anyone can craft ("sign in here" in a phishing email),
so it is taken only as a path on this site: it starts with exactly one "/", and nothing in
it lets a browser read it as another site. An absolute URL is refused even when its host is
ours: the portal's own forms always send a path, so an absolute `next` is never needed,
and refusing it leaves no question of which host names count as ours (behind a proxy, with
several ALLOWED_HOSTS). Used by the language switcher, allauth's adapter (sign-in, sign-out,
re-authentication) and every view that takes a `next`.
"""

from urllib.parse import unquote, urlsplit

from django.utils.http import url_has_allowed_host_and_scheme

# Longer than any path of ours with its query; a longer one is someone's payload.
MAX_LENGTH = 2000


def _has_control(text: str) -> bool:
    return any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in text)


def _unsafe_raw(url: str) -> bool:
    # Browsers drop tab and newline from a URL ("/\t/evil.example" is "//evil.example") and
    # read "\" as "/". A path of ours, as request.get_full_path() writes it, is
    # percent-encoded: no backslash, no space of any kind, no control character.
    return _has_control(url) or any(ch == "\\" or ch.isspace() for ch in url)


def is_own_path(url: str | None) -> bool:
    """Whether `url` is a path on this site: "/consent/?page=2", not "//evil.example",
    "/\\evil.example", "https://evil.example", "https:evil.example", a javascript-scheme URL,
    "%2F%2Fevil.example" or any of those with a tab, a newline or encoded slashes inside."""
    if not url or not isinstance(url, str) or len(url) > MAX_LENGTH:
        return False
    if not url.startswith("/") or url.startswith("//"):
        return False
    decoded = unquote(url)
    # Once decoded, still one slash and nothing a browser or a proxy would read otherwise.
    # (A decoded space is fine: a search for "山田 花子" has one in its query.)
    if _unsafe_raw(url) or decoded.startswith(("//", "/\\")) or _has_control(decoded):
        return False
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return False
    # Django's own check as well, with no host allowed: a relative path passes it.
    return url_has_allowed_host_and_scheme(url, allowed_hosts=set())


def own_path_or(url: str | None, default: str) -> str:
    """`url` if it is one of this site's paths, else `default`."""
    return url if is_own_path(url) else default
