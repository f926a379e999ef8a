from django.urls import path

from disclosure import views

app_name = "disclosure"

urlpatterns = [
    path("requests/", views.request_list, name="request_list"),
    path("requests/new/", views.request_new, name="request_new"),
    path("requests/<str:reference>/", views.request_detail, name="request_detail"),
    path("requests/<str:reference>/files/<int:file_id>/", views.request_file_download, name="file"),
    path("r/<str:token>/", views.answer, name="answer"),
    path("account/close/", views.account_close_view, name="account_close"),
    path(
        "sources/callback/<uuid:request_id>/<int:source_id>/",
        views.source_callback,
        name="source_callback",
    ),
]
