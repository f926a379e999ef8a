"""What every API view shares: JSON errors, the method check, the key, the rate limit.

`@api_endpoint("POST")` wraps a plain function view so that whatever goes wrong answers
`{"error": {"code": ..., "message": ...}}` with the right status, never an HTML page.
"""

import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import RequestDataTooBig
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from consent.api.keys import key_sha256
from consent.models import ApiClient

logger = logging.getLogger(__name__)

DEFAULT_RATE_LIMIT_PER_MINUTE = 600
# last_used_at says roughly when a key was last used; writing it on every request would
# turn every consent check into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
CHALLENGE = 'Bearer realm="api"'


class ApiError(Exception):
    """An answer other than success. Raised anywhere below a view, turned into JSON once."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.field, self.headers = field, headers or {}

    def response(self) -> JsonResponse:
        return error_response(
            self.status, self.code, self.message, field=self.field, headers=self.headers
        )


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    error = {"code": code, "message": str(message)}
    if field is not None:
        error["field"] = field
    return JsonResponse({"error": error}, status=status, headers=headers)


def api_endpoint(
    *methods: str, public: bool = False, scope: str = ApiClient.Scope.CONSENTS
) -> Callable:
    """Accept only `methods`; unless `public`, authenticate the key, require its `scope`
    and count the request.

    The view finds its client at `request.api_client`.
    """

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt  # no cookies, no browser forms: a bearer key is the credential
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise ApiError(
                        405,
                        "method_not_allowed",
                        _("This endpoint answers %(methods)s only.")
                        % {"methods": ", ".join(methods)},
                        headers={"Allow": ", ".join(methods)},
                    )
                if not public:
                    request.api_client = authenticate(request)
                    count_request(request.api_client)
                    require_scope(request.api_client, scope)
                return view(request, *args, **kwargs)
            except ApiError as error:
                return error.response()
            except Exception:
                # A bug or an outage still answers in the API's own format.
                logger.exception("API error on %s %s", request.method, request.path)
                return error_response(
                    500, "server_error", _("Something went wrong on our side. Please retry.")
                )

        wrapper.api_methods = methods
        return wrapper

    return decorate


# The key's hash is unique: one row or none. Written once as SQL: building it through the
# ORM was 0.2 ms of every API call, as long as running it.
_KEY_SQL = f"SELECT * FROM {ApiClient._meta.db_table} WHERE key_sha256 = %s"  # noqa: S608


def authenticate(request: HttpRequest) -> ApiClient:
    scheme, _space, key = request.headers.get("Authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise ApiError(
            401,
            "missing_key",
            _("Send your API key as 'Authorization: Bearer <key>'."),
            headers={"WWW-Authenticate": CHALLENGE},
        )
    # The database compares SHA-256 hashes, never the key itself: a timing difference could
    # only tell how many leading characters of a hash matched, which says nothing about any
    # key, so a constant-time comparison would add nothing here.
    client = next(iter(ApiClient.objects.raw(_KEY_SQL, [key_sha256(key)])), None)
    if client is None or client.revoked_at is not None:
        code = "invalid_key" if client is None else "revoked_key"
        message = (
            _("This API key is not valid.")
            if client is None
            else _("This API key was revoked. Ask for a new one.")
        )
        raise ApiError(
            401,
            code,
            message,
            headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'},
        )
    _note_use(client)
    return client


def require_scope(client: ApiClient, scope: str) -> None:
    if not client.has_scope(scope):
        raise ApiError(
            403,
            "missing_scope",
            _("This key may not call this endpoint: it needs the scope %(scope)s.")
            % {"scope": scope},
        )


def _note_use(client: ApiClient) -> None:
    now = timezone.now()
    stale = now - LAST_USED_RESOLUTION
    if client.last_used_at is not None and client.last_used_at > stale:
        return
    # Conditional, so that of the workers that all saw a stale time, one writes.
    ApiClient.objects.filter(pk=client.pk).filter(
        Q(last_used_at=None) | Q(last_used_at__lte=stale)
    ).update(last_used_at=now)
    client.last_used_at = now


def count_request(client: ApiClient) -> None:
    """A fixed one-minute window per key, counted in the cache (shared by every web node
    when the cache is Redis). Over the limit: 429 with Retry-After."""
    limit = getattr(settings, "API_RATE_LIMIT_PER_MINUTE", DEFAULT_RATE_LIMIT_PER_MINUTE)
    now = time.time()
    window = int(now // 60)
    counter = f"api-rate:{client.pk}:{window}"
    try:
        # add() starts the window's counter unless another request just did; incr() is
        # atomic, so concurrent requests never lose a count.
        cache.add(counter, 0, timeout=120)
        try:
            count = cache.incr(counter)
        except ValueError:  # evicted between add() and incr()
            cache.add(counter, 1, timeout=120)
            count = 1
    except Exception:
        # The limiter protects the service; it must not become the outage. A consent check
        # fails closed anyway (no grant, no "allowed").
        logger.warning("API rate limiter unavailable; request not counted", exc_info=True)
        return
    if count > limit:
        retry_after = max(1, 60 - int(now % 60))
        raise ApiError(
            429,
            "rate_limited",
            _("Too many requests for this key: at most %(limit)d a minute.") % {"limit": limit},
            headers={"Retry-After": str(retry_after)},
        )


def json_body(request: HttpRequest, *, loads: Callable[[bytes], object] = json.loads):
    try:
        return loads(request.body)
    except RequestDataTooBig:
        raise ApiError(413, "too_large", _("The request body is too large.")) from None
    except ValueError:  # JSONDecodeError and UnicodeDecodeError both are
        raise ApiError(400, "malformed_json", _("The request body is not valid JSON.")) from None
    except RecursionError:
        # `[[[[…]]]]` a hundred thousand deep fits in the body limit and exhausts the
        # parser's stack: no request of ours is nested more than three levels.
        raise ApiError(400, "malformed_json", _("The request body is nested too deeply.")) from None
