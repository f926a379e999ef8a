"""`POST /api/v1/activity`: the job site sends the activity records it collects.

Routed with the consent API's endpoints (portal/api_urls.py) and described in the same
OpenAPI document; it lives here because what it refuses is the students' requests'
(disclosure/activity.py).
"""

from django.http import HttpRequest, JsonResponse

from consent.api.endpoint import api_endpoint, json_body
from consent.api.payloads import activity_records
from consent.models import ApiClient
from disclosure.activity import REFUSED, activity_receive


@api_endpoint("POST", scope=ApiClient.Scope.ACTIVITY_WRITE)
def activity(request: HttpRequest) -> JsonResponse:
    records = activity_records(json_body(request))
    outcomes = activity_receive(client=request.api_client, records=records)
    results = []
    for record, outcome in zip(records, outcomes, strict=True):
        result = {"id": record.id, "result": outcome.result, "status": outcome.status}
        if outcome.result == REFUSED:
            result["error"] = {"code": outcome.code, "message": outcome.message}
        results.append(result)
    counts = {"stored": 0, "duplicate": 0, "refused": 0}
    for outcome in outcomes:
        counts[outcome.result] += 1
    # 200 whenever the batch was read, as /consents/check answers: each record's own
    # status says what became of it (201 stored, 200 duplicate, 422 or 409 refused).
    return JsonResponse({"results": results, **counts})
