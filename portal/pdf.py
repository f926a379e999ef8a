"""PDF documents (receipts, reports, certificates), rendered by WeasyPrint from templates.

Every document extends templates/portal/pdf_base.html and uses one stylesheet,
static/portal/pdf.css: A4; the portal's name, the document's name and its date at the top
of every page, its reference and "n / N" at the foot; table headers repeated on every page
a table runs on, and rows never split. Every document embeds IPAexGothic so Japanese
renders and extracts on any reader; `make run` and `.ci/run` install the font (Debian's
fonts-ipaexfont-gothic).
"""

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

STYLESHEET = settings.BASE_DIR / "static" / "portal" / "pdf.css"


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
                "pdf_stylesheet": STYLESHEET.as_uri(),
                "page_numbers": page_numbers(),
            },
        )


def pdf_bytes(html: str) -> bytes:
    from weasyprint import HTML  # imported late: it loads Pango, which the web start-up need not

    return HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf()


def pdf_render(*, template: str, context: dict, language: str) -> bytes:
    return pdf_bytes(pdf_html(template=template, context=context, language=language))
