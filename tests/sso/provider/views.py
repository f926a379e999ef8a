"""The tests' handle on the stand-in job site: make users and the portal's client, change a
user's email, look at and age authorisation codes. Only with the run's control token."""

import json
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.contrib.auth.models import User
from django.http import HttpResponseForbidden, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.models import AccessToken, Application, Grant

from tests.sso.provider.middleware import TOKEN_REQUESTS
from tests.sso.provider.models import EmailStatus


def control(view):
    @csrf_exempt
    @wraps(view)
    def wrapped(request):
        if request.headers.get("X-Control-Token") != settings.CONTROL_TOKEN:
            return HttpResponseForbidden()
        data = json.loads(request.body or b"{}") if request.method == "POST" else {}
        return JsonResponse(view(request, data))

    return wrapped


@control
def user_put(request, data):
    user, _ = User.objects.get_or_create(username=data["username"])
    user.email = data["email"]
    user.first_name = data.get("name", "")
    if "password" in data:
        user.set_password(data["password"])
    user.save()
    EmailStatus.objects.update_or_create(
        user=user, defaults={"verified": data.get("email_verified", True)}
    )
    return {"sub": str(user.pk)}


@control
def client_put(request, data):
    Application.objects.filter(client_id=data["client_id"]).delete()
    Application.objects.create(
        name="Student data portal",
        client_id=data["client_id"],
        client_secret=data["client_secret"],
        client_type=Application.CLIENT_CONFIDENTIAL,
        authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
        redirect_uris=" ".join(data["redirect_uris"]),
        algorithm=Application.RS256_ALGORITHM,
        skip_authorization=True,  # no consent screen: the tests drive the flow over HTTP
    )
    return {}


@control
def grants(request, data):
    return {
        "grants": [
            {
                "user": g.user.username,
                "challenge": g.code_challenge,
                "method": g.code_challenge_method,
            }
            for g in Grant.objects.select_related("user").order_by("pk")
        ],
        "access_tokens": AccessToken.objects.count(),
    }


@control
def grants_expire(request, data):
    aged = Grant.objects.update(expires=timezone.now() - timedelta(minutes=1))
    return {"expired": aged}


@control
def token_requests(request, data):
    return {"requests": list(TOKEN_REQUESTS)}
