"""PDF documents (receipts, reports, certificates), rendered by WeasyPrint from templates.

Every document extends templates/portal/pdf_base.html and uses one stylesheet,
static/portal/pdf.css, which `pdf_bytes` applies (parsed once per thread): A4; the portal's
name, the document's name and its date at the top of every page, its reference and "n / N"
at the foot; table headers repeated on every page a table runs on, and rows never split.
Every document embeds IPAexGothic so Japanese renders and extracts on any reader; `make run`
and `.ci/run` install the font (Debian's fonts-ipaexfont-gothic).

What people type reaches these documents (names, a company's statement, a policy's text).
Templates escape it, and WeasyPrint is given `pdf_url_fetcher()`, which fetches nothing but
the portal's own static files: the stylesheet is named `portal-static:portal/pdf.css`, and
every other URL (file:, http:, https:, ftp:, data:, anything relative) is refused and
logged, so no document can read a file of the server or make it call another machine, even
if some markup got past the escaping. Fonts come from fontconfig, not from the fetcher.
"""

import logging
import mimetypes
import re
import threading
from functools import cache
from pathlib import Path

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

logger = logging.getLogger(__name__)

# The one scheme the fetcher serves: `portal-static:<path under a STATICFILES_DIRS folder>`.
# A pseudo-scheme rather than a file:// URI, so that no file: URL is ever fetched and the
# server's paths never appear in the HTML.
STATIC_SCHEME = "portal-static:"
STYLESHEET = f"{STATIC_SCHEME}portal/pdf.css"
# Letters, digits, "_", "-", "." and "/": what our own file names use. No "%" (nothing is
# decoded), no "\\", no "?" or "#", no ":".
_STATIC_PATH = re.compile(r"[A-Za-z0-9_./-]+")


class PdfFetchRefused(ValueError):
    """A URL the PDF renderer may not fetch. WeasyPrint logs it and leaves the resource out."""


def static_file_for(url: str) -> Path | None:
    """The file a `portal-static:` URL names, if it is a regular file inside one of the
    portal's static folders once every symlink and ".." is resolved; otherwise None."""
    if not url.startswith(STATIC_SCHEME):
        return None
    relative = url.removeprefix(STATIC_SCHEME)
    if not _STATIC_PATH.fullmatch(relative) or relative.startswith("/"):
        return None
    if any(part in ("", ".", "..") for part in relative.split("/")):
        return None
    for folder in settings.STATICFILES_DIRS:
        if isinstance(folder, tuple | list):  # ("prefix", path): the prefix is for URLs
            folder = folder[1]
        root = Path(folder).resolve()
        candidate = (root / relative).resolve()
        # resolve() follows symlinks: a link pointing out of the folder lands outside it.
        if candidate.is_relative_to(root) and candidate.is_file():
            return candidate
    return None


@cache
def _fetcher_class() -> type:
    from weasyprint.urls import URLFetcher, URLFetcherResponse  # late, like HTML below

    class PortalStaticFetcher(URLFetcher):
        """WeasyPrint's fetcher with every network and file handler unused: `fetch` serves
        our static files and refuses the rest."""

        def fetch(self, url, headers=None):
            path = static_file_for(url)
            if path is None:
                # Truncated: the URL may be a whole injected payload.
                logger.warning("PDF rendering refused to fetch %r", url[:200])
                raise PdfFetchRefused(f"not one of the portal's static files: {url[:200]}")
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            return URLFetcherResponse(
                url, body=path.read_bytes(), headers={"Content-Type": content_type}
            )

    return PortalStaticFetcher


def pdf_url_fetcher():
    """The url_fetcher for every WeasyPrint render (see the module's docstring)."""
    return _fetcher_class()()


def page_numbers() -> SafeString:
    """ "3 / 12" in the active language, as HTML whose empty spans the stylesheet fills with
    the page's number and the count of pages (CSS counters: only the layout knows them)."""
    # Translators: the page number at the foot of every page of a PDF, e.g. "3 / 12". Keep
    # both placeholders; Japanese adds ページ after them.
    pattern = translation.gettext("%(page)s / %(pages)s")
    return mark_safe(  # noqa: S308 - the pattern is escaped; the spans are ours
        str(conditional_escape(pattern))
        % {
            "page": '<span class="pdf-page-number"></span>',
            "pages": '<span class="pdf-page-count"></span>',
        }
    )


def pdf_html(*, template: str, context: dict, language: str) -> str:
    """The document's HTML in `language`, as WeasyPrint gets it. Times are in Japan time
    whatever zone the caller has activated: the documents say so."""
    with translation.override(language), timezone.override(settings.TIME_ZONE):
        return render_to_string(
            template,
            {
                **context,
                "SITE_NAME": settings.SITE_NAME,
                "operator": settings.PORTAL_OPERATOR,
                "generated_at": timezone.localtime(),
                "LANGUAGE_CODE": language,
                "page_numbers": page_numbers(),
            },
        )


_per_thread = threading.local()


def _stylesheet():
    """pdf.css parsed once, with the font configuration it was parsed for, per thread (a
    font configuration holds Pango objects, not known to be safe to share between
    threads). Parsing the sheet and loading the fonts again for each document was a third
    of a one-page certificate's time (122 ms, now 86 ms); a wave's worker makes thousands."""
    cached = getattr(_per_thread, "stylesheet", None)
    if cached is None:
        from weasyprint import CSS
        from weasyprint.text.fonts import FontConfiguration

        fonts = FontConfiguration()
        sheet = CSS(url=STYLESHEET, url_fetcher=pdf_url_fetcher(), font_config=fonts)
        cached = _per_thread.stylesheet = (sheet, fonts)
    return cached


def pdf_bytes(html: str) -> bytes:
    """The PDF of `html`, styled by pdf.css (which the HTML does not link: it is applied
    here, parsed once)."""
    from weasyprint import HTML  # imported late: it loads Pango, which the web start-up need not

    sheet, fonts = _stylesheet()
    # Not the project folder as base URL: a relative reference ("/etc/passwd", "x.png") then
    # stays as written (urljoin does not join onto a scheme it does not know) and reaches the
    # fetcher, which refuses it, rather than becoming a file: URL.
    document = HTML(string=html, base_url=STATIC_SCHEME, url_fetcher=pdf_url_fetcher())
    return document.write_pdf(stylesheets=[sheet], font_config=fonts)


def pdf_render(*, template: str, context: dict, language: str) -> bytes:
    return pdf_bytes(pdf_html(template=template, context=context, language=language))
