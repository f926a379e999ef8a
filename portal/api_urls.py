"""/api/v1/ (namespace "api"): the consent API's routes, and the activity and inference
intakes and the companies' requests, which belong to the requests (disclosure/api.py).
Wired here, the one place that reaches into both apps; the consent API's catch-all stays
last."""

from django.urls import path

from consent.api import urls as consent_api
from disclosure import api as disclosure_api

app_name = "api"

urlpatterns = [
    path("activity", disclosure_api.activity, name="activity"),
    path("inferences", disclosure_api.inferences, name="inferences"),
    path("requests", disclosure_api.requests_list, name="requests"),
    path("requests/<str:reference>/answer", disclosure_api.request_answer, name="request_answer"),
    *consent_api.urlpatterns,
]
