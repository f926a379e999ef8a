from django.urls import path

from consent import views

app_name = "consent"

urlpatterns = [
    path("", views.policy_list, name="policy_list"),
    path("accept/", views.accept, name="accept"),
    path("accepted/<uuid:receipt_id>/", views.acceptance_detail, name="acceptance_detail"),
    path("accepted/<uuid:receipt_id>/diff/", views.acceptance_diff, name="acceptance_diff"),
    path("accepted/<uuid:receipt_id>/receipt.pdf", views.receipt_pdf, name="receipt_pdf"),
    path("accepted/<uuid:receipt_id>/receipt.json", views.receipt_json, name="receipt_json"),
    path("versions/<str:label>/", views.version_text, name="version_text"),
]
