"""The four PDF documents read well: A4, the portal's name and the document's date at the top
of every page and "n / N" at the foot, tables that run over pages with their header repeated
and rows kept whole, IPAexGothic embedded, Japanese text extractable, pages not blank.

Read back as a reader would, with poppler (Debian's poppler-utils: pdffonts, pdftotext,
pdftoppm), and with pypdf for the page size.
"""

import io
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import formats, timezone, translation
from pypdf import PdfReader

from consent.receipts import acceptance_receipt_pdf, event_receipt_pdf
from consent.services import consent_grant, provision_record
from disclosure.reports import certificate_pdf, disclosure_report_files
from disclosure.services import recipient_task_answer, request_file
from portal.models import ActivityRecord
from portal.shared.pdf import pdf_render
from tests.factories import (
    EmployerFactory,
    PurposeFactory,
    UserFactory,
    accept,
    opt_in_purposes,
    published_version,
)

pytestmark = pytest.mark.django_db

LANGUAGES = ("ja", "en")
DOCUMENTS = ("receipt", "consent-receipt", "disclosure-report", "certificate")
TITLES = {
    "receipt": "Privacy-policy acceptance receipt",
    "consent-receipt": "Consent receipt",
    "disclosure-report": "Your personal data held by the portal",
    "certificate": "Certificate of completion",
}
STUDENT = "山田 花子"
COMPANY = {"ja": "株式会社みらい技研", "en": "Mirai Giken Co., Ltd."}
STATEMENT = "受領したデータと派生スコアをすべて削除しました。"
A4 = (595.28, 841.89)  # points
POPPLER = "poppler-utils"


# --- Reading a PDF back ------------------------------------------------------------------


def poppler(tool: str, *args: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(
            f"`{tool}` is not installed: it comes with Debian's {POPPLER} package "
            f"(`apt-get install {POPPLER}`, or `bash scripts/system-deps.sh` as root)"
        )
    result = subprocess.run(  # noqa: S603 - a poppler tool on a file the test wrote
        [path, *args], capture_output=True, check=True, timeout=120
    )
    return result.stdout.decode("utf-8")


def write(content: bytes, tmp_path: Path, name: str = "doc.pdf") -> Path:
    assert content.startswith(b"%PDF"), content[:20]
    path = tmp_path / name
    path.write_bytes(content)
    return path


def page_texts(pdf: Path, *, layout: bool = False) -> list[str]:
    """pdftotext's text of each page. By default in the order it was written (a table cell's
    lines together); with `layout`, as the page shows it (the running header is the first
    line, the footer the last)."""
    mode = "-layout" if layout else "-raw"
    pages = poppler("pdftotext", mode, "-enc", "UTF-8", str(pdf), "-").split("\f")
    return pages[:-1] if not pages[-1].strip() else pages


def flat(text: str) -> str:
    # Table cells wrap long words over lines: compare without whitespace.
    return "".join(text.split())


def embedded_fonts(pdf: Path) -> dict[str, str]:
    """{font name without its subset tag: its `emb` column} from pdffonts' table."""
    fonts = {}
    for line in poppler("pdffonts", str(pdf)).splitlines()[2:]:
        # name, type (one or two words), encoding, emb, sub, uni, object number, generation
        parts = line.split()
        fonts[parts[0].split("+", 1)[-1]] = parts[-5]
    return fonts


def ink(pdf: Path, tmp_path: Path, page: int) -> float:
    """The fraction of not-white pixels in the body of one page (between the running header
    and footer, which a blank page has too), rendered at 50 dpi in grey."""
    prefix = tmp_path / f"page{page}"
    poppler(
        "pdftoppm", "-gray", "-r", "50", "-f", str(page), "-l", str(page), "-singlefile",
        str(pdf), str(prefix),
    )  # fmt: skip
    data = prefix.with_suffix(".pgm").read_bytes()
    # Binary PGM: "P5", width, height, maximum value, then one byte per pixel.
    match = re.match(rb"P5\s+(\d+)\s+(\d+)\s+255\s", data)
    assert match, data[:20]
    width, height = int(match[1]), int(match[2])
    pixels = data[match.end() : match.end() + width * height]
    assert len(pixels) == width * height
    # The page's margins (static/portal/pdf.css): 24 mm at the top, 20 mm at the foot.
    top, bottom = round(24 / 25.4 * 50), height - round(20 / 25.4 * 50)
    body = pixels[top * width : bottom * width]
    return sum(1 for value in body if value < 200) / len(body)


def in_language(language: str, *msgids: str) -> list[str]:
    with translation.override(language):
        return [str(translation.gettext(m)) for m in msgids]


def site_name(language: str) -> str:
    with translation.override(language):
        return str(settings.SITE_NAME)


def issued(language: str, *moments) -> set[str]:
    """The document's date as its header shows it, for each moment around the rendering."""
    with translation.override(language):
        return {formats.date_format(timezone.localtime(m), "DATETIME_FORMAT") for m in moments}


# --- The documents -----------------------------------------------------------------------


@pytest.fixture
def world():
    analysis, provision = opt_in_purposes()
    version = published_version(purposes=[PurposeFactory(code="account"), analysis, provision])
    company = EmployerFactory(name=COMPANY["ja"], name_en=COMPANY["en"])
    return {"version": version, "provision": provision, "company": company}


def student_with_history(world: dict, language: str):
    """A student who accepted the policy, gave consent to the company and whose data went to
    it, all in `language`."""
    student = UserFactory(display_name=STUDENT, language=language)
    acceptance = accept(student, world["version"], language=language)
    event = consent_grant(
        student=student, employer=world["company"], purpose=world["provision"], language=language
    )
    provision_record(
        student=student,
        employer=world["company"],
        purpose=world["provision"],
        data_items="行動履歴の分析結果（関心度スコア）",
    )
    return student, acceptance, event


def report_pdf(student, language: str, capture) -> tuple[bytes, str]:
    with capture(execute=True):
        request = request_file(
            student=student, kind="disclosure", delivery_format="pdf", language=language
        )
    # With the PDF comes the CSV of the activity records.
    [(_kind, _name, _type, content), _csv] = disclosure_report_files(request_id=request.pk)
    return content, request.reference


def build(document: str, language: str, world: dict, capture) -> tuple[bytes, list[str]]:
    """The document in `language`, and texts it must show besides the common ones."""
    student, acceptance, event = student_with_history(world, language)
    company = COMPANY[language]
    if document == "receipt":
        title = world["version"].title_ja if language == "ja" else world["version"].title_en
        return acceptance_receipt_pdf(acceptance), [title, str(acceptance.receipt_id)]
    if document == "consent-receipt":
        return event_receipt_pdf(event), [company, str(event.receipt_id)]
    if document == "disclosure-report":
        content, reference = report_pdf(student, language, capture)
        return content, [company, reference, "行動履歴の分析結果（関心度スコア）"]
    with capture(execute=True):
        request = request_file(student=student, kind="deletion", language=language)
    with capture(execute=True):
        for task in request.tasks.all():
            recipient_task_answer(
                task=task, answer="deleted", answered_by="人事部 青葉 一郎", statement=STATEMENT
            )
    content, _name = certificate_pdf(request_id=request.pk)
    return content, [company, request.reference, "人事部 青葉 一郎", STATEMENT]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("document", DOCUMENTS)
def test_each_pdf_is_a4_with_an_embedded_cjk_font_and_extractable_text_on_every_page(
    document, language, world, django_capture_on_commit_callbacks, tmp_path
):
    before = timezone.now()
    content, expected = build(document, language, world, django_capture_on_commit_callbacks)
    after = timezone.now()
    pdf = write(content, tmp_path)

    reader = PdfReader(io.BytesIO(content))
    for page in reader.pages:
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert (round(width), round(height)) == (round(A4[0]), round(A4[1])), (width, height)

    fonts = embedded_fonts(pdf)
    assert fonts.get("IPAexGothic") == "yes", f"IPAexGothic is not embedded: {fonts}"

    pages = page_texts(pdf)
    assert len(pages) == len(reader.pages)
    text = flat("".join(pages))
    [title] = in_language(language, TITLES[document])
    for wanted in (title, STUDENT, *expected):
        assert flat(wanted) in text, f"{wanted!r} is not in the text of the {document}"
    if language == "en":
        assert flat(title) == flat(TITLES[document])
    dates = issued(language, before, after)
    for number, page in enumerate(pages, 1):
        assert site_name(language) in page, f"page {number}: no portal name"
        assert any(flat(date) in flat(page) for date in dates), f"page {number}: no date {dates}"
        assert f"{number} / {len(pages)}" in page, f"page {number}: no page number"

    # Not blank: a full first page, and something (a line at least) on every other one.
    assert ink(pdf, tmp_path, 1) > 0.01, f"page 1 of the {document} is (nearly) blank"
    for number in range(2, len(pages) + 1):
        assert ink(pdf, tmp_path, number) > 0.0005, f"page {number} of the {document} is blank"


# --- A document over many pages ----------------------------------------------------------

SECTIONS = (
    "Profile",
    "Privacy policies you accepted",
    "Consent for each company",
    "Provisions of your data to companies",
    "Activity records",
    "Your data-rights requests",
)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_long_report_runs_over_pages_with_its_header_footer_and_table_header_on_each(
    language, world, django_capture_on_commit_callbacks, tmp_path
):
    student, _acceptance, _event = student_with_history(world, language)
    start = timezone.now() - timedelta(days=200)
    # Rows of several lines each, marked at both ends: a row split over two pages would
    # show its two marks on different pages.
    ActivityRecord.objects.bulk_create(
        ActivityRecord(
            student=student,
            employer=world["company"] if n % 2 else None,
            kind=ActivityRecord.Kind.JOB_VIEW,
            detail=f"開始{n:03d} " + "求人情報を閲覧しました。" * 12 + f" 終了{n:03d}",
            occurred_at=start + timedelta(hours=n),
        )
        for n in range(60)
    )
    before = timezone.now()
    content, _reference = report_pdf(student, language, django_capture_on_commit_callbacks)
    after = timezone.now()
    pdf = write(content, tmp_path)

    pages = page_texts(pdf)
    count = len(pages)
    assert count >= 3
    laid_out = page_texts(pdf, layout=True)
    dates = issued(language, before, after)
    title = in_language(language, "Disclosure report")[0]
    for number, page in enumerate(laid_out, 1):
        lines = [line for line in page.splitlines() if line.strip()]
        head, foot = lines[0], lines[-1]
        assert site_name(language) in head, (number, head)
        assert flat(title) in flat(head), (number, head)
        assert any(flat(date) in flat(head) for date in dates), (number, head, dates)
        assert re.search(rf"(?<!\d){number}\s*/\s*{count}(?!\d)", foot), (number, foot)
        # No page ends on a section's heading: it goes over with what it introduces.
        headings = {
            flat(f"{n}. {label}") for n, label in enumerate(in_language(language, *SECTIONS), 1)
        }
        assert flat(lines[-2]) not in headings, f"page {number} ends with the heading {lines[-2]!r}"

    rows = {
        n: [i for i, page in enumerate(pages, 1) if f"開始{n:03d}" in flat(page)] for n in range(60)
    }
    ends = {
        n: [i for i, page in enumerate(pages, 1) if f"終了{n:03d}" in flat(page)] for n in range(60)
    }
    assert all(len(found) == 1 for found in rows.values()), rows
    assert rows == ends, "a row of the activity table was split over two pages"
    table_pages = sorted({page for found in rows.values() for page in found})
    assert len(table_pages) >= 2, table_pages
    # The table's header row heads every page the table runs on.
    header = re.compile(
        r"\s+".join(map(re.escape, in_language(language, "When", "Kind", "Company", "Detail")))
    )
    for number in table_pages:
        assert header.search(pages[number - 1]), f"page {number} has rows but no header row"
    for number in range(1, count + 1):
        assert ink(pdf, tmp_path, number) > 0.01, f"page {number} is blank"


def test_the_four_documents_share_one_frame_and_one_stylesheet():
    templates = Path(settings.BASE_DIR) / "templates"
    for name in (
        "consent/receipt_pdf.html",
        "consent/event_receipt_pdf.html",
        "disclosure/report_pdf.html",
        "disclosure/certificate_pdf.html",
    ):
        source = (templates / name).read_text(encoding="utf-8")
        assert source.startswith('{% extends "portal/pdf_base.html" %}'), name
        assert "<style" not in source and "@page" not in source, f"{name} has styles of its own"


def test_a_heading_never_ends_a_page_and_a_table_repeats_its_header(settings, tmp_path):
    """Whatever comes before it, a heading goes to the next page with its table, and the
    table's header row heads each page it runs on (on the frame and stylesheet the four
    documents share)."""
    (tmp_path / "long_pdf.html").write_text(
        '{% extends "portal/pdf_base.html" %}{% block content %}'
        '<div style="height: {{ space }}mm"></div><h2>見出しの後に表</h2>'
        '<table class="grid"><thead><tr><th>番号</th><th>内容</th></tr></thead><tbody>'
        "{% for n in rows %}<tr><td>行{{ n }}</td><td>内容 {{ n }}</td></tr>{% endfor %}"
        "</tbody></table>{% endblock %}",
        encoding="utf-8",
    )
    settings.TEMPLATES = [
        {**settings.TEMPLATES[0], "DIRS": [tmp_path, *settings.TEMPLATES[0]["DIRS"]]}
    ]
    # The page's body is 253 mm high: these spaces leave room for the heading alone, for the
    # heading and the header row, or for a few rows, at the foot of the first page.
    for space in range(217, 232, 3):
        content = pdf_render(
            template="long_pdf.html", context={"space": space, "rows": range(40)}, language="ja"
        )
        pages = page_texts(write(content, tmp_path, f"{space}.pdf"))
        assert len(pages) >= 2
        heading = next(n for n, page in enumerate(pages) if "見出しの後に表" in page)
        first_row = next(n for n, page in enumerate(pages) if "行0" in flat(page))
        assert heading == first_row, f"{space} mm: the heading ends page {heading + 1}"
        for page in pages[first_row:]:
            assert re.search(r"番号\s+内容", page), f"{space} mm: a page without the header row"
