"""The dispute queue of inferences (inferences/admin/records.py), extended by the requests: a
dispute is a correction request scoped to one result, so staff's answer also ends that
request's own part (`correction_dispute_answer`), as the employer admin is extended here
with the requests' steps (disclosure/admin/employers.py)."""

from django.contrib import admin

from disclosure.services.corrections import correction_dispute_answer
from inferences.admin.records import InferenceDisputeAdmin
from inferences.models import InferenceDispute


class CorrectionDisputeAdmin(InferenceDisputeAdmin):
    def answer_dispute(self, **answer) -> InferenceDispute:
        return correction_dispute_answer(**answer)


admin.site.unregister(InferenceDispute)
admin.site.register(InferenceDispute, CorrectionDisputeAdmin)
