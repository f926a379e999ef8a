import io
import json
from pathlib import Path

import jsonschema
import pytest
from django.urls import reverse
from pypdf import PdfReader

from consent.receipts import SCHEMA_PATH, acceptance_receipt_json
from tests.factories import PurposeFactory, UserFactory, accept, published_version

pytestmark = pytest.mark.django_db

SHARED_SCHEMA = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "standards"
    / ("kantara-consent-receipt-v1_1-schema.json")
)
TITLE_JA = "学生向けプライバシーポリシー（2019年3月版）"


@pytest.fixture
def acceptance():
    version = published_version(
        label="2019.03",
        title_ja=TITLE_JA,
        purposes=[
            PurposeFactory(code="account"),
            PurposeFactory(code="job_matching", third_party_disclosure=True),
            PurposeFactory(code="behaviour_analysis", requires_opt_in=True),
        ],
    )
    return accept(UserFactory(), version)


def _embedded_fonts(reader: PdfReader) -> set[str]:
    fonts = set()
    for page in reader.pages:
        for font in (page.get("/Resources") or {}).get("/Font", {}).values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts")
            targets = [d.get_object() for d in descendants] if descendants else [font]
            for target in targets:
                descriptor = target.get("/FontDescriptor")
                if descriptor and any(
                    k in descriptor.get_object() for k in ("/FontFile2", "/FontFile3")
                ):
                    fonts.add(str(target["/BaseFont"]))
    return fonts


def test_the_pdf_receipt_has_the_japanese_title_as_text_in_an_embedded_cjk_font(client, acceptance):
    client.force_login(acceptance.student)

    response = client.get(reverse("consent:receipt_pdf", args=[acceptance.receipt_id]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    text = "".join(page.extract_text() for page in reader.pages)
    assert TITLE_JA in text
    assert str(acceptance.receipt_id) in text
    assert any("IPAexGothic" in font for font in _embedded_fonts(reader))


def test_the_json_receipt_validates_against_the_kantara_schema(client, acceptance):
    client.force_login(acceptance.student)

    response = client.get(reverse("consent:receipt_json", args=[acceptance.receipt_id]))

    receipt = json.loads(response.content)
    jsonschema.validate(receipt, json.loads(SCHEMA_PATH.read_text()))
    assert receipt["consentReceiptID"] == str(acceptance.receipt_id)
    assert receipt["piiPrincipalId"] == str(acceptance.student.public_id)
    assert acceptance.student.email not in response.content.decode()
    assert receipt["consentTimestamp"] == int(acceptance.accepted_at.timestamp())
    assert receipt["policyTextSha256"] == acceptance.text_sha256
    assert "screen=signup" in receipt["collectionMethod"]


def test_the_json_receipt_never_lists_an_opt_in_purpose_as_consented(acceptance):
    purposes = acceptance_receipt_json(acceptance)["services"][0]["purposes"]
    titles = {p["purpose"] for p in purposes}
    assert titles == {"accountの目的", "job_matchingの目的"}
    disclosed = next(p for p in purposes if p["purpose"] == "job_matchingの目的")
    assert disclosed["thirdPartyDisclosure"] is True and disclosed["thirdPartyName"]


def test_an_invalid_receipt_would_fail_the_schema(acceptance):
    # Guards the guard: the schema really is enforced by the check above.
    receipt = acceptance_receipt_json(acceptance)
    del receipt["piiControllers"][0]["phone"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(receipt, json.loads(SCHEMA_PATH.read_text()))


@pytest.mark.skipif(not SHARED_SCHEMA.exists(), reason="../shared/ is not beside this checkout")
def test_the_bundled_schema_is_the_shared_standard():
    assert json.loads(SCHEMA_PATH.read_text()) == json.loads(SHARED_SCHEMA.read_text())


@pytest.mark.parametrize(("language", "label"), [("ja", "控え"), ("en", "Receipt")])
def test_the_receipt_email_lists_each_change_with_its_link_in_the_students_language(
    language, label
):
    from consent.models import ConsentEvent
    from consent.services import consent_grant, consent_withdraw_all
    from portal.models import EmailMessage
    from tests.factories import EmployerFactory, opt_in_purposes, student_who_accepted

    analysis, provision = opt_in_purposes()
    student, _ = student_who_accepted(analysis, provision, language=language)
    odd = EmployerFactory(name="<Acme & 商事>", name_en="<Acme & Co>")
    plain = EmployerFactory()
    for employer in (odd, plain):
        consent_grant(student=student, employer=employer, purpose=provision)

    consent_withdraw_all(student=student)

    message = EmailMessage.objects.filter(kind="consent_change").latest("pk")
    events = ConsentEvent.objects.filter(student=student, action="withdraw")
    assert events.count() == 2
    for event in events:
        link = f"/consents/receipts/{event.receipt_id}/"
        assert f"· {label}: " in message.body_text and link in message.body_text
        assert f'{link}">{label}</a></li>' in message.body_html
    # The text as typed; the HTML escaped, and nothing else of it.
    name = "<Acme & 商事>" if language == "ja" else "<Acme & Co>"
    escaped = "&lt;Acme &amp; 商事&gt;" if language == "ja" else "&lt;Acme &amp; Co&gt;"
    assert f"({name})" in message.body_text
    assert f"({escaped})<br>" in message.body_html and name not in message.body_html
    assert message.body_text.count("\n- ") == 2 and message.body_html.count("<li>") == 2


def test_a_receipt_line_names_the_company_where_the_purposes_words_hold_its_placeholder():
    from consent.services import consent_grant
    from portal.models import EmailMessage
    from tests.factories import EmployerFactory, opt_in_purposes, student_who_accepted

    analysis, _provision = opt_in_purposes()
    analysis.title_ja = "閲覧履歴を〈企業〉のために分析すること"
    analysis.save()
    student, _ = student_who_accepted(analysis, language="ja")
    consent_grant(student=student, employer=EmployerFactory(name="朝霧商事"), purpose=analysis)

    message = EmailMessage.objects.filter(kind="consent_change").latest("pk")
    for body in (message.body_text, message.body_html):
        assert "閲覧履歴を朝霧商事のために分析すること (朝霧商事)" in body
        assert "〈企業〉" not in body
