"""/api/v1/ (namespace "api"): the consent API's routes, and the activity intake, which
belongs to the requests (disclosure/api.py). Wired here, the one place that reaches into
both apps; the consent API's catch-all stays last."""

from django.urls import path

from consent.api import urls as consent_api
from disclosure import api as disclosure_api

app_name = "api"

urlpatterns = [
    path("activity", disclosure_api.activity, name="activity"),
    *consent_api.urlpatterns,
]
