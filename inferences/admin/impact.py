"""The purposes' impact report, extended with the inferences made without a grant at the time
(inferences/reports.py): the count, which must be zero, the query that proves it, and the
first results it finds. Consent's admin imports no app above it, so this app replaces the
purposes' admin with a subclass, as disclosure's admin extends the core's employers."""

from django.contrib import admin
from django.http import HttpRequest

from consent.admin.purposes import PurposeAdmin
from consent.models import Purpose
from inferences.reports import inferences_without_grant, inferences_without_grant_sql

# The results the report lists when the count is not zero (the count covers every one).
LISTED = 100


class PurposeWithInferencesAdmin(PurposeAdmin):
    impact_template = "admin/inferences/purpose_impact.html"

    def impact_context(self, request: HttpRequest, purpose: Purpose) -> dict:
        found = inferences_without_grant(purpose=purpose)
        return {
            **super().impact_context(request, purpose),
            "inferences_without_grant": found.count(),
            "inferences_without_grant_rows": list(
                found.select_related("student", "employer", "model")[:LISTED]
            ),
            "inferences_without_grant_sql": inferences_without_grant_sql(purpose=purpose),
        }


admin.site.unregister(Purpose)
admin.site.register(Purpose, PurposeWithInferencesAdmin)
