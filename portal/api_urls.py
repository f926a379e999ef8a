"""/api/v1/ (namespace "api"): the consent API's routes, and the activity and inference
intakes and the companies' requests, which belong to the requests (disclosure/api.py).
Wired here, the one place that reaches into both apps; the consent API's catch-all stays
last."""

from django.urls import path

from consent.api import urls as consent_api
from disclosure import api as disclosure_api
from inferences import api as inferences_api

app_name = "api"

urlpatterns = [
    path("activity", disclosure_api.activity, name="activity"),
    path("inferences", disclosure_api.inferences, name="inferences"),
    path("inferences/check", disclosure_api.inferences_check_view, name="inferences_check"),
    path("inferences/disputes", inferences_api.disputes, name="inferences_disputes"),
    path("requests", disclosure_api.requests_list, name="requests"),
    path("requests/<str:reference>/answer", disclosure_api.request_answer, name="request_answer"),
    *consent_api.urlpatterns,
]
