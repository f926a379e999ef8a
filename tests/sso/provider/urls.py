from django.contrib.auth import views as auth_views
from django.urls import include, path

from tests.sso.provider import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("o/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("control/user/", views.user_put),
    path("control/client/", views.client_put),
    path("control/grants/", views.grants),
    path("control/grants/expire/", views.grants_expire),
    path("control/token-requests/", views.token_requests),
]
