"""Files the portal takes in and hands out: what their bytes must look like, and how every
download is answered.

Every file a person downloads (receipts, reports, certificates, a company's upload, the
staff's CSV) goes out through `attachment_response`: always `Content-Disposition:
attachment` with a safe file name, `X-Content-Type-Options: nosniff`, never cached, and with
a content type from `DOWNLOAD_TYPES`, so no file is ever shown by the browser as one of the
portal's pages. A stored file whose bytes do not match its type goes out as
application/octet-stream.

What a company uploads is checked by `content_matches` (disclosure/forms.py): its bytes must
be what its type says, and no file may carry HTML or SVG where a browser or a mail client
looks for it (`looks_like_markup`).
"""

import os
import re
from collections.abc import Iterable

from django.http import HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

# The types a download may be sent as; anything else goes as OCTET_STREAM.
DOWNLOAD_TYPES = {
    "application/pdf",
    "application/json",
    "application/zip",
    "text/csv",
    "text/plain",
}
OCTET_STREAM = "application/octet-stream"
TEXT_TYPES = {"application/json", "text/csv", "text/plain"}
# The file name endings each type may have; the first is added to a name that has none of
# them, so that a file is never saved as .html (and opened by a browser from the disk).
EXTENSIONS = {
    "application/pdf": (".pdf",),
    "application/json": (".json",),
    "application/zip": (".zip",),
    "text/csv": (".csv",),
    "text/plain": (".txt", ".csv", ".tsv", ".log", ".md"),
    OCTET_STREAM: (".bin",),
}

# How far into a file we look for markup. A browser decides what a response is from at most
# its first 1,445 bytes (the "resource header" of the WHATWG MIME Sniffing Standard; older
# Internet Explorer scanned 256), and a PDF reader needs "%PDF-" only within the first 1,024:
# 2,048 covers all of them with room to spare. Markup further on is never sniffed, and
# `nosniff` with `attachment` keeps every browser from trying.
SNIFF_BYTES = 2048
# The openings a browser's sniffing takes for HTML or XML (the WHATWG list's <!DOCTYPE HTML,
# <HTML, <HEAD, <BODY, <SCRIPT, <IFRAME, <STYLE, <!--, <?xml), the SVG, MathML and embedding
# tags that run or load something, and any tag with an event handler. Not the list's
# harmless short tags (<a, <b, <p, <br, <div, …): "a<b c" is a comparison in a CSV, and
# without a handler such a tag runs nothing.
_MARKUP = re.compile(
    rb"<(?:!doctype|!--|\?xml|(?:html|head|body|script|iframe|frame|frameset|object|embed"
    rb"|svg|math|style|meta|link|base|form|img|video|audio|source)[\s/>])"
    rb"|<[a-z][a-z0-9:-]*\s[^<>]*\bon[a-z]+\s*=",
    re.IGNORECASE,
)


def looks_like_markup(content: bytes) -> bool:
    """Whether the first SNIFF_BYTES of `content` hold an HTML, XML or SVG tag. NUL bytes
    are dropped first, so markup spelled in UTF-16 is found too."""
    return bool(_MARKUP.search(content[:SNIFF_BYTES].replace(b"\x00", b"")))


def content_matches(content_type: str, content: bytes) -> bool:
    """Whether the bytes are what the content type says: a PDF starts with %PDF-, a ZIP
    with PK, a text type decodes as UTF-8; and none carries markup (`looks_like_markup`):
    an HTML page named .pdf, an SVG sent as text/plain, a PDF/HTML polyglot are refused.
    A type not known here never matches: give it a check before it joins
    COMPANY_FILE_TYPES."""
    if looks_like_markup(content):
        return False
    if content_type == "application/pdf":
        return content.startswith(b"%PDF-")
    if content_type == "application/zip":
        return content.startswith(b"PK")
    if content_type in TEXT_TYPES:
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True
    return False


def name_fits_type(name: str, content_type: str) -> bool:
    return os.path.splitext(name)[1].lower() in EXTENSIONS.get(content_type, ())


def download_name(name: str, content_type: str) -> str:
    """`name` without any folder or control character, ending in an extension of
    `content_type`."""
    # A newline would be refused in the header (a 500 for the student): it goes, like the
    # rest of what cannot be printed. Quotes are escaped by content_disposition_header.
    name = "".join(ch if ch.isprintable() else "_" for ch in name)
    name = os.path.basename(name.replace("\\", "/")).strip() or "file"
    if not name_fits_type(name, content_type):
        name += EXTENSIONS.get(content_type, EXTENSIONS[OCTET_STREAM])[0]
    return name


def attachment_response(
    *,
    content: bytes | Iterable[str],
    filename: str,
    content_type: str,
    check_content: bool = False,
) -> HttpResponse | StreamingHttpResponse:
    """A download. `content` is bytes, or an iterable of text lines (streamed). With
    `check_content` (a stored file that came from outside) the bytes must match the type."""
    served = content_type.split(";")[0].strip().lower()
    if served not in DOWNLOAD_TYPES:
        served = OCTET_STREAM
    elif check_content and not (isinstance(content, bytes) and content_matches(served, content)):
        served = OCTET_STREAM
    header = f"{served}; charset=utf-8" if served in TEXT_TYPES else served
    if isinstance(content, bytes):
        response = HttpResponse(content, content_type=header)
    else:
        response = StreamingHttpResponse(content, content_type=header)
    response["Content-Disposition"] = content_disposition_header(
        True, download_name(filename, served)
    )
    response["X-Content-Type-Options"] = "nosniff"
    # Personal data: no copy in a shared or browser cache.
    response["Cache-Control"] = "private, no-store"
    return response
