from django.urls import path

from disclosure import views

app_name = "disclosure"

urlpatterns = [
    path("requests/", views.request_list, name="request_list"),
    path("requests/new/", views.request_new, name="request_new"),
    path("requests/new/correction/", views.request_correction, name="request_correction"),
    # Disputing one inferred result files a correction scoped to it (inferences' page).
    path("inferences/<int:pk>/dispute/", views.inference_dispute, name="inference_dispute"),
    path("requests/<str:reference>/", views.request_detail, name="request_detail"),
    path("requests/<str:reference>/files/<int:file_id>/", views.request_file_download, name="file"),
    path("r/<str:token>/", views.answer, name="answer"),
    path(
        "r/<str:token>/workspace-link/",
        views.answer_workspace_link,
        name="answer_workspace_link",
    ),
    path("company/", views.workspace_request, name="workspace_request"),
    path("company/sent/", views.workspace_request_sent, name="workspace_request_sent"),
    path("company/w/<str:token>/", views.workspace_open, name="workspace_open"),
    path("company/workspace/", views.workspace, name="workspace"),
    path("company/workspace/answer/", views.workspace_answer, name="workspace_answer"),
    path("company/workspace/csv/", views.workspace_csv, name="workspace_csv"),
    path("company/workspace/csv/upload/", views.workspace_csv_upload, name="workspace_csv_upload"),
    path(
        "company/workspace/csv/confirm/", views.workspace_csv_confirm, name="workspace_csv_confirm"
    ),
    path("company/workspace/delivery/", views.workspace_delivery, name="workspace_delivery"),
    path("company/workspace/tasks/<int:task_id>/", views.workspace_task, name="workspace_task"),
    path("company/workspace/sign-out/", views.workspace_sign_out, name="workspace_sign_out"),
    path("account/close/", views.account_close_view, name="account_close"),
    path(
        "sources/callback/<uuid:request_id>/<int:source_id>/",
        views.source_callback,
        name="source_callback",
    ),
]
