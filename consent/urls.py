from django.urls import path

from consent.views import consents as consent_views
from consent.views import policies as views

app_name = "consent"

urlpatterns = [
    path("policies/", views.policy_list, name="policy_list"),
    path("policies/accept/", views.accept, name="accept"),
    path("policies/accepted/<uuid:receipt_id>/", views.acceptance_detail, name="acceptance_detail"),
    path(
        "policies/accepted/<uuid:receipt_id>/diff/", views.acceptance_diff, name="acceptance_diff"
    ),
    path("policies/accepted/<uuid:receipt_id>/receipt.pdf", views.receipt_pdf, name="receipt_pdf"),
    path(
        "policies/accepted/<uuid:receipt_id>/receipt.json",
        views.receipt_json,
        name="receipt_json",
    ),
    path("policies/versions/<str:label>/", views.version_text, name="version_text"),
    path("consents/", consent_views.consent_list, name="consent_list"),
    path("consents/withdraw-all/", consent_views.withdraw_all, name="withdraw_all"),
    path(
        "consents/<int:employer_id>/<slug:purpose_code>/grant/",
        consent_views.grant,
        name="grant",
    ),
    path(
        "consents/<int:employer_id>/<slug:purpose_code>/withdraw/",
        consent_views.withdraw,
        name="withdraw",
    ),
    path("consents/employers/<int:employer_id>/", consent_views.timeline, name="timeline"),
    path("consents/receipts/<uuid:receipt_id>/", consent_views.event_receipt, name="event_receipt"),
    path(
        "consents/receipts/<uuid:receipt_id>/receipt.pdf",
        consent_views.event_receipt_pdf,
        name="event_receipt_pdf",
    ),
    path(
        "consents/receipts/<uuid:receipt_id>/receipt.json",
        consent_views.event_receipt_json,
        name="event_receipt_json",
    ),
]
