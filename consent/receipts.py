"""Receipts for policy acceptances: Kantara Consent Receipt v1.1 JSON, and a PDF."""

import json
from functools import cache
from pathlib import Path

from django.conf import settings
from django.urls import reverse
from django.utils import translation

from consent.models import ConsentEvent, PolicyAcceptance
from portal.shared.pdf import pdf_render

KANTARA_VERSION = "KI-CR-v1.1.0"
SCHEMA_PATH = Path(__file__).parent / "schemas" / "kantara-consent-receipt-v1_1-schema.json"
SERVICE_NAME = "Student job-information site"


@cache
def kantara_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _controller() -> dict:
    operator = settings.PORTAL_OPERATOR
    return {
        "piiController": operator["name"],
        "onBehalf": False,
        "contact": operator["contact"],
        "address": {"streetAddress": operator["address"], "addressCountry": "JP"},
        "email": operator["email"],
        "phone": operator["phone"],
        "piiControllerUrl": settings.SITE_URL,
    }


def _disclosure(purpose, language: str) -> dict:
    if not purpose.third_party_disclosure:
        return {"thirdPartyDisclosure": False}
    with translation.override(language):
        name = translation.gettext("The companies you apply to, only for that application")
    return {"thirdPartyDisclosure": True, "thirdPartyName": name}


def acceptance_receipt_json(acceptance: PolicyAcceptance) -> dict:
    """The receipt of one acceptance, valid against the Kantara v1.1 schema.

    Accepting the policy is the basis only for the purposes that need no separate consent;
    behaviour-data purposes are listed in the policy but never granted by accepting it, so
    they do not appear here (they get receipts of their own, per employer).
    """
    version = acceptance.version
    language = acceptance.language
    purposes = [p for p in version.purposes.all() if not p.requires_opt_in]
    with translation.override(language):
        termination = translation.gettext(
            "Ends when you delete your account or withdraw by a request on the portal."
        )
    return {
        "version": KANTARA_VERSION,
        "jurisdiction": "JP",
        "consentTimestamp": int(acceptance.accepted_at.timestamp()),
        "collectionMethod": f"{acceptance.collection_method}; screen={acceptance.screen}",
        "consentReceiptID": str(acceptance.receipt_id),
        "language": language,
        "piiPrincipalId": str(acceptance.student.public_id),
        "piiControllers": [_controller()],
        "policyUrl": settings.SITE_URL
        + reverse("consent:version_text", args=[version.label])
        + f"?lang={language}",
        "services": [
            {
                "service": SERVICE_NAME,
                "purposes": [
                    {
                        "purpose": purpose.title(language),
                        "purposeCategory": [purpose.category],
                        "consentType": "EXPLICIT",
                        "piiCategory": [purpose.data_items(language)],
                        "primaryPurpose": True,
                        "termination": termination,
                        **_disclosure(purpose, language),
                    }
                    for purpose in purposes
                ],
            }
        ],
        "sensitive": False,
        "spiCat": [],
        # Not in the Kantara schema (it allows extra members): what proves the text shown.
        "policyVersion": version.label,
        "policyTextSha256": acceptance.text_sha256,
    }


def acceptance_receipt_pdf(acceptance: PolicyAcceptance) -> bytes:
    return pdf_render(
        template="consent/receipt_pdf.html",
        context={
            "acceptance": acceptance,
            "version": acceptance.version,
            "text": acceptance.shown_text(),
            "purposes": list(acceptance.version.purposes.all()),
        },
        language=acceptance.language,
    )


def event_receipt_json(event: ConsentEvent) -> dict:
    """The receipt of one grant, withdrawal or lapse, valid against the Kantara v1.1 schema.

    Kantara describes consent as given; a withdrawal or lapse is the same record with its
    `action` stated and the purpose's termination already reached.
    """
    language = event.language
    wording = event.policy_version.purpose_wording(event.purpose, language)
    employer_name = event.employer.display_name(language)
    with translation.override(language):
        termination = translation.gettext(
            "Until you withdraw it on the consent page, which stops any further provision at once."
        )
    purpose = {
        "purpose": f"{wording['title']} ({employer_name})",
        "purposeCategory": [event.purpose.category],
        "consentType": "EXPLICIT",
        "piiCategory": [wording["data_items"]],
        "primaryPurpose": False,
        "termination": termination,
        "thirdPartyDisclosure": event.purpose.third_party_disclosure,
    }
    if event.purpose.third_party_disclosure:
        purpose["thirdPartyName"] = event.employer.name
    if event.action == ConsentEvent.Action.GRANT:
        # Beyond the schema (it allows extra members in a purpose): what the grant allows
        # the site to infer about the student for this company.
        purpose["inferenceModels"] = _models_allowed(event, language)
    return {
        "version": KANTARA_VERSION,
        "jurisdiction": "JP",
        "consentTimestamp": int(event.occurred_at.timestamp()),
        "collectionMethod": f"{event.collection_method or event.get_screen_display()}; "
        f"screen={event.screen}; actor={event.actor}",
        "consentReceiptID": str(event.receipt_id),
        "language": language,
        "piiPrincipalId": str(event.student.public_id),
        "piiControllers": [_controller()],
        "policyUrl": settings.SITE_URL
        + reverse("consent:version_text", args=[event.policy_version.label])
        + f"?lang={language}",
        "services": [{"service": SERVICE_NAME, "purposes": [purpose]}],
        "sensitive": False,
        "spiCat": [],
        # Beyond the schema (it allows extra members): what happened, for whom.
        "action": event.action,
        "employer": {"id": event.employer_id, "name": event.employer.name},
        "policyVersion": event.policy_version.label,
    }


def _models_allowed(event: ConsentEvent, language: str) -> list[dict]:
    """The registered models serving the purpose that were active when the grant was made,
    each named as the student's page names it: what a grant of it allows the site to infer
    (issue 21). The inferences app sits above consent and registers its models on a purpose
    as `inference_models`; the receipt reads them through that relation, importing nothing of
    the app (and lists none where it is not installed)."""
    related = getattr(event.purpose, "inference_models", None)
    if related is None:
        return []
    return [
        {
            "code": model.code,
            "version": model.version,
            "name": model.name(language),
            "predicts": model.predicts(language),
            "neverUsedFor": model.never(language),
        }
        for model in related.filter(
            activated_at__isnull=False, activated_at__lte=event.occurred_at
        ).order_by("code", "activated_at", "pk")
    ]


def event_receipt_pdf(event: ConsentEvent) -> bytes:
    language = event.language
    return pdf_render(
        template="consent/event_receipt_pdf.html",
        context={
            "event": event,
            "name": event.employer.display_name(language),
            "wording": event.policy_version.purpose_wording(event.purpose, language),
            "models": _models_allowed(event, language),
        },
        language=language,
    )
