"""PDF documents (receipts, reports, certificates), rendered by WeasyPrint from templates.

Every document embeds IPAexGothic so Japanese renders and extracts on any reader;
`make run` and `.ci/run` install the font (Debian's fonts-ipaexfont-gothic).
"""

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation


def pdf_render(*, template: str, context: dict, language: str) -> bytes:
    from weasyprint import HTML  # imported late: it loads Pango, which the web start-up need not

    with translation.override(language):
        html = render_to_string(
            template,
            {
                **context,
                "SITE_NAME": settings.SITE_NAME,
                "operator": settings.PORTAL_OPERATOR,
                "generated_at": timezone.localtime(),
                "LANGUAGE_CODE": language,
            },
        )
    return HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf()
