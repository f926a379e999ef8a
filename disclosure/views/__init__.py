from disclosure.views.account import account_close_view
from disclosure.views.company import answer
from disclosure.views.correction import inference_dispute, request_correction
from disclosure.views.source import source_callback
from disclosure.views.student import (
    request_detail,
    request_file_download,
    request_list,
    request_new,
)
from disclosure.views.workspace import (
    answer_workspace_link,
    workspace,
    workspace_answer,
    workspace_open,
    workspace_request,
    workspace_request_sent,
    workspace_sign_out,
    workspace_task,
)
from disclosure.views.workspace_csv import (
    workspace_csv,
    workspace_csv_confirm,
    workspace_csv_upload,
)
from disclosure.views.workspace_delivery import workspace_delivery

__all__ = [
    "account_close_view",
    "answer",
    "answer_workspace_link",
    "inference_dispute",
    "request_correction",
    "workspace",
    "workspace_answer",
    "workspace_csv",
    "workspace_csv_confirm",
    "workspace_csv_upload",
    "workspace_delivery",
    "workspace_open",
    "workspace_request",
    "workspace_request_sent",
    "workspace_sign_out",
    "workspace_task",
    "request_detail",
    "request_file_download",
    "request_list",
    "request_new",
    "source_callback",
]
