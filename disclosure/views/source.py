"""The callback of the site's own systems (DataSource): no session, the signature is the key.

POST /sources/callback/<request public id>/<source id>/ with JSON
{"answer": "confirmed" | "held_none" | "disclosed", "data": {...}}, signed as in
disclosure/signing.py with the source's secret. Answers are JSON: 200 recorded, 400 bad
body, 401 bad or stale signature, 404 no such call, 409 already answered or closed.
"""

import json

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from disclosure import signing
from disclosure.models import SourceTask
from disclosure.services import SourceAnswerRefused, source_task_answer

MAX_BODY = 2 * 1024 * 1024


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@csrf_exempt  # a server-to-server call authenticated by its HMAC signature, not a session
@never_cache
@require_POST
def source_callback(request: HttpRequest, request_id, source_id: int) -> JsonResponse:
    task = (
        SourceTask.objects.select_related("request", "source")
        .filter(request__public_id=request_id, source_id=source_id)
        .first()
    )
    if task is None:
        return _error(404, "unknown request or source")
    if len(request.body) > MAX_BODY:
        return _error(413, "body too large")
    problem = signing.verify(
        task.source.secret,
        request.body,
        timestamp=request.headers.get(signing.TIMESTAMP_HEADER),
        sig=request.headers.get(signing.SIGNATURE_HEADER),
    )
    if problem:
        return _error(401, problem)
    if task.is_done:
        return _error(409, "already answered")
    try:
        body = json.loads(request.body)
    except ValueError:
        return _error(400, "body is not JSON")
    if not isinstance(body, dict) or not isinstance(body.get("answer"), str):
        return _error(400, 'expected {"answer": ..., "data": {...}}')
    try:
        task = source_task_answer(task=task, answer=body["answer"], data=body.get("data"))
    except SourceAnswerRefused as exc:
        status = 409 if exc.code == "answered" else 400
        return _error(status, " ".join(str(m) for m in exc.messages))
    return JsonResponse({"recorded": task.answer, "at": task.answered_at.isoformat()})
